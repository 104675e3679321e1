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
#include "secrets/secrets.h"

namespace poolkeeper::manifests {

struct Manifests {
  std::vector<api::ConnectionPool> pools;
  std::vector<api::PostgresServer> servers;
  secrets::SecretMap secrets;
};

// Parses every document; fails with every problem of every document, each prefixed with
// "<source> document N (<kind> <namespace>/<name>)".
Result<Manifests> LoadManifests(const std::vector<std::pair<std::string, std::string>>& sources);

}  // namespace poolkeeper::manifests
