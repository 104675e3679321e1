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

}  // namespace
}  // namespace poolkeeper
