// Secrets as poolkeeper reads them, and where it reads them from. The users' passwords of a pool
// are resolved by one function (ResolvePasswords) over a SecretSource, whichever holds them: the
// manifest files given to the CLI (Manifests::secrets), the operator's label-selected Secret cache
// (controller/exposed_secrets.h), or a test's map.
//
// A pool may only read a Secret that opts in with the label kExposeLabel=kExposeValue: without it,
// anyone who may create a ConnectionPool could have any Secret of the namespace (an API key, a
// service account token) copied into a userlist mounted in the pooler's pods. The check is here,
// in ResolvePasswords, so the CLI's render and the operator refuse the same Secrets.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "api/connection_pool.h"
#include "common/error.h"

namespace poolkeeper::secrets {

// The label a Secret carries to let pools of its namespace read it, and the selector the
// operator lists and watches Secrets with (so the API server sends it no other Secret).
inline constexpr std::string_view kExposeLabel = "poolkeeper.io/expose-to-pools";
inline constexpr std::string_view kExposeValue = "true";
std::string ExposeSelector();  // "poolkeeper.io/expose-to-pools=true"

// A Secret's decoded data (data is base64 in Kubernetes; stringData is taken as is) and labels.
// A Secret read as metadata only (the operator's check of an unlabelled one) has no data.
struct Secret {
  std::string namespace_;
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> data;
  std::map<std::string, std::string> labels;
};

Result<Secret> ParseSecret(const nlohmann::json& object);
// A ConfigMap as a Secret value (its data as it is, not base64): a CA certificate in a ConfigMap
// (spec.tls.server.caRef.configMapName) is looked up like a Secret, through a SecretSource of
// ConfigMaps, and opts in with the same label (the operator watches only labelled ones).
Result<Secret> ParseConfigMap(const nlohmann::json& object);
// Whether pools may read it: it carries kExposeLabel=kExposeValue.
bool Exposed(const Secret& secret);

// Looks a Secret up by namespace and name; nullopt when there is none (or it does not parse). A
// source may return an unexposed Secret without its data: that is enough to say it is unlabelled.
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  virtual std::optional<Secret> Find(const std::string& namespace_,
                                     const std::string& name) const = 0;
};

// Secrets held in memory, by namespace and name: the CLI's files, a reconcile's snapshot of the
// Secrets a pool references, a test's fixtures.
class SecretMap : public SecretSource {
 public:
  void Put(Secret secret);  // replaces the one with the same namespace and name
  void Clear() { secrets_.clear(); }
  size_t Size() const { return secrets_.size(); }
  std::optional<Secret> Find(const std::string& namespace_, const std::string& name) const override;

 private:
  std::map<std::pair<std::string, std::string>, Secret> secrets_;
};

// The users' passwords of `pool`, or kNotFound naming spec.users[i].passwordSecretRef when a
// Secret or key is missing, or kUnauthorized naming the Secret and the label to add when a Secret
// is not exposed (its data is never looked at). In authQuery mode it reads nothing and returns no
// password: the userlist holds only the auth user's. Also returns the revision string that changes
// when any of them does.
struct ResolvedPasswords {
  std::map<std::string, std::string> passwords;  // user -> password
  std::string revision;                          // "<secret>@<resourceVersion>,..." sorted
};
Result<ResolvedPasswords> ResolvePasswords(const api::ConnectionPool& pool,
                                           const SecretSource& secrets);
// The Secret `ns`/`name` that `field` names, when it exists and opts in (Exposed): otherwise an
// error naming `field`, kNotFound or kUnauthorized (with the kubectl label command that opts in).
// `kind` is what the source holds, for the message ("Secret", or "ConfigMap").
Result<Secret> FindExposed(const SecretSource& secrets, const std::string& ns,
                           const std::string& name, const std::string& field,
                           std::string_view kind = "Secret");

// The Secrets spec.tls names (tls.client.certificateSecretRef, tls.server.caRef.secretName), held
// to the same opt-in label as the passwords (a TLS key is as sensitive): kNotFound naming the field
// when a Secret or a key pgbouncer will read is missing (tls.crt, tls.key, and ca.crt under a
// verifying client sslMode), kUnauthorized when a Secret is not exposed. Returns the revision of
// what the pods read: "tls=" + sha256 hex of the certificates (tls.crt, ca.crt), never of the key,
// so a renewal rolls the pods and nothing readable is derived from a private key. "" without TLS
// Secrets. `config_maps` holds the ConfigMaps of spec.tls.server.caRef.configMapName (same label,
// same errors, its CA hashed too); nullptr: not looked up (the CLI's files hold no ConfigMaps). A
// CA copied from the PostgresServer (ca_from_server) is not read here: see ResolveServerCa.
Result<std::string> ResolveTls(const api::ConnectionPool& pool, const SecretSource& secrets,
                               const SecretSource* config_maps = nullptr);
// The CA certificate (key ca.crt) of the Secret a PostgresServer names (spec.caSecretRef), for a
// pool that verifies that server with it. No label is asked of it: only cluster administrators
// create PostgresServers, and only the certificate is taken. kNotFound naming
// spec.tls.server.caRef when the Secret or its key is missing.
Result<std::string> ResolveServerCa(const std::string& server_name,
                                    const std::string& secret_namespace,
                                    const std::string& secret_name, const SecretSource& secrets);
// The revision of everything a pool's pods read from Secrets: the passwords' and ResolveTls's.
inline std::string WithTlsRevision(const std::string& passwords, const std::string& tls) {
  return tls.empty() ? passwords : passwords + "," + tls;
}

}  // namespace poolkeeper::secrets
