#include "kube/json_stream.h"

#include <gtest/gtest.h>

namespace poolkeeper::kube {
namespace {

constexpr std::string_view kEvents =
    R"({"type":"ADDED","object":{"metadata":{"name":"a}\"{"}}})"
    "\n"
    R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}} {"type":"DELETED","object":{"k":[1,{"x":"]"}]}})";

TEST(JsonStreamSplitter, FindsValuesWhateverTheChunkBoundaries) {
  for (size_t chunk = 1; chunk <= kEvents.size(); ++chunk) {
    JsonStreamSplitter splitter;
    std::vector<nlohmann::json> values;
    for (size_t i = 0; i < kEvents.size(); i += chunk) {
      auto got = splitter.Feed(kEvents.substr(i, chunk));
      ASSERT_TRUE(got.has_value()) << "chunk " << chunk << ": " << got.error().message;
      values.insert(values.end(), got->begin(), got->end());
    }
    ASSERT_EQ(values.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(values[0]["object"]["metadata"]["name"], "a}\"{");
    EXPECT_EQ(values[1]["type"], "BOOKMARK");
    EXPECT_EQ(values[2]["object"]["k"][1]["x"], "]");
    EXPECT_EQ(splitter.Pending(), 0u);
  }
}

TEST(JsonStreamSplitter, KeepsAnUnfinishedValueForLater) {
  JsonStreamSplitter splitter;
  auto got = splitter.Feed(R"({"type":"ADDED","obj)");
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->empty());
  EXPECT_GT(splitter.Pending(), 0u);
  got = splitter.Feed(R"(ect":{}})");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->size(), 1u);
}

TEST(JsonStreamSplitter, RejectsGarbage) {
  JsonStreamSplitter splitter;
  EXPECT_FALSE(splitter.Feed("<html>").has_value());
}

}  // namespace
}  // namespace poolkeeper::kube
