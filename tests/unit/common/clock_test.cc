// RFC 3339 times as status fields carry them: written and read back, UTC only.
#include "common/clock.h"

#include <gtest/gtest.h>

namespace poolkeeper {
namespace {

TEST(Rfc3339, ReadsWhatItWritesAndRefusesOtherZones) {
  auto now = ParseRfc3339(Rfc3339Now());
  ASSERT_TRUE(now);
  EXPECT_LE(UnixNow() - *now, 2);
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:01:40Z"), 100);
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:01:40.123456Z"), 100);
  EXPECT_FALSE(ParseRfc3339("1970-01-01T00:01:40+02:00"));
  EXPECT_FALSE(ParseRfc3339(""));
  EXPECT_FALSE(ParseRfc3339("yesterday"));
}

TEST(Rfc3339, FormatsUtcToTheSecondOrTheMicrosecond) {
  using std::chrono::microseconds;
  const std::chrono::system_clock::time_point epoch{};
  struct Case {
    std::chrono::system_clock::time_point time;
    TimePrecision precision;
    std::string want;
  };
  const Case cases[] = {
      {epoch, TimePrecision::kSeconds, "1970-01-01T00:00:00Z"},
      {epoch, TimePrecision::kMicroseconds, "1970-01-01T00:00:00.000000Z"},
      {epoch + microseconds(1'767'323'045'123'456), TimePrecision::kMicroseconds,
       "2026-01-02T03:04:05.123456Z"},
      {epoch + microseconds(1'767'323'045'123'456), TimePrecision::kSeconds,
       "2026-01-02T03:04:05Z"},
      // Before the epoch the fraction still counts forward from the whole second below.
      {epoch - microseconds(1), TimePrecision::kMicroseconds, "1969-12-31T23:59:59.999999Z"},
  };
  for (const auto& c : cases) EXPECT_EQ(FormatRfc3339(c.time, c.precision), c.want);
}

// An exec credential plugin may say its token expires in 2999: past the end of system_clock's
// nanoseconds (2262), so Unix seconds are formatted without a time_point.
TEST(Rfc3339, FormatsUnixSecondsPastTheEndOfSystemClock) {
  auto far = ParseRfc3339("2999-01-01T00:00:00Z");
  ASSERT_TRUE(far.has_value());
  EXPECT_EQ(FormatRfc3339(*far), "2999-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(int64_t{0}), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace poolkeeper
