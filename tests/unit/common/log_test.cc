#include "common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace poolkeeper {
namespace {

TEST(Log, TextQuotesOnlyValuesThatNeedIt) {
  EXPECT_EQ(FormatLogText("reconciled", {{"pool", "shop/orders"}, {"took", "3ms"}}),
            "msg=reconciled pool=shop/orders took=3ms");
  EXPECT_EQ(FormatLogText("apply failed", {{"error", "a \"b\"=c\nd"}, {"empty", ""}}),
            R"(msg="apply failed" error="a \"b\"=c\nd" empty="")");
}

TEST(Log, JsonFieldsParseBackToTheirValues) {
  std::string body = FormatLogJson("m\"x", {{"pool", "a/b"}, {"error", "line\nbreak"}});
  auto parsed = nlohmann::json::parse("{" + body + "}");
  EXPECT_EQ(parsed["msg"], "m\"x");
  EXPECT_EQ(parsed["pool"], "a/b");
  EXPECT_EQ(parsed["error"], "line\nbreak");
}

}  // namespace
}  // namespace poolkeeper
