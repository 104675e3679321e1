// Secrets as poolkeeper reads them, and where it reads them from. The users' passwords of a pool
// are resolved by one function (ResolvePasswords) over a SecretSource, whichever holds them: the
// manifest files given to the CLI (Manifests::secrets), the operator's name-selected Secret watches
// (controller/secret_watches.h), or a test's map.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "api/connection_pool.h"
#include "common/error.h"

namespace poolkeeper::secrets {

// A Secret's decoded data (data is base64 in Kubernetes; stringData is taken as is).
struct Secret {
  std::string namespace_;
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> data;
};

Result<Secret> ParseSecret(const nlohmann::json& object);

// Looks a Secret up by namespace and name; nullopt when there is none (or it does not parse).
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
// Secret or key is missing. Also returns the revision string that changes when any of them does.
struct ResolvedPasswords {
  std::map<std::string, std::string> passwords;  // user -> password
  std::string revision;                          // "<secret>@<resourceVersion>,..." sorted
};
Result<ResolvedPasswords> ResolvePasswords(const api::ConnectionPool& pool,
                                           const SecretSource& secrets);

}  // namespace poolkeeper::secrets
