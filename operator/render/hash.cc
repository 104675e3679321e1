// Digests through OpenSSL's EVP interface: the config hash on the pod template.
#include <openssl/evp.h>

#include <array>

#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace internal {

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  // EVP_Digest only fails on allocation failure; an empty hash then makes the mismatch visible
  // rather than rolling pods with a made-up value.
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  return hex;
}

}  // namespace internal

std::string ConfigHash(std::string_view ini, std::string_view credentials_revision) {
  std::string input;
  input.reserve(ini.size() + 1 + credentials_revision.size());
  input.append(ini).append("\n").append(credentials_revision);
  return internal::Sha256Hex(input);
}

std::string AppliedHash(const nlohmann::json& object) { return internal::Sha256Hex(object.dump()); }

std::string PodSelector(const api::ConnectionPool& pool) {
  const nlohmann::json labels = internal::SelectorLabels(pool);  // items() must not outlive it
  std::string selector;
  for (const auto& [key, value] : labels.items()) {
    if (!selector.empty()) selector += ",";
    selector += key + "=" + value.get<std::string>();
  }
  return selector;
}

}  // namespace poolkeeper::render
