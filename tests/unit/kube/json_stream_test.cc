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

// A stream that never closes its value (a string or object without end) must not grow the buffer
// without bound: past the limit it is an error, whatever the chunking, and a value of exactly the
// limit still passes.
TEST(JsonStreamSplitter, RefusesAValueLongerThanTheLimit) {
  const std::string at_limit = R"({"s":")" + std::string(64 - 8, 'x') + R"("})";
  ASSERT_EQ(at_limit.size(), 64u);
  struct Case {
    std::string name;
    std::string body;
    bool ok;
  };
  const Case cases[] = {
      {"exactly the limit", at_limit + "\n" + at_limit, true},
      {"one byte more", R"({"s":")" + std::string(64 - 7, 'x') + R"("})", false},
      {"an unterminated string", R"({"s":")" + std::string(500, 'y'), false},
      {"an unclosed object", "{" + std::string(500, ' '), false},
      {"blanks after a top-level string", "\"a\"" + std::string(500, ' '), false},
  };
  for (const auto& c : cases) {
    for (size_t chunk : {size_t{1}, size_t{7}, c.body.size()}) {
      JsonStreamSplitter splitter(64);
      bool ok = true;
      for (size_t i = 0; i < c.body.size() && ok; i += chunk) {
        auto got = splitter.Feed(std::string_view(c.body).substr(i, chunk));
        ok = got.has_value();
        if (!ok) {
          EXPECT_NE(got.error().message.find("longer than 64 bytes"), std::string::npos);
        }
        EXPECT_LE(splitter.Pending(), 64u + chunk) << c.name;
      }
      EXPECT_EQ(ok, c.ok) << c.name << ", chunks of " << chunk;
    }
  }
}

TEST(JsonStreamSplitter, BlanksBetweenValuesDoNotCountTowardsTheLimit) {
  JsonStreamSplitter splitter(16);
  auto got = splitter.Feed(std::string(1000, '\n') + R"({"a":1})" + std::string(1000, ' '));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(got->size(), 1u);
  EXPECT_EQ(splitter.Pending(), 0u);
}

}  // namespace
}  // namespace poolkeeper::kube
