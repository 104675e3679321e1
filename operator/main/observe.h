// `poolkeeper check --observe`: before planning, each PostgresServer in the files is observed as
// the operator would (its own max_connections, reserved slots, identity, other clients, role and
// database limits), so a pipeline checks against the live server rather than declared figures.
// Credentials come from the server's credentialsSecretRef when that Secret is in the files, else
// from the environment (PGUSER, PGPASSWORD, as libpq reads them): never from a flag, which would
// land in shell history and process listings.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "common/error.h"
#include "manifests/manifests.h"
#include "postgres/observer.h"

namespace poolkeeper::cli {

struct ObserveEnv {
  postgres::ServerClient& database;
  std::function<std::optional<std::string>(const char* name)> getenv;
  std::string now;  // RFC 3339, the observations' time
};

// Sets each server's observation; prints one line per server to `out`. Fails naming the server
// whose credentials are missing or that cannot be observed.
Status ObserveServers(manifests::Manifests& manifests, const ObserveEnv& env, std::ostream& out);

}  // namespace poolkeeper::cli
