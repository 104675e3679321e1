// Which budget a pool is planned in, and under which limits, once PostgresServers exist. One
// physical server has one budget: PostgresServers that share a name (host:port or an alias) or an
// observed identity (system_identifier) are one group, and every pool that reaches any of them,
// by serverRef or by an inline spec.server naming one of their endpoints, is planned in that
// group's budget, under the server's policy, with the figures PostgreSQL reported when it was
// observed (declared ones until then). Pure: no I/O.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "api/postgres_server.h"
#include "budget/plan.h"
#include "budget/planner.h"

namespace poolkeeper::budget {

struct Placement {
  // The pool with spec.server set to the server it is planned against (its budget key, limits,
  // CONNECTION LIMITs, namespace quota) and spec.budget_policy to the server's; a pool that
  // verifies the server without a caRef of its own gets the server's CA
  // (ServerTlsSpec::ca_from_server).
  api::ConnectionPool pool;
  // Why it cannot be planned at all (ServerNotFound, NamespaceNotAllowed, ServerConflict,
  // ServerNotObserved, ServerCaMissing): it blocks itself only, and what it holds stays charged.
  std::optional<Finding> refusal;
  std::vector<Finding> notes;  // e.g. PolicySetByServer, when the pool asked for Warn
};

// A Placement that copies the pool only where placement changes it: planning every pool of a
// budget on each reconcile would otherwise copy each of them. `changed` is empty when the pool
// stands as it is (an inline server no PostgresServer describes, or one refused before anything
// was set on it).
struct LazyPlacement {
  std::optional<api::ConnectionPool> changed;
  std::optional<Finding> refusal;
  std::vector<Finding> notes;
  // The placed pool, given the pool that was placed.
  const api::ConnectionPool& Of(const api::ConnectionPool& unplaced) const {
    return changed ? *changed : unplaced;
  }
};

// The limits one PostgresServer stands for, before grouping: observed figures when there are
// some, declared ones otherwise; nullopt when it has neither.
std::optional<api::ServerSpec> OwnLimits(const api::PostgresServer& server);

class ServerDirectory {
 public:
  ServerDirectory() = default;  // no PostgresServers: every pool is its own inline server
  explicit ServerDirectory(std::vector<api::PostgresServer> servers);

  Placement Place(const api::ConnectionPool& pool) const;
  // The same decision as Place, without a copy when the pool stays as it is.
  LazyPlacement PlaceLazily(const api::ConnectionPool& pool) const;

  // The key a pool is indexed under before placement: ServerRefKey(serverRef), else the endpoint.
  static std::string ReferenceKey(const api::ConnectionPool& pool);
  // The budget a reference key (a pod's server annotation, an index key) is charged on.
  std::string BudgetKeyOf(const std::string& reference) const;
  // Every reference key of one budget (the group's ServerRefKeys, endpoints and aliases).
  std::set<std::string> ReferencesOf(const std::string& budget_key) const;
  // Every reference key of the budget `reference` belongs to: what the pools and pods planned
  // together with it are indexed under.
  std::set<std::string> SharingBudgetWith(const std::string& reference) const {
    return ReferencesOf(BudgetKeyOf(reference));
  }
  // Holdings by reference key (pods' annotations), summed by budget key.
  Holdings Rekey(const Holdings& by_reference) const;

  const api::PostgresServer* Find(const std::string& name) const;
  // The names of the servers that share `name`'s budget (itself included), sorted.
  std::vector<std::string> GroupOf(const std::string& name) const;
  // The limits every pool of `name`'s group is planned against, if the group has figures.
  std::optional<api::ServerSpec> GroupLimits(const std::string& name) const;
  const std::vector<api::PostgresServer>& servers() const { return servers_; }

 private:
  struct Group {
    std::string budget_key;                 // ServerRefKey of its first member by name
    std::vector<size_t> members;            // indexes into servers_, by name
    std::optional<api::ServerSpec> limits;  // the member with the least usable, with budget_key
    api::BudgetPolicy policy = api::BudgetPolicy::kWarn;  // Enforce when any member enforces
  };
  const Group* GroupOfServer(size_t index) const;

  std::vector<api::PostgresServer> servers_;  // sorted by name
  std::vector<Group> groups_;
  std::vector<size_t> group_of_;                      // server index -> group index
  std::map<std::string, size_t> group_by_reference_;  // reference key -> group index
};

// Places every pool (directory.Place) and plans the placed ones (PlanPools) on holdings keyed by
// reference (pods' server annotations). A pool the directory refuses gets a PoolPlan with
// `refused` set and the reason as its finding, and is charged what it holds; notes join the pool's
// findings.
// `pools` are read, not kept: they need only outlive the call.
Plan PlanOnServers(std::span<const api::ConnectionPool* const> pools,
                   const ServerDirectory& directory, const Holdings& by_reference = {});
inline Plan PlanOnServers(const std::vector<api::ConnectionPool>& pools,
                          const ServerDirectory& directory, const Holdings& by_reference = {}) {
  return PlanOnServers(Pointers(pools), directory, by_reference);
}
inline Plan PlanOnServers(const std::vector<SharedPool>& pools, const ServerDirectory& directory,
                          const Holdings& by_reference = {}) {
  return PlanOnServers(Pointers(pools), directory, by_reference);
}
// PlanOnServers on holdings already summed by budget key (directory.Rekey(by_reference)), for a
// caller that keeps those too: the same plan, without summing them again.
Plan PlanOnRekeyed(std::span<const api::ConnectionPool* const> pools,
                   const ServerDirectory& directory, const Holdings& holdings);

// What the pools of one budget may open as each role, across every pooler pod: per pool, the pods
// its plan counts (instances + surge) times what one pgbouncer can open as that role under the
// plan's caps, and at least what the pool's pods hold now (a refused or shrinking pool's running
// pods keep their configuration), plus one connection per pod: PostgreSQL counts a backend
// against its role until the process has exited, which trails PgBouncer closing it, so a pooler
// replacing a connection (server_lifetime, a reset) briefly has one more. The figure the operator
// sets as each role's CONNECTION LIMIT when the server enforces them.
std::map<std::string, int64_t> RoleGrants(std::span<const api::ConnectionPool* const> pools,
                                          const ServerDirectory& directory, const Plan& plan,
                                          const Holdings& by_reference);
inline std::map<std::string, int64_t> RoleGrants(const std::vector<api::ConnectionPool>& pools,
                                                 const ServerDirectory& directory, const Plan& plan,
                                                 const Holdings& by_reference) {
  return RoleGrants(Pointers(pools), directory, plan, by_reference);
}
inline std::map<std::string, int64_t> RoleGrants(const std::vector<SharedPool>& pools,
                                                 const ServerDirectory& directory, const Plan& plan,
                                                 const Holdings& by_reference) {
  return RoleGrants(Pointers(pools), directory, plan, by_reference);
}

}  // namespace poolkeeper::budget
