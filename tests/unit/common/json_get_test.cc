// Lenient JSON reads: the value when present and of the asked type, else the fallback, never a
// throw.
#include "common/json_get.h"

#include <gtest/gtest.h>

namespace poolkeeper {
namespace {

using nlohmann::json;

TEST(JsonGet, ReadsPresentFieldsOfTheAskedType) {
  const json object = {{"name", "pool"}, {"ready", true}, {"instances", 3}};
  EXPECT_EQ(JsonGet<std::string>(object, "name", ""), "pool");
  EXPECT_TRUE(JsonGet<bool>(object, "ready", false));
  EXPECT_EQ(JsonGet<int64_t>(object, "instances", 0), 3);
}

TEST(JsonGet, FallsBackOnMissingMistypedOrNonObject) {
  const json object = {{"name", 7}, {"ready", "yes"}, {"instances", 2.5}};
  EXPECT_EQ(JsonGet<std::string>(object, "name", "none"), "none");
  EXPECT_FALSE(JsonGet<bool>(object, "ready", false));
  EXPECT_EQ(JsonGet<int64_t>(object, "instances", -1), -1);
  EXPECT_EQ(JsonGet<std::string>(object, "absent", "none"), "none");
  for (const json& not_object : {json(nullptr), json::array({1}), json("text")}) {
    EXPECT_EQ(JsonGet<std::string>(not_object, "name", "none"), "none");
  }
}

}  // namespace
}  // namespace poolkeeper
