// Sizing one pool: the flow network of one pgbouncer process and the water-filling that derives
// max_db_connections caps when the worst case with the spec's own caps does not fit.
#include "budget/sizing.h"

#include <algorithm>

#include "budget/max_flow.h"

namespace poolkeeper::budget {
namespace {

// A cap of the pool's own spec, tightened by the CONNECTION LIMIT PostgreSQL applies to the role or
// database (observed on a PostgresServer): no pgbouncer gets more server connections than that.
int64_t Tighter(std::optional<int> declared, const std::map<std::string, int64_t>& limits,
                const std::string& name) {
  int64_t cap = declared ? int64_t{*declared} : kUnbounded;
  if (auto it = limits.find(name); it != limits.end()) cap = std::min(cap, it->second);
  return cap;
}
int64_t UserCap(const api::ConnectionPool& pool, const api::UserSpec& user) {
  return Tighter(pool.MaxUserConnections(user), pool.spec.server.role_limits, user.name);
}

}  // namespace

int64_t FlowPerInstance(const api::ConnectionPool& pool, const DbCaps& extra) {
  const auto& databases = pool.spec.databases;
  const auto& users = pool.spec.users;
  const int db_count = static_cast<int>(databases.size());
  const int user_count = static_cast<int>(users.size());
  // Nodes: 0 source, 1 sink, then databases, then users.
  // In authQuery mode any role the lookup returns may log in, each with a pool of its own: one
  // more node, "every other role", with no cap of its own, stands for them (validation made sure
  // every database has a cap, which then binds).
  const bool open_users = pool.spec.auth_mode == api::AuthMode::kAuthQuery;
  const int source = 0, sink = 1, first_db = 2, first_user = 2 + db_count;
  const int others = first_user + user_count;
  MaxFlow flow(2 + db_count + user_count + (open_users ? 1 : 0));
  for (int d = 0; d < db_count; ++d) {
    int64_t cap = Tighter(pool.MaxDbConnections(databases[d]), pool.spec.server.database_limits,
                          databases[d].dbname);
    if (!extra.empty() && extra[d]) cap = std::min(cap, *extra[d]);
    flow.AddEdge(source, first_db + d, cap);
    // Every (database, user) pair is its own pgbouncer pool: pool_size, plus reserve_pool_size
    // when clients have waited longer than reserve_pool_timeout.
    const int64_t pair = int64_t{pool.PoolSize(databases[d])} + pool.ReservePoolSize(databases[d]);
    for (int u = 0; u < user_count; ++u) flow.AddEdge(first_db + d, first_user + u, pair);
    if (open_users) flow.AddEdge(first_db + d, others, kUnbounded);
  }
  for (int u = 0; u < user_count; ++u) {
    // max_user_connections counts a user's server connections across every database.
    flow.AddEdge(first_user + u, sink, UserCap(pool, users[u]));
  }
  if (open_users) flow.AddEdge(others, sink, kUnbounded);
  return flow.Run(source, sink) + AuthUserPerInstance(pool);
}

int64_t AuthUserPerInstance(const api::ConnectionPool& pool) {
  if (pool.spec.auth_mode != api::AuthMode::kAuthQuery) return 0;
  // PgBouncer runs auth_query over server connections of the pool (database, auth_user), an
  // ordinary pool of the client's database: pool_size + reserve_pool per database. Counted beside
  // the databases' caps rather than inside them, so the bound holds whether or not a PgBouncer
  // version counts that pool in max_db_connections.
  int64_t total = 0;
  for (const auto& db : pool.spec.databases) {
    total += int64_t{pool.PoolSize(db)} + pool.ReservePoolSize(db);
  }
  return total;
}

std::vector<int64_t> DemandPerDatabase(const api::ConnectionPool& pool) {
  // With a single database the flow network has one path per user, so the max flow restricted to
  // database d is the sum over users of min(pair capacity, user cap). The database's own declared
  // cap is ignored on purpose: this is what it could use if nothing capped it.
  std::vector<int64_t> demand;
  for (const auto& db : pool.spec.databases) {
    const int64_t pair = int64_t{pool.PoolSize(db)} + pool.ReservePoolSize(db);
    int64_t total = 0;
    for (const auto& user : pool.spec.users) total += std::min(pair, UserCap(pool, user));
    // authQuery: the roles are open-ended, so a database can use its cap (required then).
    if (pool.spec.auth_mode == api::AuthMode::kAuthQuery) {
      total = std::min<int64_t>(
          Tighter(pool.MaxDbConnections(db), pool.spec.server.database_limits, db.dbname),
          int64_t{1} << 30);
    }
    demand.push_back(total);
  }
  return demand;
}

namespace {

// The caps a pool runs with when none are derived to fit: the declared ones, and for the other
// databases what they can use alone. pgbouncer reads max_db_connections = 0 as "unlimited", so a
// database never goes without a hard cap; the cap is at least 1 for the same reason.
std::vector<DatabasePlan> NaturalCaps(const api::ConnectionPool& pool,
                                      const std::vector<int64_t>& demand) {
  std::vector<DatabasePlan> plans;
  for (size_t d = 0; d < pool.spec.databases.size(); ++d) {
    const auto& db = pool.spec.databases[d];
    auto declared = pool.MaxDbConnections(db);
    plans.push_back({db.name,
                     declared ? *declared : static_cast<int>(std::max<int64_t>(1, demand[d])),
                     !declared.has_value()});
  }
  return plans;
}

DbCaps ToDbCaps(const std::vector<DatabasePlan>& plans) {
  DbCaps caps;
  for (const auto& plan : plans)
    caps.push_back(plan.derived ? std::optional<int64_t>(plan.max_db_connections) : std::nullopt);
  return caps;
}

}  // namespace

Sizing SizePool(const api::ConnectionPool& pool, int64_t pods, int64_t remaining, int64_t usable) {
  Sizing sizing;
  sizing.demand = DemandPerDatabase(pool);
  const std::vector<int64_t>& demand = sizing.demand;
  sizing.databases = NaturalCaps(pool, demand);
  // Capping a database at what it can use alone never lowers the flow, so this is also the flow
  // with the spec's caps only.
  sizing.per_instance = FlowPerInstance(pool, ToDbCaps(sizing.databases));
  sizing.natural_per_instance = sizing.per_instance;
  if (pods == 0) return sizing;  // nothing runs, nothing to charge: fits whatever remains
  if (usable <= 0) {
    sizing.outcome = SizingOutcome::kExceeded;
    return sizing;
  }
  if (pods * sizing.per_instance <= remaining) {
    sizing.outcome = SizingOutcome::kFits;
    return sizing;
  }

  std::vector<size_t> free;  // databases without a declared cap: the only ones we may cap
  for (size_t d = 0; d < sizing.databases.size(); ++d) {
    if (sizing.databases[d].derived) free.push_back(d);
  }
  sizing.outcome = SizingOutcome::kExceeded;
  if (free.empty()) return sizing;

  // The least a pool can run with is 1 connection per free database per instance: less would be
  // a cap of 0, which pgbouncer reads as unlimited.
  auto flow_at = [&](const std::vector<int64_t>& caps) {
    DbCaps extra(demand.size());
    for (size_t d : free) extra[d] = caps[d];
    return FlowPerInstance(pool, extra);
  };
  std::vector<int64_t> caps(demand.size(), 1);
  sizing.minimum_per_instance = flow_at(caps);
  if (pods <= 0 || pods * *sizing.minimum_per_instance > remaining) return sizing;

  // Water-filling: the highest common level L (each database at min(L, demand)) whose flow fits
  // the per-instance budget, so no database is starved to feed another. The flow only grows with
  // L, hence the binary search; L = 1 is the minimum, which fits.
  // Every pod runs the same configuration, so caps are per instance and the pool takes
  // pods x per-instance: floor(remaining / pods) per instance is the most that keeps the invariant.
  const int64_t budget = remaining / pods;
  sizing.budget_per_instance = budget;
  auto at_level = [&](int64_t level) {
    std::vector<int64_t> leveled(demand.size(), 1);
    for (size_t d : free)
      leveled[d] = std::clamp<int64_t>(level, 1, std::max<int64_t>(1, demand[d]));
    return leveled;
  };
  int64_t low = 1, high = 1;
  for (size_t d : free) high = std::max(high, demand[d]);
  while (low < high) {
    int64_t mid = low + (high - low + 1) / 2;
    if (flow_at(at_level(mid)) <= budget) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  caps = at_level(low);
  // Level L + 1 does not fit for all, but may for some: one more connection each, in spec order.
  // One pass is enough: the flow only grows, so a step refused now is refused later too.
  for (size_t d : free) {
    if (caps[d] >= demand[d]) continue;
    ++caps[d];
    if (flow_at(caps) > budget) --caps[d];
  }
  for (size_t d : free) sizing.databases[d].max_db_connections = static_cast<int>(caps[d]);
  sizing.per_instance = flow_at(caps);
  sizing.outcome = SizingOutcome::kDerivedToFit;
  return sizing;
}

}  // namespace poolkeeper::budget
