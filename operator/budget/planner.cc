// The ledger: pools grouped by server, charged in order, each sized against what the pools before
// it left (sizing.h), with findings (findings.h). Pure: no I/O, no clock, no globals.
#include "budget/planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "budget/findings.h"
#include "budget/sizing.h"

namespace poolkeeper::budget {

int64_t MaxServerConnectionsPerInstance(const api::ConnectionPool& pool,
                                        const std::vector<std::optional<int>>& db_caps) {
  DbCaps extra;
  for (const auto& cap : db_caps)
    extra.push_back(cap ? std::optional<int64_t>(*cap) : std::nullopt);
  return FlowPerInstance(pool, extra);
}

namespace {

std::string PoolName(const api::ConnectionPool& pool) {
  return pool.metadata.namespace_ + "/" + pool.metadata.name;
}

std::string OverheadText(const api::Overhead& overhead) {
  return std::to_string(overhead.value) + (overhead.percent ? "%" : "");
}

// Pools that share a server share one budget, so its limits must mean one thing. A pool that
// disagrees with the first one naming the server is refused, naming the later pool's field: the
// earlier pool's budget was already handed out under its limits.
void CheckServerLimits(const std::vector<api::ConnectionPool>& pools,
                       std::vector<FieldIssue>& issues, std::string& message) {
  std::map<std::string, size_t> first;  // server key -> index of the first pool naming it
  for (size_t i = 0; i < pools.size(); ++i) {
    const api::ServerSpec& server = pools[i].spec.server;
    auto [it, inserted] = first.try_emplace(server.Key(), i);
    if (inserted) continue;
    const api::ConnectionPool& earlier = pools[it->second];
    const api::ServerSpec& declared = earlier.spec.server;
    auto check = [&](const char* field, bool same, const std::string& mine,
                     const std::string& theirs) {
      if (same) return;
      FieldIssue issue{PoolName(pools[i]) + " spec.server." + field,
                       mine + " conflicts with " + theirs + " declared by " + PoolName(earlier) +
                           " for " + server.Key()};
      if (!message.empty()) message += "; ";
      message += "pools[" + std::to_string(i) + "] (" + PoolName(pools[i]) + ") spec.server." +
                 field + ": " + issue.message;
      issues.push_back(std::move(issue));
    };
    check("maxConnections", server.max_connections == declared.max_connections,
          std::to_string(server.max_connections), std::to_string(declared.max_connections));
    check("superuserReservedConnections",
          server.superuser_reserved_connections == declared.superuser_reserved_connections,
          std::to_string(server.superuser_reserved_connections),
          std::to_string(declared.superuser_reserved_connections));
    check("reservedConnections", server.reserved_connections == declared.reserved_connections,
          std::to_string(server.reserved_connections),
          std::to_string(declared.reserved_connections));
    check("overhead", server.overhead == declared.overhead, OverheadText(server.overhead),
          OverheadText(declared.overhead));
  }
}

ServerPlan NewServerPlan(const api::ServerSpec& server) {
  ServerPlan plan;
  plan.server = server.Key();
  plan.max_connections = server.max_connections;
  plan.reserved = server.superuser_reserved_connections + server.reserved_connections;
  plan.overhead = server.overhead.Resolve(server.max_connections);
  plan.usable = plan.max_connections - plan.reserved - plan.overhead;
  plan.headroom = plan.usable;
  return plan;
}

int64_t ClientDemand(const api::ConnectionPool& pool) {
  int64_t demand = 0;
  for (const auto& client : pool.spec.clients) {
    demand += int64_t{client.instances} * (int64_t{client.pool_size} + client.max_overflow);
  }
  return demand;
}

int64_t Held(const Holdings& holdings, const std::string& server, const std::string& pool) {
  auto on_server = holdings.find(server);
  if (on_server == holdings.end()) return 0;
  auto it = on_server->second.find(pool);
  return it == on_server->second.end() ? 0 : it->second;
}

// Sizes one pool against its server's ledger (what earlier pools were allocated, and `held_later`,
// what the pools after it hold now) and charges it.
PoolPlan PlanPool(const api::ConnectionPool& pool, int64_t held, int64_t held_later,
                  ServerPlan& server) {
  const api::PoolerSpec& pooler = pool.spec.pooler;
  PoolPlan plan;
  plan.namespace_ = pool.metadata.namespace_;
  plan.name = pool.metadata.name;
  plan.server = server.server;
  plan.instances = pooler.instances;
  plan.max_surge = pooler.max_surge;
  plan.client_demand = ClientDemand(pool);
  plan.client_capacity = int64_t{pooler.instances} * pooler.max_client_conn;

  // Surge pods run next to the old ones during a rollout, so they hold connections too.
  const int64_t pods = PodsCharged(pooler);
  const int64_t earlier = server.allocated - server.held_elsewhere;
  const int64_t others = server.held_elsewhere + held_later;
  LedgerPosition ledger{
      &pool.spec.server, server.usable, server.overhead,
      earlier,           others,        server.usable - server.allocated - held_later};
  Sizing sizing = SizePool(pool, pods, ledger.remaining, server.usable);
  plan.per_instance = sizing.per_instance;
  plan.worst_case = pods * sizing.per_instance;
  plan.databases = sizing.databases;
  plan.limit = ledger.remaining;
  if (pool.spec.budget_policy == api::BudgetPolicy::kWarn) {
    plan.limit = std::max(plan.limit, plan.worst_case);
  }

  switch (sizing.outcome) {
    case SizingOutcome::kFits:
      plan.allocated = plan.worst_case;
      break;
    case SizingOutcome::kDerivedToFit:
      plan.allocated = plan.worst_case;
      plan.findings.push_back(DerivedCapsFinding(plan, sizing, ledger));
      break;
    case SizingOutcome::kExceeded:
      plan.verdict = Verdict::kBudgetExceeded;
      // Enforce: the pool is not rolled out, so it is charged only what it holds (below). Warn:
      // it runs anyway, so it is charged what it can open, and later pools see the truth.
      if (pool.spec.budget_policy == api::BudgetPolicy::kWarn) plan.allocated = plan.worst_case;
      plan.findings.push_back(BudgetExceededFinding(pool, plan, sizing, ledger));
      server.verdict = Verdict::kBudgetExceeded;
      break;
  }
  // What it holds now may be more: a refused spec leaves the last good configuration running,
  // and a shrinking one keeps old, larger pods until they are gone.
  plan.allocated = std::max(plan.allocated, held);
  server.allocated += plan.allocated;
  server.headroom = server.usable - server.allocated;
  if (server.allocated > server.usable) server.verdict = Verdict::kBudgetExceeded;
  AddAdvisoryFindings(pool, ledger, plan);
  return plan;
}

}  // namespace

int64_t PodsCharged(const api::PoolerSpec& pooler) {
  return pooler.instances == 0 ? 0 : int64_t{pooler.instances} + pooler.max_surge;
}

Result<Plan> PlanPools(const std::vector<api::ConnectionPool>& pools, const Holdings& holdings) {
  std::vector<FieldIssue> issues;
  std::string message;
  CheckServerLimits(pools, issues, message);
  if (!issues.empty()) {
    return std::unexpected(Error{ErrorCode::kInvalid, std::move(message), std::move(issues), 0});
  }

  // What each planned pool holds now, and per server what the planned pools not yet charged hold
  // (all of them at first; each pool leaves it when its turn comes).
  std::vector<int64_t> held(pools.size());
  std::map<std::string, int64_t> held_later;  // server key -> sum
  std::map<std::string, std::set<std::string>> planned;
  for (size_t i = 0; i < pools.size(); ++i) {
    const std::string server = pools[i].spec.server.Key();
    held[i] = Held(holdings, server, PoolName(pools[i]));
    if (planned[server].insert(PoolName(pools[i])).second) held_later[server] += held[i];
  }

  Plan plan;
  std::map<std::string, size_t> index;  // server key -> position in plan.servers
  for (size_t i = 0; i < pools.size(); ++i) {
    const api::ConnectionPool& pool = pools[i];
    const std::string key = pool.spec.server.Key();
    auto [it, inserted] = index.try_emplace(key, plan.servers.size());
    if (inserted) {
      ServerPlan server = NewServerPlan(pool.spec.server);
      if (auto on_server = holdings.find(key); on_server != holdings.end()) {
        for (const auto& [name, figure] : on_server->second) {
          if (!planned[key].contains(name)) server.held_elsewhere += figure;
        }
      }
      server.allocated = server.held_elsewhere;
      server.headroom = server.usable - server.allocated;
      plan.servers.push_back(server);
    }
    held_later[key] -= held[i];
    plan.pools.push_back(PlanPool(pool, held[i], held_later[key], plan.servers[it->second]));
  }
  return plan;
}

}  // namespace poolkeeper::budget
