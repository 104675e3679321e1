// Enforcement at the database (PostgresServer spec.enforceRoleLimits): each pooled role's
// CONNECTION LIMIT set to what the pools grant it (budget::RoleGrants), so PostgreSQL itself
// refuses connections beyond the budget even if a pooler is misconfigured or a rollout races; and
// the limit the role had before restored once the role is no longer pooled (or enforcement is
// turned off, or the server is deleted). What was set, and what to restore, is kept in the
// server's status (status.roleLimits), so a restarted operator restores what an earlier one set.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "api/postgres_server.h"
#include "postgres/observer.h"

namespace poolkeeper::controller {

// Finalizer of a PostgresServer whose roles have limits the operator set: they are restored before
// the server object goes.
inline constexpr char kRoleLimitsFinalizer[] = "poolkeeper.io/role-limits-restored";

struct RoleLimitsOutcome {
  std::vector<api::ManagedRoleLimit> managed;  // after this pass, by role
  std::string problems;                        // "" when every change went through
};

// Sets each role in `grants` to its figure (unless `observed` shows it already has it) and
// restores every role in `managed` that is not in `grants`. A role that does not exist is skipped
// (nothing to limit); any other failure is reported and retried at the next pass.
RoleLimitsOutcome ApplyRoleLimits(postgres::ServerClient& database,
                                  const postgres::Endpoint& endpoint,
                                  const std::map<std::string, int64_t>& grants,
                                  const api::ServerObservation& observed,
                                  const std::vector<api::ManagedRoleLimit>& managed);

}  // namespace poolkeeper::controller
