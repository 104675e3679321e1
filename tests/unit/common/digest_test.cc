#include "common/digest.h"

#include <gtest/gtest.h>

#include <set>

namespace poolkeeper {
namespace {

TEST(Sha256Hex, IsTheKnownDigestInLowercaseHex) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(RandomHex, GivesTwoHexDigitsPerByteAndDiffersEachTime) {
  std::set<std::string> seen;
  for (int i = 0; i < 16; ++i) {
    auto token = RandomHex(24);
    ASSERT_TRUE(token.has_value()) << token.error().message;
    EXPECT_EQ(token->size(), 48u);
    EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos) << *token;
    seen.insert(*token);
  }
  EXPECT_EQ(seen.size(), 16u);
}

}  // namespace
}  // namespace poolkeeper
