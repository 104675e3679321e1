// The ConnectionPool resource (poolkeeper.io/v1alpha1) as plain C++ values, with every default
// already applied. `ParseConnectionPool` (parse.h) is the only way to get one from user input, and
// it validates everything: code that receives a ConnectionPool may rely on the invariants noted
// here.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace poolkeeper::api {

inline constexpr char kGroup[] = "poolkeeper.io";
inline constexpr char kVersion[] = "v1alpha1";
inline constexpr char kApiVersion[] = "poolkeeper.io/v1alpha1";
inline constexpr char kKind[] = "ConnectionPool";

// A PgBouncer release, e.g. {1, 18}. Patch levels do not change which settings exist.
struct PgBouncerVersion {
  int major = 1;
  int minor = 18;
  auto operator<=>(const PgBouncerVersion&) const = default;
  std::string ToString() const { return std::to_string(major) + "." + std::to_string(minor); }
};

enum class PoolMode { kSession, kTransaction, kStatement };
std::string_view PoolModeName(PoolMode mode);  // "session", "transaction", "statement"

enum class BudgetPolicy { kEnforce, kWarn };

// Connections kept aside for clients that do not go through poolers: a count, or a percentage of
// max_connections rounded up.
struct Overhead {
  int64_t value = 0;
  bool percent = false;
  int64_t Resolve(int64_t max_connections) const {
    return percent ? (max_connections * value + 99) / 100 : value;
  }
  bool operator==(const Overhead&) const = default;
};

struct ServerSpec {
  std::string host;  // required
  int port = 5432;
  int64_t max_connections = 0;  // required, >= 1
  int64_t superuser_reserved_connections = 3;
  int64_t reserved_connections = 0;  // PostgreSQL 16+
  Overhead overhead;

  // Filled in when the pool is placed on a PostgresServer (budget::ServerDirectory), never parsed:
  // the server's budget key, the CONNECTION LIMITs PostgreSQL itself applies (caps in the plan),
  // the most the pool's namespace may be allocated there, and whether nothing may be admitted
  // beyond what is held (the server could not be observed).
  std::string budget_key;
  std::map<std::string, int64_t> role_limits;
  std::map<std::string, int64_t> database_limits;
  std::optional<int64_t> namespace_quota;
  bool frozen = false;

  // The identity under which pools share a budget: budget_key when set, else "host:port" as
  // EndpointKey (postgres_server.h) normalises it.
  std::string Key() const;
  // Whether two declarations give the same limits (what pools sharing a budget must agree on).
  bool SameLimits(const ServerSpec& other) const {
    return max_connections == other.max_connections &&
           superuser_reserved_connections == other.superuser_reserved_connections &&
           reserved_connections == other.reserved_connections && overhead == other.overhead;
  }
};

// Timeouts in seconds, rendered only when set. 0 means "disabled" in PgBouncer for most of them.
struct Timeouts {
  std::optional<int> server_idle_timeout;
  std::optional<int> server_lifetime;
  std::optional<int> server_connect_timeout;
  std::optional<int> server_login_retry;
  std::optional<int> query_timeout;
  std::optional<int> query_wait_timeout;
  std::optional<int> client_idle_timeout;
  std::optional<int> client_login_timeout;
  std::optional<int> idle_transaction_timeout;
};

struct PoolerSpec {
  int instances = 1;  // >= 0
  int max_surge = 1;  // >= 0; pods that coexist with `instances` during a rollout
  std::string image;  // defaulted to the project's default PgBouncer image
  // The pooler agent's image (the operator's --agent-image), never from the spec: empty means pods
  // without the agent (they roll on every change, as before the agent).
  std::string agent_image;
  PgBouncerVersion pgbouncer_version;  // given, or read from the image tag
  int port = 6432;
  PoolMode pool_mode = PoolMode::kTransaction;
  int max_client_conn = 1000;
  int default_pool_size = 20;  // >= 1
  int min_pool_size = 0;       // <= default_pool_size
  int reserve_pool_size = 0;
  int reserve_pool_timeout_seconds = 5;
  std::optional<int> max_db_connections;    // >= 1 when set
  std::optional<int> max_user_connections;  // >= 1 when set
  Timeouts timeouts;
  // Further pgbouncer settings, allow-listed and version-checked by validation; keys are pgbouncer
  // names (e.g. "server_reset_query"), values are already-safe text.
  std::map<std::string, std::string> parameters;
  // Pod template overrides, passed through to the Deployment as given (Kubernetes validates them).
  nlohmann::json resources;  // null when unset
  nlohmann::json affinity;
  nlohmann::json tolerations;
  nlohmann::json node_selector;
  nlohmann::json topology_spread_constraints;
  std::string priority_class_name;
};

struct DatabaseSpec {
  std::string name;                      // what clients connect to; safe for pgbouncer.ini
  std::string dbname;                    // on the server; defaults to name
  std::optional<int> pool_size;          // per (database, user) pool; else pooler.default_pool_size
  std::optional<int> reserve_pool_size;  // else pooler.reserve_pool_size
  std::optional<int> min_pool_size;
  std::optional<int> max_db_connections;  // else pooler.max_db_connections; >= 1 when set
  std::optional<PoolMode> pool_mode;
};

struct SecretKeyRef {
  std::string name;
  std::string key = "password";
};

struct UserSpec {
  std::string name;
  SecretKeyRef password_secret_ref;
  std::optional<PoolMode> pool_mode;
  std::optional<int> max_user_connections;  // else pooler.max_user_connections; >= 1 when set
};

// An application that connects to the pool with its own client-side pool
// (SQLAlchemy pool_size/max_overflow, Django CONN_MAX_AGE workers, psycopg pools...).
struct ClientSpec {
  std::string name;
  int instances = 1;
  int pool_size = 0;
  int max_overflow = 0;
};

// How clients are authenticated (spec.authentication.mode).
// - kUserlist: every user's password is copied from its Secret into the pool's userlist.
// - kAuthQuery: PgBouncer asks the server for a role's SCRAM verifier through a lookup function
//   the operator sets up on the pool's PostgresServer (postgres/auth_query.h); the userlist holds
//   only kAuthUser, and any role the function returns may log in without a Kubernetes change.
enum class AuthMode { kUserlist, kAuthQuery };
std::string_view AuthModeName(AuthMode mode);  // "userlist", "authQuery"

// The role PgBouncer runs the lookup as, the schema and function the operator owns in every
// database an authQuery pool serves, and the query pgbouncer.ini runs (in the client's database:
// auth_dbname exists only from 1.19, and 1.18 is supported).
inline constexpr char kAuthUser[] = "poolkeeper_auth";
// The pooler agent's admin console user: in admin_users and the userlist, with a password the
// operator generates into the pool's auth Secret.
inline constexpr char kAgentUser[] = "poolkeeper_agent";
inline constexpr char kAuthSchema[] = "poolkeeper";
inline constexpr char kAuthFunction[] = "lookup";
inline constexpr char kAuthQuery[] = "SELECT usename, passwd FROM poolkeeper.lookup($1)";

// TLS on either side of the pooler (spec.tls). The sslmode names and meanings are PgBouncer's
// client_tls_sslmode / server_tls_sslmode; docs/tls.md says what each does on which side.
enum class SslMode { kDisable, kAllow, kPrefer, kRequire, kVerifyCa, kVerifyFull };
std::string_view SslModeName(SslMode mode);  // "disable", ..., "verify-full"
std::optional<SslMode> ParseSslMode(std::string_view text);
inline bool SslModeVerifies(SslMode mode) {
  return mode == SslMode::kVerifyCa || mode == SslMode::kVerifyFull;
}
// The key of a pool's own ConfigMap (<pool>-config) that holds its PostgresServer's CA certificate
// when the pool verifies the server with it (ServerTlsSpec::ca_from_server).
inline constexpr char kServerCaKey[] = "server-ca.crt";

// The oldest TLS version PgBouncer may negotiate: 1.2 (TLS 1.2 and 1.3) or 1.3 only.
enum class TlsVersion { kTls12, kTls13 };

// Clients -> pgbouncer. The certificate Secret is in the pool's namespace, of type
// kubernetes.io/tls or any Secret with the keys tls.crt and tls.key (a cert-manager Certificate's
// Secret as it is); its ca.crt verifies client certificates under verify-ca / verify-full.
struct ClientTlsSpec {
  SslMode ssl_mode = SslMode::kRequire;
  std::string certificate_secret_name;  // required
  TlsVersion min_version = TlsVersion::kTls12;
  bool operator==(const ClientTlsSpec&) const = default;
};

// Where a CA certificate (PEM) is: a key of a Secret or a ConfigMap in the pool's namespace.
// Both carry the opt-in label (secrets::kExposeLabel): the operator watches only labelled ones.
struct CaRef {
  std::string secret_name;  // exactly one of secret_name, config_map_name
  std::string config_map_name;
  std::string key = "ca.crt";
  bool operator==(const CaRef&) const = default;
};

// pgbouncer -> PostgreSQL. The protocol versions stay PgBouncer's default ("secure": TLS 1.2 and
// 1.3) unless pooler.parameters.server_tls_protocols says otherwise.
struct ServerTlsSpec {
  SslMode ssl_mode = SslMode::kPrefer;  // PgBouncer's own default
  // Required by verify-ca / verify-full, unless the pool is on a PostgresServer that names a CA
  // (its caSecretRef): placement then points it at the copy in the pool's ConfigMap.
  std::optional<CaRef> ca_ref;
  // Set by placement (budget::ServerDirectory::Place), never parsed: ca_ref is the pool's own
  // ConfigMap, key kServerCaKey, which the operator fills with its PostgresServer's CA certificate.
  bool ca_from_server = false;
  bool operator==(const ServerTlsSpec&) const = default;
};

struct TlsSpec {
  std::optional<ClientTlsSpec> client;  // absent: client TLS off (client_tls_sslmode disable)
  std::optional<ServerTlsSpec> server;  // absent: PgBouncer's defaults (prefer, no CA)
};

struct ConnectionPoolSpec {
  // The server: inline (server.host set by the spec), or a PostgresServer by name (server_ref), in
  // which case `server` is empty until budget::ServerDirectory places the pool.
  ServerSpec server;
  std::string server_ref;
  PoolerSpec pooler;
  std::vector<DatabaseSpec> databases;  // at least one, names unique
  // Names unique. userlist: at least one, each with a passwordSecretRef. authQuery: optional
  // (per-user settings only; a passwordSecretRef is ignored, never read).
  std::vector<UserSpec> users;
  AuthMode auth_mode = AuthMode::kUserlist;
  BudgetPolicy budget_policy = BudgetPolicy::kEnforce;
  std::vector<ClientSpec> clients;
  TlsSpec tls;
  // PAUSE on every pod (clients wait, server connections are released), false RESUME: carried to
  // the pooler agents by the ConfigMap's `paused` key; without the agent it cannot be honoured.
  bool paused = false;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_ = "default";
  std::string uid;                 // empty offline
  std::string creation_timestamp;  // RFC 3339, empty offline
  std::string resource_version;
  int64_t generation = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct ConnectionPool {
  ObjectMeta metadata;
  ConnectionPoolSpec spec;

  // Effective per-database values, after falling back to the pooler-wide ones.
  int PoolSize(const DatabaseSpec& db) const {
    return db.pool_size.value_or(spec.pooler.default_pool_size);
  }
  int ReservePoolSize(const DatabaseSpec& db) const {
    return db.reserve_pool_size.value_or(spec.pooler.reserve_pool_size);
  }
  std::optional<int> MaxDbConnections(const DatabaseSpec& db) const {
    return db.max_db_connections ? db.max_db_connections : spec.pooler.max_db_connections;
  }
  std::optional<int> MaxUserConnections(const UserSpec& user) const {
    return user.max_user_connections ? user.max_user_connections : spec.pooler.max_user_connections;
  }
};

}  // namespace poolkeeper::api
