// The budget planner: pure functions from ConnectionPools to a Plan (plan.h).
//
// Per pgbouncer process the worst case is the exact maximum number of server connections it can
// open under every cap (pool_size + reserve per (database, user) pool, max_db_connections per
// database, max_user_connections per user across databases): a max-flow over databases x users.
// Pools that share a server are charged in ledger order; a pool never takes from those before it.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "budget/plan.h"
#include "common/error.h"

namespace poolkeeper::budget {

// A parsed pool shared with whoever keeps it (the operator's pool index): planning reads it and
// copies it only where placement changes it (servers.h), so a plan does not cost a copy of every
// pool on the server.
using SharedPool = std::shared_ptr<const api::ConnectionPool>;

// Where each pool is, for the functions that read pools however the caller keeps them (by value
// offline and in tests, shared by the operator's caches). Valid while `pools` is.
std::vector<const api::ConnectionPool*> Pointers(const std::vector<api::ConnectionPool>& pools);
std::vector<const api::ConnectionPool*> Pointers(const std::vector<SharedPool>& pools);

// The exact maximum number of server connections one pgbouncer process of `pool` can open, when
// database i is capped at db_caps[i] (nullopt: only the spec's own caps apply).
// db_caps is empty or has one entry per spec.databases.
int64_t MaxServerConnectionsPerInstance(const api::ConnectionPool& pool,
                                        const std::vector<std::optional<int>>& db_caps = {});

// What exists on each server now, from observation: by server key ("host:port"), then by pool key
// ("namespace/name"), the most that pool's existing pods (terminating ones included) and its
// admitted configuration can open there. A pool refused under Enforce keeps its last good
// configuration running, a shrinking pool keeps larger pods until they are gone, a deleted or
// invalid pool (or one that moved to another server) keeps pods draining: all of it is charged.
// Offline nothing runs, and the map is empty.
using Holdings = std::map<std::string, std::map<std::string, int64_t>>;

// Plans every pool, in ledger order (file order offline, creation time in a cluster). A pool is
// sized against what the pools before it were allocated and what every other pool on the server
// holds now (later pools' pods and pods of pools not in `pools`): creation order decides only
// between new demands, never takes from what runs. A pool whose limits for a server differ from the
// first pool's declaration of it is refused (PoolPlan.refused, finding ServerConflict): it blocks
// itself, never the others. Pools are placed on their PostgresServer (servers.h) beforehand.
// The pools are read, not kept: they need only outlive the call.
Plan PlanPools(std::span<const api::ConnectionPool* const> pools, const Holdings& holdings = {});
inline Plan PlanPools(const std::vector<api::ConnectionPool>& pools,
                      const Holdings& holdings = {}) {
  return PlanPools(Pointers(pools), holdings);
}

// The pods a pool's worst case counts: instances + max_surge, and none at all with 0 instances (a
// Deployment with 0 replicas never surges).
int64_t PodsCharged(const api::PoolerSpec& pooler);

}  // namespace poolkeeper::budget
