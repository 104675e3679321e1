// Standard base64 (RFC 4648, padded) through OpenSSL: Secret `data` values and kubeconfig
// `*-data` fields are encoded this way, and every module reads and writes them with these two.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace poolkeeper {

std::string EncodeBase64(std::string_view data);
// nullopt when the text is not base64. Line breaks and spaces are skipped (kubeconfigs and
// `base64` without -w0 wrap at 76 columns).
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace poolkeeper
