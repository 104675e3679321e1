// A PostgresServer's status, as a pure function of what the operator knows: the server as stored,
// the outcome of its latest observation (if one was attempted), and the plan of every pool in its
// budget. Observed and declared figures side by side with the drift between them, the budget the
// pools are planned against and each pool's allocation, the other servers sharing the budget, and
// the Reachable condition. A failed observation keeps the last good one (and says so).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "api/postgres_server.h"
#include "budget/plan.h"
#include "budget/servers.h"
#include "common/error.h"
#include "controller/auth_query.h"
#include "controller/role_limits.h"

namespace poolkeeper::controller {

inline constexpr char kConditionReachable[] = "Reachable";

struct ServerStatusInputs {
  nlohmann::json stored;  // the PostgresServer as stored (its status included)
  // Parsed from `stored`, or the error that makes the server unusable.
  Result<api::PostgresServer> server;
  // This pass's observation: absent when none was attempted (no credentials), else the figures
  // or why the server could not be read.
  std::optional<Result<api::ServerObservation>> observation;
  const budget::ServerDirectory* directory = nullptr;  // with the stored server as it is
  budget::Plan plan;                                   // every pool of the server's budget
  std::string now;                                     // RFC 3339
  // This pass's enforcement of role limits, when it ran; else the stored status.roleLimits stand.
  std::optional<RoleLimitsOutcome> role_limits;
  // This pass's authQuery setup (auth_query.h), when it ran; else status.authQuery stands.
  std::optional<AuthQueryOutcome> auth_query;
};

nlohmann::json BuildServerStatus(const ServerStatusInputs& in);

// What differs between the declared and the observed figures, one line each
// ("maxConnections: declared 200, observed 100"); empty when nothing does or nothing is observed.
std::vector<std::string> Drift(const api::PostgresServerSpec& declared,
                               const api::ServerObservation& observed);

}  // namespace poolkeeper::controller
