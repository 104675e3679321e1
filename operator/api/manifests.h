// The documents of a manifest file as poolkeeper reads them offline (`check`, `render`): the
// ConnectionPools it is to plan, in file order, the PostgresServers they may be placed on, and the
// Secrets that hold their users' passwords.
// Other kinds are skipped, so a team can point the CLI at the whole folder it applies.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "api/connection_pool.h"
#include "api/postgres_server.h"
#include "common/error.h"

namespace poolkeeper::api {

// A Secret's decoded data (data is base64 in Kubernetes; stringData is taken as is).
struct Secret {
  std::string namespace_;
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> data;
};

// Looks a Secret up by namespace and name; nullptr when there is none.
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  virtual const Secret* Find(const std::string& namespace_, const std::string& name) const = 0;
};

struct Manifests : SecretSource {
  std::vector<ConnectionPool> pools;
  std::vector<PostgresServer> servers;
  std::map<std::pair<std::string, std::string>, Secret> secrets;
  const Secret* Find(const std::string& namespace_, const std::string& name) const override;
};

Result<Secret> ParseSecret(const nlohmann::json& object);

// Parses every document; fails with every problem of every document, each prefixed with
// "<source> document N (<kind> <namespace>/<name>)".
Result<Manifests> LoadManifests(const std::vector<std::pair<std::string, std::string>>& sources);

// The users' passwords of `pool`, or kNotFound naming spec.users[i].passwordSecretRef when a
// Secret or key is missing. Also returns the revision string that changes when any of them does.
struct ResolvedPasswords {
  std::map<std::string, std::string> passwords;  // user -> password
  std::string revision;                          // "<secret>@<resourceVersion>,..." sorted
};
Result<ResolvedPasswords> ResolvePasswords(const ConnectionPool& pool, const SecretSource& secrets);

}  // namespace poolkeeper::api
