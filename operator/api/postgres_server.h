// The PostgresServer resource (poolkeeper.io/v1alpha1, cluster-scoped): one database server as the
// team that runs it declares it, with the budget rules every pool placed on it follows. Cluster
// scope is deliberate: a server is shared by pools of many namespaces, and its policy, overhead and
// quotas must not be editable by any one tenant; only a ClusterRole grants access to a
// cluster-scoped resource, so namespace admins cannot create, loosen or shadow one.
//
// `ParsePostgresServer` is the only way to get one from user input; it validates everything and
// reads the last observation the operator recorded in the status (lenient: the status is ours).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "common/error.h"

namespace poolkeeper::api {

inline constexpr char kServerKind[] = "PostgresServer";

// A Secret in a named namespace (the server is cluster-scoped, so a reference must say where).
struct NamespacedSecretRef {
  std::string namespace_;
  std::string name;
  bool operator==(const NamespacedSecretRef&) const = default;
};

// What the operator last read from the server itself (status.observed).
struct ServerObservation {
  int64_t max_connections = 0;
  int64_t superuser_reserved_connections = 0;
  int64_t reserved_connections = 0;
  std::string server_version;
  std::string system_identifier;  // the cluster's identity: equal on every endpoint of one server
  int64_t in_use_by_others = 0;   // client backends that are not poolkeeper's poolers
  std::map<std::string, int64_t> role_limits;      // rolconnlimit, roles that have one
  std::map<std::string, int64_t> database_limits;  // datconnlimit, databases that have one
  std::string observed_at;                         // RFC 3339
  bool operator==(const ServerObservation&) const = default;
};

struct PostgresServerSpec {
  std::string host;  // required
  int port = 5432;
  // Other names (host or host:port) by which pools reach the same server: inline pools that name
  // one of them are planned in this server's budget.
  std::vector<std::string> aliases;
  std::string ssl_mode = "prefer";  // libpq sslmode of the operator's own connection
  std::optional<NamespacedSecretRef> ca_secret_ref;  // key ca.crt
  // A role the operator observes with (keys username, password): pg_monitor is enough to observe;
  // role limit enforcement needs CREATEROLE. Without it the declared figures are all there is.
  std::optional<NamespacedSecretRef> credentials_secret_ref;
  // Declared figures: used until an observation exists, then compared with it (drift).
  std::optional<int64_t> max_connections;  // required without credentials
  int64_t superuser_reserved_connections = 3;
  int64_t reserved_connections = 0;
  Overhead overhead;
  // When true the overhead is at least what other clients use now (observed in_use_by_others).
  bool measure_overhead = false;
  BudgetPolicy policy = BudgetPolicy::kEnforce;  // the server's, not a pool author's choice
  std::optional<std::set<std::string>> allowed_namespaces;  // nullopt: every namespace
  std::map<std::string, int64_t> namespace_quotas;          // namespace -> most it may be allocated
  int observe_interval_seconds = 30;
  // When true the operator sets each pooled role's CONNECTION LIMIT to what it granted that role.
  bool enforce_role_limits = false;
  // spec.authQuery.memberOf: when set, authQuery pools on this server let in only the roles that
  // are members (directly or through other roles) of this PostgreSQL role; the operator creates
  // it NOLOGIN when missing. Empty: every login role the lookup allows (not a superuser, not pg_*,
  // not expired), as before the field existed, so an upgrade locks nobody out.
  std::string auth_query_member_of;
  bool operator==(const PostgresServerSpec&) const = default;
};

// A role whose CONNECTION LIMIT the operator set (status.roleLimits): what it set, and what the
// role had before, to restore when the role is no longer pooled.
struct ManagedRoleLimit {
  std::string role;
  int64_t limit = -1;
  int64_t previous = -1;  // -1: no limit
  bool operator==(const ManagedRoleLimit&) const = default;
};

struct PostgresServer {
  std::string name;
  std::string uid;
  std::string creation_timestamp;
  int64_t generation = 0;
  PostgresServerSpec spec;
  std::optional<ServerObservation> observed;  // from status.observed
  // status.conditions[Reachable] is False: the observation is the last good one, not current.
  bool unreachable = false;
  std::vector<ManagedRoleLimit> managed_role_limits;  // from status.roleLimits
  bool deleting = false;                              // metadata.deletionTimestamp is set
  // status.authQuery records databases or a Secret: the operator set authQuery up through this
  // server (who manages the shared auth role, controller/auth_query.h AuthRoleManager).
  bool auth_query_set_up = false;
  bool operator==(const PostgresServer&) const = default;
  // Whether `other` plans the same: equal but for the time of the observation.
  bool PlansLike(const PostgresServer& other) const;
};

// Fails with kInvalid naming every field at fault.
Result<PostgresServer> ParsePostgresServer(const nlohmann::json& object);

nlohmann::json ObservationToJson(const ServerObservation& observation);
nlohmann::json ManagedRoleLimitsToJson(const std::vector<ManagedRoleLimit>& limits);
std::optional<ServerObservation> ObservationFromJson(const nlohmann::json& observed);

// Which server a name reaches: "host:port" with the host lower-cased and a trailing dot dropped
// (db.example. and DB.example are one name). Pools whose inline spec.server has the same key share
// a budget.
std::string EndpointKey(std::string_view host, int port);
// The key of a PostgresServer as pools reference it: "postgresserver/<name>".
std::string ServerRefKey(std::string_view name);

}  // namespace poolkeeper::api
