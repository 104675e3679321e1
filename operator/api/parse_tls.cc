#include "api/parse_tls.h"

#include <algorithm>
#include <array>

#include "api/names.h"

namespace poolkeeper::api {
namespace {

constexpr std::array<std::pair<SslMode, std::string_view>, 6> kSslModes = {{
    {SslMode::kDisable, "disable"},
    {SslMode::kAllow, "allow"},
    {SslMode::kPrefer, "prefer"},
    {SslMode::kRequire, "require"},
    {SslMode::kVerifyCa, "verify-ca"},
    {SslMode::kVerifyFull, "verify-full"},
}};

std::optional<SslMode> ReadSslMode(FieldReader& reader) {
  auto text = reader.String("sslMode");
  if (!text) return std::nullopt;
  if (auto mode = ParseSslMode(*text)) return mode;
  reader.Fail("sslMode",
              "must be one of disable, allow, prefer, require, verify-ca, verify-full, "
              "not \"" +
                  *text + "\"");
  return std::nullopt;
}

void ReadMinVersion(FieldReader& reader, TlsVersion& out) {
  auto text = reader.String("minProtocolVersion");
  if (!text) return;
  if (*text == "TLSv1.2") {
    out = TlsVersion::kTls12;
  } else if (*text == "TLSv1.3") {
    out = TlsVersion::kTls13;
  } else {
    reader.Fail(
        "minProtocolVersion",
        "must be TLSv1.2 or TLSv1.3 (older versions are not offered), not \"" + *text + "\"");
  }
}

// A name the operator will look up in the pool's namespace.
void ReadName(FieldReader& reader, std::string_view key, bool required, std::string& out) {
  auto name = reader.String(key, required);
  if (!name) return;
  out = *name;
  if (auto problem = CheckDns1123Subdomain(*name)) reader.Fail(key, *problem);
}

void ReadClient(FieldReader& reader, ClientTlsSpec& client, std::vector<FieldIssue>& issues) {
  if (auto mode = ReadSslMode(reader)) client.ssl_mode = *mode;
  FieldReader ref(reader.Object("certificateSecretRef", true), reader.Path("certificateSecretRef"),
                  issues);
  if (ref.present()) {
    ReadName(ref, "name", true, client.certificate_secret_name);
    ref.RejectUnknown();
  }
  ReadMinVersion(reader, client.min_version);
  reader.RejectUnknown();
}

void ReadCaRef(FieldReader& reader, CaRef& ca) {
  ReadName(reader, "secretName", false, ca.secret_name);
  ReadName(reader, "configMapName", false, ca.config_map_name);
  if (reader.Has("secretName") == reader.Has("configMapName")) {
    reader.Fail(reader.Has("secretName") ? "configMapName" : "secretName",
                reader.Has("secretName") ? "give either secretName or configMapName, not both"
                                         : "required: secretName or configMapName");
  }
  if (auto key = reader.String("key")) {
    ca.key = *key;
    if (auto problem = CheckSecretKey(*key)) reader.Fail("key", *problem);
  }
  reader.RejectUnknown();
}

// What can be known before any connection: a verifying mode needs a CA to verify with, the pool's
// own or, for a pool on a PostgresServer, the server's (its caSecretRef: placement checks that it
// names one, budget::ServerDirectory::Place). Whether the server's certificate matches the host (a
// DNS SAN for a name, an IP SAN for an address: PgBouncer's TLS library checks both) is only
// knowable at run time; docs/tls.md says so.
void CheckServer(FieldReader& reader, const ServerTlsSpec& server, bool on_postgres_server) {
  if (SslModeVerifies(server.ssl_mode) && !server.ca_ref && !on_postgres_server) {
    reader.Fail("caRef",
                "required: sslMode " + std::string(SslModeName(server.ssl_mode)) +
                    " verifies the server's certificate against a CA (or use "
                    "spec.serverRef to a PostgresServer whose spec.caSecretRef names one)");
  }
}

}  // namespace

std::string_view SslModeName(SslMode mode) {
  for (const auto& [value, name] : kSslModes) {
    if (value == mode) return name;
  }
  return "prefer";
}

std::optional<SslMode> ParseSslMode(std::string_view text) {
  for (const auto& [value, name] : kSslModes) {
    if (name == text) return value;
  }
  return std::nullopt;
}

void ReadTls(FieldReader& spec, const std::optional<std::string>& legacy_server_mode,
             ConnectionPoolSpec& out, std::vector<FieldIssue>& issues) {
  FieldReader tls(spec.Object("tls"), spec.Path("tls"), issues);
  if (tls.present()) {
    FieldReader client(tls.Object("client"), tls.Path("client"), issues);
    if (client.present()) ReadClient(client, out.tls.client.emplace(), issues);
    FieldReader server(tls.Object("server"), tls.Path("server"), issues);
    if (server.present()) {
      ServerTlsSpec& s = out.tls.server.emplace();
      if (auto mode = ReadSslMode(server)) s.ssl_mode = *mode;
      FieldReader ca(server.Object("caRef"), server.Path("caRef"), issues);
      if (ca.present()) ReadCaRef(ca, s.ca_ref.emplace());
      server.RejectUnknown();
      CheckServer(server, s, !out.server_ref.empty());
    }
    tls.RejectUnknown();
  }
  if (!legacy_server_mode) return;
  const std::string field = "spec.pooler.parameters." + std::string(kLegacyServerSslModeParameter);
  auto mode = ParseSslMode(*legacy_server_mode);
  if (out.tls.server) {
    issues.push_back({field,
                      "set spec.tls.server.sslMode only (this older spelling is not read "
                      "beside spec.tls.server)"});
  } else if (!mode) {
    issues.push_back({field, "must be one of disable, allow, prefer, require, not \"" +
                                 *legacy_server_mode + "\""});
  } else if (SslModeVerifies(*mode)) {
    issues.push_back({field,
                      "managed by poolkeeper: set spec.tls.server.sslMode and "
                      "spec.tls.server.caRef (" +
                          *legacy_server_mode + " needs a CA)"});
  } else {
    out.tls.server.emplace().ssl_mode = *mode;
  }
}

}  // namespace poolkeeper::api
