// Lowercase hex of SHA-256, for values that must change when their input does (the pooler's config
// hash, an applied object's hash) and for keys that must not hold their input (a cached token);
// and of random bytes, for secrets the operator generates.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace poolkeeper {

// The digest of `data` in hex; empty when OpenSSL fails (allocation), so a mismatch shows rather
// than a made-up value.
std::string Sha256Hex(std::string_view data);

// `bytes` bytes from OpenSSL's CSPRNG as hex (2 x `bytes` characters): nothing a userlist or a
// connection string must quote. kInternal when the generator fails.
Result<std::string> RandomHex(size_t bytes);

}  // namespace poolkeeper
