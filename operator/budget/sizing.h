// Sizing one pool against what remains of its server's budget: the per-instance flow model and the
// choice of the max_db_connections caps the planner derives. Internal to the budget planner.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "api/connection_pool.h"
#include "budget/plan.h"

namespace poolkeeper::budget {

// Per-database caps on top of the spec's own: one entry per spec.databases, nullopt = none.
using DbCaps = std::vector<std::optional<int64_t>>;

// The exact maximum number of server connections one pgbouncer process can open with the spec's
// caps and, where given, `extra` caps (the smaller of the two binds). `extra` may be empty.
int64_t FlowPerInstance(const api::ConnectionPool& pool, const DbCaps& extra);

// The server connections one pgbouncer's auth_user may hold to run auth_query (authQuery mode;
// 0 otherwise): FlowPerInstance includes them.
int64_t AuthUserPerInstance(const api::ConnectionPool& pool);

// What each database can use alone per instance (its pools, with the user caps), in spec order.
// It is the largest cap worth giving a database: any more could never be used.
std::vector<int64_t> DemandPerDatabase(const api::ConnectionPool& pool);

enum class SizingOutcome {
  kFits,          // the worst case with the spec's caps fits what remains
  kDerivedToFit,  // caps were derived below what the databases could use, to fit
  kExceeded,      // even the minimum does not fit (or every database is capped by the spec)
};

struct Sizing {
  SizingOutcome outcome = SizingOutcome::kFits;
  int64_t per_instance = 0;          // with the caps in `databases`
  int64_t natural_per_instance = 0;  // with the spec's caps only (what the pool asked for)
  std::vector<int64_t> demand;       // per database, what it can use alone (DemandPerDatabase)
  std::vector<DatabasePlan> databases;
  // The flow with every database without a declared cap at 1, when caps were considered at all.
  std::optional<int64_t> minimum_per_instance;
  int64_t budget_per_instance = 0;  // floor(remaining / pods) when caps were derived to fit
};

// Sizes `pool`, run as `pods` pgbouncer processes (instances + max_surge), against `remaining`
// connections of its server (which may be 0 or negative when earlier pools took everything).
// A server whose `usable` is 0 or less can host no pooler at all: every pool on it is exceeded.
Sizing SizePool(const api::ConnectionPool& pool, int64_t pods, int64_t remaining, int64_t usable);

}  // namespace poolkeeper::budget
