// The budget planner: pure functions from ConnectionPools to a Plan (plan.h).
//
// Per pgbouncer process the worst case is the exact maximum number of server connections it can
// open under every cap (pool_size + reserve per (database, user) pool, max_db_connections per
// database, max_user_connections per user across databases): a max-flow over databases x users.
// Pools that share a server are charged in ledger order; a pool never takes from those before it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "budget/plan.h"
#include "common/error.h"

namespace poolkeeper::budget {

// The exact maximum number of server connections one pgbouncer process of `pool` can open, when
// database i is capped at db_caps[i] (nullopt: only the spec's own caps apply).
// db_caps is empty or has one entry per spec.databases.
int64_t MaxServerConnectionsPerInstance(const api::ConnectionPool& pool,
                                        const std::vector<std::optional<int>>& db_caps = {});

// What the pods each pool runs now can open, by "namespace/name": in a cluster a pool refused
// under Enforce keeps its last good configuration running, and a pool that shrinks keeps larger
// pods until its rollout completes, so the ledger charges at least this (offline nothing runs, and
// the map is empty).
using RunningWorstCase = std::map<std::string, int64_t>;

// Plans every pool, in ledger order (file order offline, creation time in a cluster). Fails with
// kInvalid, naming the field, when two pools declare different limits for the same server.
Result<Plan> PlanPools(const std::vector<api::ConnectionPool>& pools,
                       const RunningWorstCase& running = {});

}  // namespace poolkeeper::budget
