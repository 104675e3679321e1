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
  bool config_map = false;               // a ConfigMap, not a Secret
};

}  // namespace

Result<std::string> ResolveTls(const api::ConnectionPool& pool, const SecretSource& secrets,
                               const SecretSource* config_maps) {
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
  } else if (pool.spec.tls.server && pool.spec.tls.server->ca_ref &&
             !pool.spec.tls.server->ca_from_server && config_maps) {
    const api::CaRef& ca = *pool.spec.tls.server->ca_ref;
    uses.push_back(
        {"spec.tls.server.caRef.configMapName", ca.config_map_name, {ca.key}, {ca.key}, true});
  }
  if (uses.empty()) return std::string();
  const std::string& ns = pool.metadata.namespace_;
  std::string certificates;
  for (const auto& use : uses) {
    const char* kind = use.config_map ? "ConfigMap" : "Secret";
    auto secret =
        FindExposed(use.config_map ? *config_maps : secrets, ns, use.name, use.field, kind);
    if (!secret) return std::unexpected(secret.error());
    for (const auto& key : use.keys) {
      if (!secret->data.contains(key)) {
        return FieldFail(
            ErrorCode::kNotFound, use.field,
            std::string(kind) + " " + ns + "/" + use.name + " has no key \"" + key + "\"");
      }
    }
    for (const auto& key : use.public_keys) {
      certificates += std::string(use.config_map ? "configmap/" : "") + use.name + "/" + key +
                      "\n" + secret->data.at(key) + "\n";
    }
  }
  return "tls=" + Sha256Hex(certificates);
}

Result<std::string> ResolveServerCa(const std::string& server_name,
                                    const std::string& secret_namespace,
                                    const std::string& secret_name, const SecretSource& secrets) {
  const std::string where = "the CA of PostgresServer \"" + server_name +
                            "\" (its caSecretRef, Secret " + secret_namespace + "/" + secret_name +
                            ")";
  auto secret = secrets.Find(secret_namespace, secret_name);
  if (!secret)
    return FieldFail(ErrorCode::kNotFound, "spec.tls.server.caRef", where + " not found");
  auto ca = secret->data.find("ca.crt");
  if (ca == secret->data.end() || ca->second.empty()) {
    return FieldFail(ErrorCode::kNotFound, "spec.tls.server.caRef", where + " has no key ca.crt");
  }
  return ca->second;
}

}  // namespace poolkeeper::secrets
