// Base64 as Secrets and kubeconfigs carry it: RFC 4648 vectors both ways, wrapped input, refusals.
#include "common/base64.h"

#include <gtest/gtest.h>

namespace poolkeeper {
namespace {

TEST(Base64, EncodesAndDecodesTheRfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(EncodeBase64(plain), encoded);
    EXPECT_EQ(DecodeBase64(encoded), plain) << encoded;
  }
}

TEST(Base64, KeepsBinaryAndZeroBytes) {
  const std::string binary("\0\xff\x10=\n", 5);
  EXPECT_EQ(DecodeBase64(EncodeBase64(binary)), binary);
}

TEST(Base64, SkipsLineBreaksOfWrappedText) { EXPECT_EQ(DecodeBase64("Zm9v\nYmFy\r\n"), "foobar"); }

TEST(Base64, RefusesWhatIsNotBase64) {
  for (const char* text : {"Zm9", "Zm9v!A==", "====x"}) {
    EXPECT_FALSE(DecodeBase64(text)) << text;
  }
}

}  // namespace
}  // namespace poolkeeper
