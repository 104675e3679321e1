// ResolveTls (secrets.h): the TLS Secrets of a pool, checked before anything mounts them.
#include <vector>

#include "common/digest.h"
#include "secrets/secrets.h"

namespace poolkeeper::secrets {
namespace {

Error Problem(ErrorCode code, std::string field, std::string message) {
  Error error{code, {}, {{std::move(field), std::move(message)}}};
  error.message = error.ToString();
  return error;
}

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
    std::optional<Secret> secret = secrets.Find(ns, use.name);
    const std::string who = ns + "/" + use.name;
    if (!secret)
      return std::unexpected(
          Problem(ErrorCode::kNotFound, use.field, "Secret " + who + " not found"));
    if (!Exposed(*secret)) {
      return std::unexpected(
          Problem(ErrorCode::kUnauthorized, use.field,
                  "Secret " + who + " is not labelled " + ExposeSelector() +
                      ": pools only read Secrets that opt in (kubectl label secret -n " + ns + " " +
                      use.name + " " + ExposeSelector() + ")"));
    }
    for (const auto& key : use.keys) {
      if (!secret->data.contains(key)) {
        return std::unexpected(Problem(ErrorCode::kNotFound, use.field,
                                       "Secret " + who + " has no key \"" + key + "\""));
      }
    }
    for (const auto& key : use.public_keys) {
      certificates += use.name + "/" + key + "\n" + secret->data.at(key) + "\n";
    }
  }
  return "tls=" + Sha256Hex(certificates);
}

}  // namespace poolkeeper::secrets
