// authQuery mode, the operator's side of one PostgresServer (docs/authentication.md): the auth
// role's generated password in a Secret the operator owns, and the role and lookup function on the
// server (postgres::ServerClient::EnsureAuthQuery) for every database an authQuery pool on it
// serves; removed again, database by database and finally the role and the Secret, when no pool
// needs them. Run by the ServerObserver (leader only) after it observed the server; the outcome is
// recorded in the server's status (status.authQuery and the AuthQueryReady condition).
//
// The Secret lives in the operator's namespace, not the pools': one auth role serves every pool
// of the server, whatever their namespaces, and only the operator needs to read it. It carries the
// expose-to-pools label so the operator's label-selected Secret cache holds it (the pools'
// reconcile copies it into their userlist, the only place PgBouncer can read it from); a pool
// author cannot name it, since a pool only reads Secrets of its own namespace.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/connection_pool.h"
#include "api/postgres_server.h"
#include "api/status.h"
#include "budget/planner.h"
#include "kube/client.h"
#include "postgres/observer.h"

namespace poolkeeper::controller {

inline constexpr char kAuthSecretPrefix[] = "poolkeeper-auth-";
inline constexpr char kAuthSecretKey[] = "password";
// Set (to any new value) on a PostgresServer to have the auth role's password replaced; the
// Secret records the value it was generated for.
inline constexpr char kRotateAuthAnnotation[] = "poolkeeper.io/rotate-auth-password";
inline constexpr char kRotatedForAnnotation[] = "poolkeeper.io/rotated-for";
inline constexpr char kConditionAuthQueryReady[] = "AuthQueryReady";

// "poolkeeper-auth-<server>": the Secret of a PostgresServer's auth role.
std::string AuthSecretName(std::string_view server);

// The databases (server-side names) the authQuery pools on `server` serve, sorted, unique.
std::vector<std::string> AuthQueryDatabases(const std::vector<budget::SharedPool>& pools,
                                            std::string_view server);
// status.authQuery.databases as the operator last recorded them.
std::vector<std::string> RecordedAuthQueryDatabases(const nlohmann::json& server_status);

// One PostgreSQL server has one auth role: PostgresServers that reach the same one (equal observed
// system identifier) and want authQuery (authQuery pools on them, or status.authQuery recorded)
// would each reset its password and gate to their own. Only the first of them by name manages it,
// which every pass of every server agrees on. Returns that server's name: `server` itself when it
// manages (or shares with nobody); `server` is counted as wanting authQuery. `servers` are the
// stored PostgresServers (`server` with its freshest observation), `pools` the ones on them.
std::string AuthRoleManager(const std::vector<api::PostgresServer>& servers,
                            const std::vector<budget::SharedPool>& pools, std::string_view server);

struct AuthQueryOutcome {
  std::vector<std::string> databases;  // set up on the server now (status.authQuery.databases)
  std::string secret;                  // "namespace/name" when the Secret exists
  // AuthQueryReady; nullopt when nothing is wanted and nothing is left (the condition goes).
  std::optional<api::Condition> condition;
};

struct AuthQueryDeps {
  kube::Client& client;
  postgres::ServerClient& database;
  std::string secret_namespace;  // the operator's namespace
};

// One pass for `server` (`stored` is the object as stored: its annotations and status).
// `endpoint` is the admin connection, or why there is none; `wanted` AuthQueryDatabases. Nothing
// is written on the server when the credentials are missing or lack the privilege: the condition
// says which (NoAdminCredentials, AdminPrivilegeMissing naming SUPERUSER, DatabaseNotFound).
// `manager` is AuthRoleManager's answer: when it names another server, nothing is written on the
// PostgreSQL server (nor removed: the manager's setup stays), this server's own auth Secret is
// deleted so its pools cannot log in with a password the role no longer has, and the condition
// is AuthRoleShared naming the manager.
AuthQueryOutcome KeepAuthQuery(const AuthQueryDeps& deps, const api::PostgresServer& server,
                               const nlohmann::json& stored,
                               const Result<postgres::Endpoint>& endpoint,
                               const std::vector<std::string>& wanted,
                               const std::string& manager = "");

}  // namespace poolkeeper::controller
