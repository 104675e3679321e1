#include "budget/servers.h"

#include <algorithm>
#include <numeric>

namespace poolkeeper::budget {
namespace {

int64_t Usable(const api::ServerSpec& s) {
  return s.max_connections - s.superuser_reserved_connections - s.reserved_connections -
         s.overhead.Resolve(s.max_connections);
}

std::string Figures(const api::ServerSpec& s) {
  return "maxConnections " + std::to_string(s.max_connections) + ", superuserReservedConnections " +
         std::to_string(s.superuser_reserved_connections) + ", reservedConnections " +
         std::to_string(s.reserved_connections);
}

// Reference keys of one server: how pools name it and how its pods are annotated.
std::vector<std::string> ReferenceKeys(const api::PostgresServer& server) {
  std::vector<std::string> keys{api::ServerRefKey(server.name),
                                api::EndpointKey(server.spec.host, server.spec.port)};
  keys.insert(keys.end(), server.spec.aliases.begin(), server.spec.aliases.end());
  return keys;
}

struct UnionFind {
  std::vector<size_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  size_t Root(size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  }
  void Join(size_t a, size_t b) {
    a = Root(a), b = Root(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the first by name stays the root
  }
};

}  // namespace

std::optional<api::ServerSpec> OwnLimits(const api::PostgresServer& server) {
  const api::PostgresServerSpec& spec = server.spec;
  api::ServerSpec limits;
  limits.host = spec.host;
  limits.port = spec.port;
  limits.overhead = spec.overhead;
  if (server.observed) {
    const api::ServerObservation& seen = *server.observed;
    limits.max_connections = seen.max_connections;
    limits.superuser_reserved_connections = seen.superuser_reserved_connections;
    limits.reserved_connections = seen.reserved_connections;
    limits.role_limits = seen.role_limits;
    limits.database_limits = seen.database_limits;
    // A limit the operator set follows the plan; the plan follows what the role had before.
    for (const auto& managed : server.managed_role_limits) {
      if (managed.previous < 0) {
        limits.role_limits.erase(managed.role);
      } else {
        limits.role_limits[managed.role] = managed.previous;
      }
    }
    if (spec.measure_overhead) {
      // Other clients take what they use now, and at least the declared overhead stays aside.
      limits.overhead = {
          std::max(spec.overhead.Resolve(seen.max_connections), seen.in_use_by_others), false};
    }
  } else if (spec.max_connections) {
    limits.max_connections = *spec.max_connections;
    limits.superuser_reserved_connections = spec.superuser_reserved_connections;
    limits.reserved_connections = spec.reserved_connections;
  } else {
    return std::nullopt;
  }
  limits.frozen = server.unreachable;
  return limits;
}

ServerDirectory::ServerDirectory(std::vector<api::PostgresServer> servers)
    : servers_(std::move(servers)) {
  std::ranges::sort(servers_, {}, &api::PostgresServer::name);
  UnionFind sets(servers_.size());
  std::map<std::string, size_t> first_with;  // reference key or identity -> first server
  for (size_t i = 0; i < servers_.size(); ++i) {
    std::vector<std::string> keys = ReferenceKeys(servers_[i]);
    if (servers_[i].observed && !servers_[i].observed->system_identifier.empty()) {
      keys.push_back("system/" + servers_[i].observed->system_identifier);
    }
    for (const auto& key : keys) {
      auto [it, inserted] = first_with.try_emplace(key, i);
      if (!inserted) sets.Join(it->second, i);
    }
  }
  std::map<size_t, size_t> group_of_root;
  group_of_.resize(servers_.size());
  for (size_t i = 0; i < servers_.size(); ++i) {
    auto [it, inserted] = group_of_root.try_emplace(sets.Root(i), groups_.size());
    if (inserted) groups_.push_back({api::ServerRefKey(servers_[i].name), {}, {}, {}});
    Group& group = groups_[it->second];
    group_of_[i] = it->second;
    group.members.push_back(i);
    if (servers_[i].spec.policy == api::BudgetPolicy::kEnforce) {
      group.policy = api::BudgetPolicy::kEnforce;
    }
    for (const auto& key : ReferenceKeys(servers_[i])) group_by_reference_[key] = it->second;
    // The same server reported twice may differ by a connection or a moment: plan on the
    // tighter figures. A member that cannot be observed freezes the whole group.
    auto own = OwnLimits(servers_[i]);
    if (!own) continue;
    bool frozen = own->frozen || (group.limits && group.limits->frozen);
    if (!group.limits || Usable(*own) < Usable(*group.limits)) group.limits = own;
    group.limits->frozen = frozen;
    group.limits->budget_key = group.budget_key;
  }
}

const ServerDirectory::Group* ServerDirectory::GroupOfServer(size_t index) const {
  return &groups_[group_of_[index]];
}

const api::PostgresServer* ServerDirectory::Find(const std::string& name) const {
  auto it = std::ranges::lower_bound(servers_, name, {}, &api::PostgresServer::name);
  return it != servers_.end() && it->name == name ? &*it : nullptr;
}

std::string ServerDirectory::ReferenceKey(const api::ConnectionPool& pool) {
  return pool.spec.server_ref.empty()
             ? api::EndpointKey(pool.spec.server.host, pool.spec.server.port)
             : api::ServerRefKey(pool.spec.server_ref);
}

std::string ServerDirectory::BudgetKeyOf(const std::string& reference) const {
  auto it = group_by_reference_.find(reference);
  return it == group_by_reference_.end() ? reference : groups_[it->second].budget_key;
}

std::set<std::string> ServerDirectory::ReferencesOf(const std::string& budget_key) const {
  std::set<std::string> keys;
  for (const auto& [key, group] : group_by_reference_) {
    if (groups_[group].budget_key == budget_key) keys.insert(key);
  }
  if (keys.empty()) keys.insert(budget_key);  // an inline server on its own
  return keys;
}

Holdings ServerDirectory::Rekey(const Holdings& by_reference) const {
  Holdings out;
  for (const auto& [reference, pools] : by_reference) {
    auto& budget = out[BudgetKeyOf(reference)];
    for (const auto& [pool, figure] : pools) budget[pool] += figure;
  }
  return out;
}

std::vector<std::string> ServerDirectory::GroupOf(const std::string& name) const {
  std::vector<std::string> names;
  auto it = group_by_reference_.find(api::ServerRefKey(name));
  if (it == group_by_reference_.end()) return names;
  for (size_t member : groups_[it->second].members) names.push_back(servers_[member].name);
  return names;
}

std::optional<api::ServerSpec> ServerDirectory::GroupLimits(const std::string& name) const {
  auto it = group_by_reference_.find(api::ServerRefKey(name));
  if (it == group_by_reference_.end()) return std::nullopt;
  return groups_[it->second].limits;
}

Placement ServerDirectory::Place(const api::ConnectionPool& pool) const {
  LazyPlacement lazy = PlaceLazily(pool);
  if (!lazy.changed) lazy.changed = pool;
  return {std::move(*lazy.changed), std::move(lazy.refusal), std::move(lazy.notes)};
}

LazyPlacement ServerDirectory::PlaceLazily(const api::ConnectionPool& pool) const {
  LazyPlacement placement;
  auto refuse = [&](std::string code, std::string message) {
    placement.refusal = Finding{Severity::kError, std::move(code), std::move(message)};
    return placement;
  };
  const bool by_ref = !pool.spec.server_ref.empty();
  auto group_it = group_by_reference_.find(ReferenceKey(pool));
  if (group_it == group_by_reference_.end()) {
    if (by_ref) {
      return refuse("ServerNotFound", "spec.serverRef.name: PostgresServer \"" +
                                          pool.spec.server_ref + "\" does not exist");
    }
    return placement;  // an inline server no PostgresServer describes: its own declaration
  }
  const Group& group = groups_[group_it->second];
  // The member the pool names (by reference, or whose endpoint or alias it uses) sets the
  // namespace rules; the group sets the figures.
  const api::PostgresServer* member = by_ref ? Find(pool.spec.server_ref) : nullptr;
  for (size_t i : group.members) {
    if (member) break;
    for (const auto& key : ReferenceKeys(servers_[i])) {
      if (key == group_it->first) member = &servers_[i];
    }
  }
  const std::string& ns = pool.metadata.namespace_;
  const std::string server_text = "PostgresServer \"" + member->name + "\"";
  if (member->spec.allowed_namespaces && !member->spec.allowed_namespaces->contains(ns)) {
    return refuse("NamespaceNotAllowed", server_text + " does not admit pools of namespace \"" +
                                             ns + "\" (spec.allowedNamespaces)");
  }
  if (!group.limits) {
    return refuse("ServerNotObserved", server_text +
                                           " has not been observed yet and declares no "
                                           "maxConnections: nothing can be admitted on it");
  }
  api::ServerSpec server = *group.limits;
  if (by_ref) {
    server.host = member->spec.host;
    server.port = member->spec.port;
  } else {
    const api::ServerSpec& declared = pool.spec.server;
    if (declared.max_connections != server.max_connections ||
        declared.superuser_reserved_connections != server.superuser_reserved_connections ||
        declared.reserved_connections != server.reserved_connections) {
      return refuse("ServerConflict", "spec.server: declares " + Figures(declared) + " for " +
                                          group_it->first + ", which is " + server_text + " with " +
                                          Figures(server) +
                                          "; use spec.serverRef, or fix the figures");
    }
    server.host = declared.host;
    server.port = declared.port;
  }
  if (auto quota = member->spec.namespace_quotas.find(ns);
      quota != member->spec.namespace_quotas.end()) {
    server.namespace_quota = quota->second;
  }
  // From here on the pool is changed: its spec.server is the group's.
  api::ConnectionPool& placed = placement.changed.emplace(pool);
  placed.spec.server = std::move(server);
  if (auto& tls = placed.spec.tls.server;
      by_ref && tls && api::SslModeVerifies(tls->ssl_mode) && !tls->ca_ref) {
    // The pool verifies the server with the server's own CA. Its Secret may be in any namespace
    // and pods mount only their own, so the operator copies the certificate (never a key) into
    // the pool's ConfigMap, and the pods read it from there.
    if (!member->spec.ca_secret_ref) {
      return refuse("ServerCaMissing", "spec.tls.server.caRef: required: sslMode " +
                                           std::string(api::SslModeName(tls->ssl_mode)) +
                                           " verifies the server's certificate, and " +
                                           server_text + " names no CA (its spec.caSecretRef)");
    }
    tls->ca_ref =
        api::CaRef{.config_map_name = pool.metadata.name + "-config", .key = api::kServerCaKey};
    tls->ca_from_server = true;
  }
  if (pool.spec.budget_policy != group.policy && group.policy == api::BudgetPolicy::kEnforce) {
    placement.notes.push_back({Severity::kWarning, "PolicySetByServer",
                               "spec.budget.policy: Warn is ignored: " + server_text +
                                   " enforces its budget (its spec.policy)"});
  }
  placed.spec.budget_policy = group.policy;
  return placement;
}

Plan PlanOnServers(std::span<const api::ConnectionPool* const> pools,
                   const ServerDirectory& directory, const Holdings& by_reference) {
  return PlanOnRekeyed(pools, directory, directory.Rekey(by_reference));
}

Plan PlanOnRekeyed(std::span<const api::ConnectionPool* const> pools,
                   const ServerDirectory& directory, const Holdings& holdings) {
  std::vector<LazyPlacement> placements;
  placements.reserve(pools.size());
  for (const api::ConnectionPool* pool : pools) placements.push_back(directory.PlaceLazily(*pool));
  // Taken once `placements` is complete, so the placed copies no longer move.
  std::vector<const api::ConnectionPool*> placed;
  placed.reserve(pools.size());
  for (size_t i = 0; i < pools.size(); ++i) {
    if (!placements[i].refusal) placed.push_back(&placements[i].Of(*pools[i]));
  }
  Plan planned = PlanPools(placed, holdings);
  // The same order as `pools`: placed pools' plans in turn, refused ones where they stood.
  Plan plan{std::move(planned.servers), {}};
  plan.pools.reserve(pools.size());
  auto next = planned.pools.begin();
  for (size_t i = 0; i < pools.size(); ++i) {
    LazyPlacement& placement = placements[i];
    if (!placement.refusal) {
      next->findings.insert(next->findings.begin(), placement.notes.begin(), placement.notes.end());
      plan.pools.push_back(std::move(*next++));
      continue;
    }
    const api::ConnectionPool& pool = placement.Of(*pools[i]);
    PoolPlan pool_plan;
    pool_plan.namespace_ = pool.metadata.namespace_;
    pool_plan.name = pool.metadata.name;
    pool_plan.server = directory.BudgetKeyOf(ServerDirectory::ReferenceKey(pool));
    pool_plan.instances = pool.spec.pooler.instances;
    pool_plan.max_surge = pool.spec.pooler.max_surge;
    pool_plan.refused = true;
    if (auto on = holdings.find(pool_plan.server); on != holdings.end()) {
      auto it = on->second.find(pool_plan.namespace_ + "/" + pool_plan.name);
      if (it != on->second.end()) pool_plan.allocated = pool_plan.limit = it->second;
    }
    pool_plan.findings.push_back(std::move(*placement.refusal));
    plan.pools.push_back(std::move(pool_plan));
  }
  return plan;
}

std::map<std::string, int64_t> RoleGrants(std::span<const api::ConnectionPool* const> pools,
                                          const ServerDirectory& directory, const Plan& plan,
                                          const Holdings& by_reference) {
  const Holdings holdings = directory.Rekey(by_reference);
  std::map<std::string, int64_t> grants;
  for (const api::ConnectionPool* unplaced : pools) {
    const LazyPlacement placement = directory.PlaceLazily(*unplaced);
    const api::ConnectionPool& pool = placement.Of(*unplaced);
    const std::string key = pool.metadata.namespace_ + "/" + pool.metadata.name;
    auto planned = std::ranges::find_if(plan.pools, [&](const PoolPlan& p) {
      return p.namespace_ == pool.metadata.namespace_ && p.name == pool.metadata.name;
    });
    int64_t held = 0;
    const std::string budget = planned != plan.pools.end()
                                   ? planned->server
                                   : directory.BudgetKeyOf(ServerDirectory::ReferenceKey(pool));
    if (auto on = holdings.find(budget); on != holdings.end()) {
      if (auto it = on->second.find(key); it != on->second.end()) held = it->second;
    }
    const bool sized = planned != plan.pools.end() && !planned->refused &&
                       planned->databases.size() == pool.spec.databases.size();
    const int64_t pods = sized ? PodsCharged(pool.spec.pooler) : 0;
    if (pods == 0 && held == 0) continue;  // nothing runs, nothing is rolled out
    for (const auto& user : pool.spec.users) {
      int64_t per_pod = 0;
      for (size_t d = 0; sized && d < pool.spec.databases.size(); ++d) {
        const auto& db = pool.spec.databases[d];
        int64_t pair = int64_t{pool.PoolSize(db)} + pool.ReservePoolSize(db);
        if (planned->databases[d].max_db_connections > 0) {
          pair = std::min<int64_t>(pair, planned->databases[d].max_db_connections);
        }
        per_pod += pair;
      }
      if (auto cap = pool.MaxUserConnections(user)) per_pod = std::min<int64_t>(per_pod, *cap);
      if (auto limit = pool.spec.server.role_limits.find(user.name);
          limit != pool.spec.server.role_limits.end()) {
        per_pod = std::min(per_pod, limit->second);
      }
      grants[user.name] += std::max(pods * per_pod, held) + std::max<int64_t>(pods, 1);
    }
  }
  return grants;
}

}  // namespace poolkeeper::budget
