#include "common/digest.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <vector>

namespace poolkeeper {
namespace {

std::string Hex(const unsigned char* bytes, size_t length) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (size_t i = 0; i < length; ++i) {
    hex.push_back(kHex[bytes[i] >> 4]);
    hex.push_back(kHex[bytes[i] & 0x0f]);
  }
  return hex;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  return Hex(digest.data(), length);
}

Result<std::string> RandomHex(size_t bytes) {
  std::vector<unsigned char> random(bytes);
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return Fail(ErrorCode::kInternal, "the random number generator failed");
  }
  return Hex(random.data(), random.size());
}

}  // namespace poolkeeper
