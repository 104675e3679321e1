// SHA-256 as lowercase hex, for values that must change when their input does (the pooler's config
// hash, an applied object's hash) and for keys that must not hold their input (a cached token).
#pragma once

#include <string>
#include <string_view>

namespace poolkeeper {

// The digest of `data` in hex; empty when OpenSSL fails (allocation), so a mismatch shows rather
// than a made-up value.
std::string Sha256Hex(std::string_view data);

}  // namespace poolkeeper
