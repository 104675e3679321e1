// What poolkeeper reads from, and sets on, a PostgreSQL server itself: the settings that bound its
// connections (max_connections and the reserved slots), the cluster's identity (so two endpoints
// of one server are budgeted once), the client connections that are not poolkeeper's poolers, and
// the CONNECTION LIMITs of login roles and databases. The controller depends on the ServerClient
// interface (tests hand it an in-memory fake); LibpqClient is the one implementation that talks to
// a server, one short libpq connection per call.
//
// Privileges, as measured on PostgreSQL 15 (tests/postgres/observer_test.cc):
// - Observe needs LOGIN, CONNECT on the endpoint's database (PUBLIC has it by default) and the
//   privileges of pg_read_all_stats: without them pg_stat_activity shows other roles' sessions
//   with backend_type and client_addr NULL, so neither the client backends nor the poolers among
//   them could be told apart. Observe checks this first and fails with kUnauthorized. The minimal
//   grant is `GRANT pg_read_all_stats TO observer`; `GRANT pg_monitor TO observer` (which includes
//   it) is the conventional one. The role must inherit (the default, not NOINHERIT). The settings
//   read and pg_control_system() (the system identifier) are open to PUBLIC; no superuser needed.
// - SetRoleConnectionLimit needs CREATEROLE (superuser for a superuser role): PostgreSQL 15 says
//   only "permission denied" otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/error.h"
#include "postgres/auth_query.h"

namespace poolkeeper::postgres {

// How to reach one server. Credentials are values here, never logged, never put in an error
// message. Every value goes to libpq as a keyword/value pair, so none needs quoting or escaping.
struct Endpoint {
  std::string host;  // one host name or IP address (libpq would read "a,b" as a list: refused)
  int port = 5432;
  std::string dbname = "postgres";
  std::string user;
  // Empty: libpq falls back to PGPASSWORD and ~/.pgpass as usual.
  std::string password;
  std::string sslmode = "prefer";   // disable, allow, prefer, require, verify-ca, verify-full
  std::string sslrootcert;          // path to a CA bundle file, for verify-ca and verify-full
  int connect_timeout_seconds = 5;  // at least 1 (libpq waits at least 2; 0 would wait forever)
};

// One look at a server. Connection counts exclude the observing session itself.
struct Observation {
  int64_t max_connections = 0;
  int64_t superuser_reserved_connections = 0;
  int64_t reserved_connections = 0;  // 0 before PostgreSQL 16 (the setting does not exist)
  int server_version_num = 0;        // e.g. 150018
  std::string server_version;        // SHOW server_version, e.g. "15.18 (Debian 15.18-0+deb12u1)"
  // pg_control_system().system_identifier as decimal text: the cluster's identity, the same
  // through every host name, address and port that reaches it, different for another initdb.
  std::string system_identifier;
  int64_t client_backends = 0;  // pg_stat_activity rows with backend_type 'client backend'
  // Of those, the ones whose client_addr is not a pooler address: unix-socket clients
  // (client_addr NULL) included. What the poolers' budget must leave room for.
  int64_t in_use_by_others = 0;
  std::map<std::string, int64_t> role_limits;          // login roles with rolconnlimit >= 0
  std::map<std::string, int64_t> database_limits;      // datallowconn databases, datconnlimit >= 0
  std::map<std::string, int64_t> connections_by_role;  // client backends by usename
};

// Every failure's message starts with "host:port: ". Codes: kInvalid for an endpoint or argument
// libpq would misread; kUnavailable when the server cannot be reached, refuses for lack of slots,
// or goes away; kUnauthorized for a refused login or a missing privilege (the message names it);
// kNotFound for a missing database or role; kTimeout when a statement ran past its timeout (5 s);
// kInternal otherwise.
class ServerClient {
 public:
  virtual ~ServerClient() = default;
  // `pooler_addresses`: IP addresses of poolkeeper's pooler pods (IPv4 or IPv6 text, compared as
  // addresses). A client backend whose client_addr is one of them is a pooler; every other one
  // counts in in_use_by_others.
  virtual Result<Observation> Observe(const Endpoint& endpoint,
                                      const std::set<std::string>& pooler_addresses) = 0;
  // ALTER ROLE `role` CONNECTION LIMIT `limit` (-1: no limit; below -1: kInvalid). Returns the
  // limit the role had before, so it can be restored; kNotFound when the role does not exist.
  // Writes nothing when the role already has `limit`.
  virtual Result<int64_t> SetRoleConnectionLimit(const Endpoint& endpoint, const std::string& role,
                                                 int64_t limit) = 0;
  // authQuery mode (auth_query.h): creates or repairs the auth role and the lookup in every
  // database of `setup`, connecting to each (endpoint.dbname is only where the role is managed).
  // Idempotent: a second call changes nothing. kUnauthorized, before any write, when the
  // endpoint's role is not a superuser; kNotFound when a database does not exist.
  virtual Result<AuthQueryChanges> EnsureAuthQuery(const Endpoint& endpoint,
                                                   const AuthQuerySetup& setup) = 0;
  // Drops the lookup function and its schema in `databases` (the schema only when nothing else
  // is in it), and the auth role when `drop_role` (it must have no other object or grant left).
  // What does not exist is skipped; `setup.password` is not used.
  virtual Status RemoveAuthQuery(const Endpoint& endpoint, const AuthQuerySetup& setup,
                                 bool drop_role) = 0;
};

// How long a write may still take before this replica may no longer write (leader election's
// fence, kube::Client::WriteWindow), or why it may not write at all.
using WriteWindow = std::function<Result<std::chrono::milliseconds>()>;

// The real client: libpq, application_name "poolkeeper-observer", statement_timeout 5 s, no
// GSSAPI encryption probe (the credential is a password). Holds no state between calls.
//
// `window`, when given, is asked right before each write statement, after connecting and
// reading (BoundWrites, session.h): an error returns with nothing more written (an open
// transaction is rolled back), and otherwise the writes still to come share what is left as their
// statement_timeout, so they end before another replica could lead and write what it planned.
class LibpqClient final : public ServerClient {
 public:
  explicit LibpqClient(WriteWindow window = nullptr) : window_(std::move(window)) {}
  Result<Observation> Observe(const Endpoint& endpoint,
                              const std::set<std::string>& pooler_addresses) override;
  Result<int64_t> SetRoleConnectionLimit(const Endpoint& endpoint, const std::string& role,
                                         int64_t limit) override;
  Result<AuthQueryChanges> EnsureAuthQuery(const Endpoint& endpoint,
                                           const AuthQuerySetup& setup) override;
  Status RemoveAuthQuery(const Endpoint& endpoint, const AuthQuerySetup& setup,
                         bool drop_role) override;

 private:
  WriteWindow window_;
};

}  // namespace poolkeeper::postgres
