// Reading and checking spec.tls of a ConnectionPool. Internal to the api module (parse.cc calls
// it); kept apart because TLS has its own rules: which modes need a CA, which hosts a certificate
// can be verified against, and the older spelling pooler.parameters.server_tls_sslmode.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "api/field_reader.h"

namespace poolkeeper::api {

// The key of pooler.parameters that spec.tls.server.sslMode replaces; still read (see ReadTls).
inline constexpr char kLegacyServerSslModeParameter[] = "server_tls_sslmode";

// Reads spec.tls into `spec.tls`. `legacy_server_mode` is pooler.parameters.server_tls_sslmode
// when the spec set it: it keeps working as the server sslmode when spec.tls.server is absent and
// the mode needs no CA (disable, allow, prefer, require); otherwise the problem names the field.
// Whether the server's certificate matches the host is only knowable at run time (docs/tls.md).
void ReadTls(FieldReader& spec, const std::optional<std::string>& legacy_server_mode,
             ConnectionPoolSpec& out, std::vector<FieldIssue>& issues);

}  // namespace poolkeeper::api
