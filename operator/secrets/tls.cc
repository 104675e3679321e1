// ResolveTls (secrets.h): the TLS Secrets of a pool, checked before anything mounts them.
#include <vector>

#include "common/digest.h"
#include "secrets/secrets.h"

namespace poolkeeper::secrets {
namespace {

// One Secret the pods mount and the keys they read from it.
struct TlsSecretUse {
  std::string field;  // the spec field that names the Secret, e.g.
                      // spec.tls.client.certificateSecretRef.name
  std::string name;
  std::vector<std::string> keys;
  std::vector<std::string> public_keys;  // hashed into the revision (certificates only)
};

}  // namespace

Result<std::string> ResolveTls(const api::ConnectionPool& pool, const SecretSource& secrets) {
  std::vector<TlsSecretUse> uses;
  if (const auto& client = pool.spec.tls.client) {
    TlsSecretUse use{"spec.tls.client.certificateSecretRef.name",
                     client->certificate_secret_name,
                     {"tls.crt", "tls.key"},
                     {"tls.crt"}};
    if (api::SslModeVerifies(client->ssl_mode)) {
      use.keys.push_back("ca.crt");
      use.public_keys.push_back("ca.crt");
    }
    uses.push_back(std::move(use));
  }
  if (pool.spec.tls.server && pool.spec.tls.server->ca_ref &&
      !pool.spec.tls.server->ca_ref->secret_name.empty()) {
    const api::CaRef& ca = *pool.spec.tls.server->ca_ref;
    uses.push_back({"spec.tls.server.caRef.secretName", ca.secret_name, {ca.key}, {ca.key}});
  }
  if (uses.empty()) return std::string();
  const std::string& ns = pool.metadata.namespace_;
  std::string certificates;
  for (const auto& use : uses) {
    auto secret = FindExposed(secrets, ns, use.name, use.field);
    if (!secret) return std::unexpected(secret.error());
    for (const auto& key : use.keys) {
      if (!secret->data.contains(key)) {
        return FieldFail(ErrorCode::kNotFound, use.field,
                         "Secret " + ns + "/" + use.name + " has no key \"" + key + "\"");
      }
    }
    for (const auto& key : use.public_keys) {
      certificates += use.name + "/" + key + "\n" + secret->data.at(key) + "\n";
    }
  }
  return "tls=" + Sha256Hex(certificates);
}

}  // namespace poolkeeper::secrets
