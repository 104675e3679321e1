// The ledger: pools grouped by server, charged in order, each sized against what the pools before
// it left (sizing.h), with findings (findings.h). Pure: no I/O, no clock, no globals.
#include "budget/planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "budget/findings.h"
#include "budget/sizing.h"

namespace poolkeeper::budget {

std::vector<const api::ConnectionPool*> Pointers(const std::vector<api::ConnectionPool>& pools) {
  std::vector<const api::ConnectionPool*> pointers;
  pointers.reserve(pools.size());
  for (const auto& pool : pools) pointers.push_back(&pool);
  return pointers;
}

std::vector<const api::ConnectionPool*> Pointers(const std::vector<SharedPool>& pools) {
  std::vector<const api::ConnectionPool*> pointers;
  pointers.reserve(pools.size());
  for (const auto& pool : pools) pointers.push_back(pool.get());
  return pointers;
}

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
// disagrees with the first one naming the server is refused (it alone): the earlier pool's budget
// was already handed out under its limits. Returns the refusal of each pool, by index.
std::map<size_t, Finding> ServerConflicts(std::span<const api::ConnectionPool* const> pools) {
  std::map<size_t, Finding> refusals;
  std::map<std::string, size_t> first;  // server key -> index of the first pool naming it
  for (size_t i = 0; i < pools.size(); ++i) {
    const api::ServerSpec& server = pools[i]->spec.server;
    auto [it, inserted] = first.try_emplace(server.Key(), i);
    if (inserted) continue;
    const api::ConnectionPool& earlier = *pools[it->second];
    const api::ServerSpec& declared = earlier.spec.server;
    std::string message;
    auto check = [&](const char* field, bool same, int64_t mine, int64_t theirs) {
      if (same) return;
      if (!message.empty()) message += "; ";
      message += std::string("spec.server.") + field + ": " + std::to_string(mine) +
                 " conflicts with " + std::to_string(theirs) + " declared by " + PoolName(earlier) +
                 " for " + server.Key();
    };
    auto same = [](const auto& a, const auto& b) { return a == b; };
    check("maxConnections", same(server.max_connections, declared.max_connections),
          server.max_connections, declared.max_connections);
    check("superuserReservedConnections",
          same(server.superuser_reserved_connections, declared.superuser_reserved_connections),
          server.superuser_reserved_connections, declared.superuser_reserved_connections);
    check("reservedConnections", same(server.reserved_connections, declared.reserved_connections),
          server.reserved_connections, declared.reserved_connections);
    if (!(server.overhead == declared.overhead)) {
      if (!message.empty()) message += "; ";
      message += "spec.server.overhead: " + OverheadText(server.overhead) + " conflicts with " +
                 OverheadText(declared.overhead) + " declared by " + PoolName(earlier) + " for " +
                 server.Key();
    }
    if (!message.empty()) {
      refusals[i] = {Severity::kError, "ServerConflict",
                     message +
                         "; not rolled out (one server has one budget: make the figures "
                         "agree, or describe the server once as a PostgresServer)"};
    }
  }
  return refusals;
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

// What one pool may take beyond the server's own remaining figure: its namespace's quota (less
// what earlier pools of the namespace were allocated and later ones hold), and, when the server
// cannot be observed, nothing beyond what it holds.
struct PoolBounds {
  int64_t held = 0;        // by this pool's pods and admitted configuration
  int64_t held_later = 0;  // by the pools after it on the server
  int64_t held_later_in_namespace = 0;
};

void Constrain(const api::ConnectionPool& pool, const ServerPlan& server, const PoolBounds& bounds,
               LedgerPosition& ledger) {
  const api::ServerSpec& spec = pool.spec.server;
  if (spec.namespace_quota) {
    auto it = server.allocated_by_namespace.find(pool.metadata.namespace_);
    const int64_t earlier = it == server.allocated_by_namespace.end() ? 0 : it->second;
    const int64_t left = *spec.namespace_quota - earlier - bounds.held_later_in_namespace;
    if (left < ledger.remaining) {
      ledger.remaining = left;
      ledger.constraint = "namespace " + pool.metadata.namespace_ + "'s quota on the server is " +
                          std::to_string(*spec.namespace_quota) + ", " + std::to_string(earlier) +
                          " allocated to its earlier pools and " +
                          std::to_string(bounds.held_later_in_namespace) +
                          " held by its other pools' pods: " + std::to_string(left) + " remain";
    }
  }
  if (spec.frozen && bounds.held < ledger.remaining) {
    ledger.remaining = bounds.held;
    ledger.constraint = "the server cannot be observed now, so nothing is admitted beyond the " +
                        std::to_string(bounds.held) + " the pool holds";
  }
}

// Sizes one pool against its server's ledger (what earlier pools were allocated, and what the
// pools after it hold now) and charges it.
PoolPlan PlanPool(const api::ConnectionPool& pool, const PoolBounds& bounds,
                  std::optional<Finding> refusal, ServerPlan& server) {
  const api::PoolerSpec& pooler = pool.spec.pooler;
  PoolPlan plan;
  plan.namespace_ = pool.metadata.namespace_;
  plan.name = pool.metadata.name;
  plan.server = server.server;
  plan.instances = pooler.instances;
  plan.max_surge = pooler.max_surge;
  plan.client_demand = ClientDemand(pool);
  plan.client_capacity = int64_t{pooler.instances} * pooler.max_client_conn;
  auto charge = [&] {
    // What it holds now may be more: a refused spec leaves the last good configuration running,
    // and a shrinking one keeps old, larger pods until they are gone.
    plan.allocated = std::max(plan.allocated, bounds.held);
    server.allocated += plan.allocated;
    server.allocated_by_namespace[plan.namespace_] += plan.allocated;
    server.headroom = server.usable - server.allocated;
    if (server.allocated > server.usable) server.verdict = Verdict::kBudgetExceeded;
  };
  if (refusal) {
    plan.refused = true;
    plan.limit = bounds.held;
    plan.findings.push_back(std::move(*refusal));
    charge();
    return plan;
  }

  // Surge pods run next to the old ones during a rollout, so they hold connections too.
  const int64_t pods = PodsCharged(pooler);
  const int64_t earlier = server.allocated - server.held_elsewhere;
  const int64_t others = server.held_elsewhere + bounds.held_later;
  LedgerPosition ledger{&pool.spec.server,
                        server.usable,
                        server.overhead,
                        earlier,
                        others,
                        server.usable - server.allocated - bounds.held_later,
                        {}};
  Constrain(pool, server, bounds, ledger);
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
  charge();
  AddAdvisoryFindings(pool, ledger, plan);
  return plan;
}

}  // namespace

int64_t PodsCharged(const api::PoolerSpec& pooler) {
  return pooler.instances == 0 ? 0 : int64_t{pooler.instances} + pooler.max_surge;
}

Plan PlanPools(std::span<const api::ConnectionPool* const> pools, const Holdings& holdings) {
  std::map<size_t, Finding> refusals = ServerConflicts(pools);

  // What each planned pool holds now, and per server (and per namespace on it) what the planned
  // pools not yet charged hold (all of them at first; each pool leaves it when its turn comes).
  std::vector<int64_t> held(pools.size());
  std::map<std::string, int64_t> held_later;                             // server key -> sum
  std::map<std::pair<std::string, std::string>, int64_t> held_later_ns;  // (server, namespace)
  std::map<std::string, std::set<std::string>> planned;
  for (size_t i = 0; i < pools.size(); ++i) {
    const std::string server = pools[i]->spec.server.Key();
    held[i] = Held(holdings, server, PoolName(*pools[i]));
    if (planned[server].insert(PoolName(*pools[i])).second) {
      held_later[server] += held[i];
      held_later_ns[{server, pools[i]->metadata.namespace_}] += held[i];
    }
  }

  Plan plan;
  std::map<std::string, size_t> index;  // server key -> position in plan.servers
  for (size_t i = 0; i < pools.size(); ++i) {
    const api::ConnectionPool& pool = *pools[i];
    const std::string key = pool.spec.server.Key();
    auto [it, inserted] = index.try_emplace(key, plan.servers.size());
    if (inserted) {
      ServerPlan server = NewServerPlan(pool.spec.server);
      if (auto on_server = holdings.find(key); on_server != holdings.end()) {
        for (const auto& [name, figure] : on_server->second) {
          if (!planned[key].contains(name)) {
            server.held_elsewhere += figure;
            server.allocated_by_namespace[name.substr(0, name.find('/'))] += figure;
          }
        }
      }
      server.allocated = server.held_elsewhere;
      server.headroom = server.usable - server.allocated;
      plan.servers.push_back(server);
    }
    held_later[key] -= held[i];
    int64_t& later_ns = held_later_ns[{key, pool.metadata.namespace_}];
    later_ns -= held[i];
    std::optional<Finding> refusal;
    if (auto r = refusals.find(i); r != refusals.end()) refusal = r->second;
    plan.pools.push_back(PlanPool(pool, {held[i], held_later[key], later_ns}, std::move(refusal),
                                  plan.servers[it->second]));
  }
  return plan;
}

}  // namespace poolkeeper::budget
