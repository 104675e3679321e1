// The postgres module's LibpqClient against a real PostgreSQL 15 started by the harness with
// non-default settings: what it reads (settings, identity, other clients, CONNECTION LIMITs), what
// it sets (a role's limit, enforced by PostgreSQL), which privileges it needs, and which error
// codes its failures carry.
#include "postgres/observer.h"

#include <gtest/gtest.h>
#include <spdlog/fmt/fmt.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>

#include "harness.h"
#include "postgres/session.h"

namespace poolkeeper::pgtest {
namespace {

using postgres::Endpoint;
using postgres::LibpqClient;
using postgres::Observation;

Endpoint EndpointOf(const PostgresServer& server, const std::string& user,
                    const std::string& password) {
  Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = server.port();
  endpoint.user = user;
  endpoint.password = password;
  return endpoint;  // sslmode "prefer": the server has no TLS, libpq falls back to plain
}

Endpoint SuperuserEndpoint(const PostgresServer& server) {
  return EndpointOf(server, PostgresServer::kSuperuser, server.superuser_password());
}

// Observes until `done` holds or 10 s pass, and returns the last observation. The counts need the
// wait: a client's PQfinish returns before its backend has left pg_stat_activity, so the
// harness's own connections (CreateRole, GRANT) may still be seen for a moment.
Result<Observation> ObserveUntil(const Endpoint& endpoint, const std::set<std::string>& poolers,
                                 const std::function<bool(const Observation&)>& done) {
  LibpqClient client;
  Result<Observation> seen;
  WaitFor(
      [&] {
        seen = client.Observe(endpoint, poolers);
        return !seen || done(*seen);
      },
      10s);
  return seen;
}

Outcome<void> RunAsSuperuser(const PostgresServer& server, const std::string& sql) {
  auto conn = server.ConnectAsSuperuser();
  if (!conn) return std::unexpected(conn.error());
  auto done = conn->Query(sql);
  if (!done) return std::unexpected(done.error());
  return {};
}

std::string Describe(const Result<Observation>& seen) {
  if (!seen) return seen.error().ToString();
  std::string roles;
  for (const auto& [role, count] : seen->connections_by_role) {
    roles += fmt::format(" {}={}", role, count);
  }
  return fmt::format("client_backends={} in_use_by_others={} by role:{}", seen->client_backends,
                     seen->in_use_by_others, roles);
}

class Observer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = MissingPrerequisite()) GTEST_SKIP() << *missing;
  }
  LibpqClient client_;
};

TEST_F(Observer, ReadsTheServersOwnFigures) {
  auto server = PostgresServer::Start({.max_connections = 37, .superuser_reserved_connections = 4});
  ASSERT_TRUE(server) << server.error();
  auto seen = client_.Observe(SuperuserEndpoint(**server), {});
  ASSERT_TRUE(seen) << seen.error().ToString();
  EXPECT_EQ(seen->max_connections, 37);
  EXPECT_EQ(seen->superuser_reserved_connections, 4);
  EXPECT_EQ(seen->reserved_connections, 0);  // PostgreSQL 15 has no such setting
  EXPECT_GE(seen->server_version_num, 150000);
  EXPECT_LT(seen->server_version_num, 160000);

  auto conn = (*server)->ConnectAsSuperuser();
  ASSERT_TRUE(conn) << conn.error();
  auto identifier = conn->QueryValue("SELECT system_identifier FROM pg_control_system()");
  ASSERT_TRUE(identifier) << identifier.error();
  EXPECT_EQ(seen->system_identifier, *identifier);
  EXPECT_FALSE(seen->system_identifier.empty());
  EXPECT_EQ(seen->system_identifier.find_first_not_of("0123456789"), std::string::npos)
      << seen->system_identifier;
  EXPECT_EQ(seen->server_version, conn->QueryValue("SHOW server_version").value_or("?"));
}

TEST_F(Observer, TwoEndpointsOfOneServerShareAnIdentity) {
  auto server = PostgresServer::Start({.max_connections = 20});
  ASSERT_TRUE(server) << server.error();
  auto by_address = client_.Observe(SuperuserEndpoint(**server), {});
  Endpoint by_name_endpoint = SuperuserEndpoint(**server);
  by_name_endpoint.host = "localhost";
  auto by_name = client_.Observe(by_name_endpoint, {});
  ASSERT_TRUE(by_address) << by_address.error().ToString();
  ASSERT_TRUE(by_name) << by_name.error().ToString();
  EXPECT_EQ(by_address->system_identifier, by_name->system_identifier);

  auto other = PostgresServer::Start({.max_connections = 20});
  ASSERT_TRUE(other) << other.error();
  auto other_seen = client_.Observe(SuperuserEndpoint(**other), {});
  ASSERT_TRUE(other_seen) << other_seen.error().ToString();
  EXPECT_NE(other_seen->system_identifier, by_address->system_identifier);
}

TEST_F(Observer, CountsOtherClientsButNotPoolers) {
  auto server = PostgresServer::Start({.max_connections = 30});
  ASSERT_TRUE(server) << server.error();
  ASSERT_TRUE((*server)->CreateRole("app", "app-password"));
  std::vector<PgConnection> clients;
  for (int i = 0; i < 3; ++i) {
    auto conn = PgConnection::Connect(
        LoopbackConnInfo((*server)->port(), "postgres", "app", "app-password"));
    ASSERT_TRUE(conn) << conn.error();
    clients.push_back(std::move(*conn));
  }
  const Endpoint endpoint = SuperuserEndpoint(**server);

  // No poolers: every client backend but the observer's own is someone else's.
  auto seen = ObserveUntil(endpoint, {}, [](const Observation& o) {
    return o.client_backends == 3 && o.in_use_by_others == 3;
  });
  ASSERT_TRUE(seen) << seen.error().ToString();
  EXPECT_EQ(seen->client_backends, 3) << Describe(seen);
  EXPECT_EQ(seen->in_use_by_others, 3) << Describe(seen);
  EXPECT_EQ(seen->connections_by_role, (std::map<std::string, int64_t>{{"app", 3}}));

  // The same clients, their address now a pooler's; an IPv4-mapped spelling is the same address.
  for (std::string pooler : {"127.0.0.1", "::ffff:127.0.0.1"}) {
    seen = client_.Observe(endpoint, {pooler, "10.1.2.3"});
    ASSERT_TRUE(seen) << seen.error().ToString();
    EXPECT_EQ(seen->client_backends, 3) << pooler << ": " << Describe(seen);
    EXPECT_EQ(seen->in_use_by_others, 0) << pooler << ": " << Describe(seen);
  }

  // A unix-socket client has no address (client_addr NULL): never a pooler.
  auto local = PgConnection::Connect(fmt::format(
      "host='{}' port={} dbname=postgres user=app password=app-password sslmode=disable",
      (*server)->socket_dir(), (*server)->port()));
  ASSERT_TRUE(local) << local.error();
  seen = client_.Observe(endpoint, {"127.0.0.1"});
  ASSERT_TRUE(seen) << seen.error().ToString();
  EXPECT_EQ(seen->client_backends, 4) << Describe(seen);
  EXPECT_EQ(seen->in_use_by_others, 1) << Describe(seen);
  EXPECT_EQ(seen->connections_by_role, (std::map<std::string, int64_t>{{"app", 4}}));
}

TEST_F(Observer, ReadsRoleAndDatabaseConnectionLimits) {
  auto server = PostgresServer::Start({.max_connections = 30});
  ASSERT_TRUE(server) << server.error();
  ASSERT_TRUE((*server)->CreateRole("limited", "limited-password"));
  ASSERT_TRUE((*server)->CreateRole("unlimited", "unlimited-password"));
  ASSERT_TRUE((*server)->CreateDatabase("shop", "limited"));
  ASSERT_TRUE((*server)->CreateDatabase("open", "limited"));
  ASSERT_TRUE((*server)->CreateDatabase("closed", "limited"));
  auto setup = RunAsSuperuser(
      **server,
      "ALTER ROLE limited CONNECTION LIMIT 7;"
      "CREATE ROLE group_role NOLOGIN CONNECTION LIMIT 5;"  // cannot log in: left out
      "ALTER DATABASE shop CONNECTION LIMIT 11;"
      "ALTER DATABASE closed ALLOW_CONNECTIONS false CONNECTION LIMIT 3");
  ASSERT_TRUE(setup) << setup.error();

  auto seen = client_.Observe(SuperuserEndpoint(**server), {});
  ASSERT_TRUE(seen) << seen.error().ToString();
  EXPECT_EQ(seen->role_limits, (std::map<std::string, int64_t>{{"limited", 7}}));
  EXPECT_EQ(seen->database_limits, (std::map<std::string, int64_t>{{"shop", 11}}));
}

TEST_F(Observer, SetsAndRestoresRoleConnectionLimit) {
  auto server = PostgresServer::Start({.max_connections = 30});
  ASSERT_TRUE(server) << server.error();
  ASSERT_TRUE((*server)->CreateRole("capped", "capped-password"));
  const Endpoint superuser = SuperuserEndpoint(**server);
  const std::string capped =
      LoopbackConnInfo((*server)->port(), "postgres", "capped", "capped-password");

  auto previous = client_.SetRoleConnectionLimit(superuser, "capped", 2);
  ASSERT_TRUE(previous) << previous.error().ToString();
  EXPECT_EQ(*previous, -1);
  auto seen = client_.Observe(superuser, {});
  ASSERT_TRUE(seen) << seen.error().ToString();
  EXPECT_EQ(seen->role_limits, (std::map<std::string, int64_t>{{"capped", 2}}));

  // PostgreSQL itself now holds the role to 2.
  auto first = PgConnection::Connect(capped);
  auto second = PgConnection::Connect(capped);
  ASSERT_TRUE(first) << first.error();
  ASSERT_TRUE(second) << second.error();
  auto third = PgConnection::Connect(capped);
  ASSERT_FALSE(third) << "a third connection got past CONNECTION LIMIT 2";
  EXPECT_NE(third.error().find("too many connections for role \"capped\""), std::string::npos)
      << third.error();

  // Setting what is already there writes nothing and reports it.
  EXPECT_EQ(client_.SetRoleConnectionLimit(superuser, "capped", 2).value_or(-99), 2);
  previous = client_.SetRoleConnectionLimit(superuser, "capped", -1);
  ASSERT_TRUE(previous) << previous.error().ToString();
  EXPECT_EQ(*previous, 2);
  third = PgConnection::Connect(capped);
  EXPECT_TRUE(third) << third.error();

  auto unknown = client_.SetRoleConnectionLimit(superuser, "nobody", 3);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound) << unknown.error().ToString();
  auto below = client_.SetRoleConnectionLimit(superuser, "capped", -2);
  ASSERT_FALSE(below);
  EXPECT_EQ(below.error().code, ErrorCode::kInvalid) << below.error().ToString();

  // ALTER ROLE ... CONNECTION LIMIT takes CREATEROLE; pg_monitor is not enough.
  ASSERT_TRUE((*server)->CreateRole("monitor", "monitor-password"));
  ASSERT_TRUE((*server)->CreateRole("admin", "admin-password"));
  ASSERT_TRUE(RunAsSuperuser(**server, "GRANT pg_monitor TO monitor; ALTER ROLE admin CREATEROLE"));
  auto refused = client_.SetRoleConnectionLimit(EndpointOf(**server, "monitor", "monitor-password"),
                                                "capped", 5);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthorized) << refused.error().ToString();
  EXPECT_NE(refused.error().message.find("CREATEROLE"), std::string::npos)
      << refused.error().message;
  auto allowed =
      client_.SetRoleConnectionLimit(EndpointOf(**server, "admin", "admin-password"), "capped", 5);
  ASSERT_TRUE(allowed) << allowed.error().ToString();
  EXPECT_EQ(*allowed, -1);
}

// Issue 12, item 3, for the writes that do not go to the API server: a replica that may no longer
// write (leader election's fence says so) writes nothing, and one that may writes only within the
// time it has left, even when the role's row is locked by someone else.
TEST_F(Observer, RoleLimitWritesStayInsideTheWriteWindow) {
  auto server = PostgresServer::Start({.max_connections = 20});
  ASSERT_TRUE(server) << server.error();
  ASSERT_TRUE((*server)->CreateRole("capped", "capped-password"));
  const Endpoint superuser = SuperuserEndpoint(**server);

  LibpqClient not_leader([]() -> Result<std::chrono::milliseconds> {
    return Fail(ErrorCode::kNotLeader, "not the leader");
  });
  auto refused = not_leader.SetRoleConnectionLimit(superuser, "capped", 2);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kNotLeader);
  auto seen = client_.Observe(superuser, {});
  ASSERT_TRUE(seen) << seen.error().ToString();
  EXPECT_FALSE(seen->role_limits.contains("capped")) << "written although fenced";

  // Another session holds the role's row: the write waits for it only as long as the window
  // allows (400 ms: 200 for the ALTER), not the session's 5 s.
  auto holder = PgConnection::Connect((*server)->SuperuserConnInfo());
  ASSERT_TRUE(holder) << holder.error();
  ASSERT_TRUE(holder->Query("BEGIN; ALTER ROLE capped CONNECTION LIMIT 7"));
  LibpqClient short_window(
      []() -> Result<std::chrono::milliseconds> { return std::chrono::milliseconds(400); });
  auto start = std::chrono::steady_clock::now();
  auto bounded = short_window.SetRoleConnectionLimit(superuser, "capped", 2);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(bounded);
  EXPECT_EQ(bounded.error().code, ErrorCode::kTimeout) << bounded.error().ToString();
  EXPECT_LT(took, std::chrono::seconds(3)) << "the write waited past its window";
  ASSERT_TRUE(holder->Query("ROLLBACK"));

  auto written = short_window.SetRoleConnectionLimit(superuser, "capped", 2);
  ASSERT_TRUE(written) << written.error().ToString();
  EXPECT_EQ(*written, -1);
}

TEST_F(Observer, ObservesAsAMonitoringRole) {
  auto server = PostgresServer::Start({.max_connections = 33});
  ASSERT_TRUE(server) << server.error();
  for (const char* role : {"app", "monitor", "stats", "plain", "noinherit"}) {
    ASSERT_TRUE((*server)->CreateRole(role, std::string(role) + "-password"));
  }
  ASSERT_TRUE(RunAsSuperuser(**server,
                             "GRANT pg_monitor TO monitor; GRANT pg_read_all_stats TO stats;"
                             "GRANT pg_monitor TO noinherit; ALTER ROLE noinherit NOINHERIT"));
  auto app =
      PgConnection::Connect(LoopbackConnInfo((*server)->port(), "postgres", "app", "app-password"));
  ASSERT_TRUE(app) << app.error();

  // pg_monitor, or just pg_read_all_stats which it includes: the same figures a superuser gets.
  for (const char* role : {"monitor", "stats"}) {
    Endpoint endpoint = EndpointOf(**server, role, std::string(role) + "-password");
    auto seen = ObserveUntil(endpoint, {}, [](const Observation& o) {
      return o.client_backends == 1 && o.in_use_by_others == 1;
    });
    ASSERT_TRUE(seen) << role << ": " << seen.error().ToString();
    EXPECT_EQ(seen->max_connections, 33) << role;
    EXPECT_FALSE(seen->system_identifier.empty()) << role;
    EXPECT_EQ(seen->in_use_by_others, 1) << role << ": " << Describe(seen);
    EXPECT_EQ(seen->connections_by_role, (std::map<std::string, int64_t>{{"app", 1}})) << role;
    seen = client_.Observe(endpoint, {"127.0.0.1"});  // client_addr is visible to it
    ASSERT_TRUE(seen) << role << ": " << seen.error().ToString();
    EXPECT_EQ(seen->client_backends, 1) << role << ": " << Describe(seen);
    EXPECT_EQ(seen->in_use_by_others, 0) << role << ": " << Describe(seen);
  }

  // Without those privileges other roles' sessions show backend_type and client_addr NULL: the
  // figures would be wrong, so the observer refuses, naming the grant.
  for (const char* role : {"plain", "noinherit"}) {
    std::string password = std::string(role) + "-password";
    auto refused = client_.Observe(EndpointOf(**server, role, password), {});
    ASSERT_FALSE(refused) << role << " observed without pg_read_all_stats";
    EXPECT_EQ(refused.error().code, ErrorCode::kUnauthorized) << refused.error().ToString();
    EXPECT_TRUE(
        refused.error().message.starts_with(fmt::format("127.0.0.1:{}: ", (*server)->port())));
    EXPECT_NE(refused.error().message.find("pg_read_all_stats"), std::string::npos)
        << refused.error().message;
    EXPECT_EQ(refused.error().message.find(password), std::string::npos);
  }
}

TEST_F(Observer, UnreachableServerIsUnavailable) {
  const int port = FreeLoopbackPort();  // nothing listens there
  Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = port;
  endpoint.user = "postgres";
  endpoint.password = "never-in-a-message-3141";
  endpoint.connect_timeout_seconds = 2;
  auto started = Clock::now();
  auto seen = client_.Observe(endpoint, {});
  auto set = client_.SetRoleConnectionLimit(endpoint, "app", 3);
  auto elapsed = Clock::now() - started;
  ASSERT_FALSE(seen);
  ASSERT_FALSE(set);
  for (const Error& error : {seen.error(), set.error()}) {
    EXPECT_EQ(error.code, ErrorCode::kUnavailable) << error.ToString();
    EXPECT_TRUE(error.message.starts_with(fmt::format("127.0.0.1:{}: ", port))) << error.message;
    EXPECT_EQ(error.message.find(endpoint.password), std::string::npos) << error.message;
    EXPECT_EQ(error.message.find('\n'), std::string::npos) << error.message;
  }
  EXPECT_LT(elapsed, 4s);
}

TEST_F(Observer, WrongPasswordIsUnauthorized) {
  auto server = PostgresServer::Start({.max_connections = 20});
  ASSERT_TRUE(server) << server.error();
  ASSERT_TRUE((*server)->CreateRole("app", "the-right-one"));
  const std::string prefix = fmt::format("127.0.0.1:{}: ", (*server)->port());

  for (const char* user : {"app", "postgres", "nobody"}) {  // no such role: the same refusal
    Endpoint endpoint = EndpointOf(**server, user, "the-wrong-one");
    auto seen = client_.Observe(endpoint, {});
    ASSERT_FALSE(seen) << user;
    EXPECT_EQ(seen.error().code, ErrorCode::kUnauthorized) << seen.error().ToString();
    EXPECT_TRUE(seen.error().message.starts_with(prefix)) << seen.error().message;
    EXPECT_NE(seen.error().message.find("password authentication failed"), std::string::npos)
        << seen.error().message;
    EXPECT_EQ(seen.error().message.find("the-wrong-one"), std::string::npos);
  }
  if (std::getenv("PGPASSWORD") == nullptr) {  // else libpq would use it for an empty password
    auto none = client_.Observe(EndpointOf(**server, "app", ""), {});
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, ErrorCode::kUnauthorized) << none.error().ToString();
  }
  Endpoint missing_database = SuperuserEndpoint(**server);
  missing_database.dbname = "no_such_database";
  auto missing = client_.Observe(missing_database, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound) << missing.error().ToString();
}

TEST_F(Observer, RequiredTlsFromAPlainServerIsUnavailable) {
  auto server = PostgresServer::Start({.max_connections = 20});
  ASSERT_TRUE(server) << server.error();
  Endpoint endpoint = SuperuserEndpoint(**server);
  endpoint.sslmode = "require";
  auto seen = client_.Observe(endpoint, {});
  ASSERT_FALSE(seen);
  EXPECT_EQ(seen.error().code, ErrorCode::kUnavailable) << seen.error().ToString();
  EXPECT_NE(seen.error().message.find("SSL"), std::string::npos) << seen.error().message;
}

// The session every call runs in: named for pg_stat_activity, and no statement can hang a
// reconcile (past the timeout it fails with kTimeout).
TEST_F(Observer, SessionHasANameAndAStatementTimeout) {
  auto server = PostgresServer::Start({.max_connections = 20});
  ASSERT_TRUE(server) << server.error();
  auto session = postgres::Session::Open(SuperuserEndpoint(**server));
  ASSERT_TRUE(session) << session.error().ToString();
  auto rows = session->Query(
      "settings",
      "SELECT current_setting('application_name'), current_setting('statement_timeout')");
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_EQ(rows->at(0).at(0), "poolkeeper-observer");
  EXPECT_EQ(rows->at(0).at(1), "5s");

  ASSERT_TRUE(session->Query("shorter timeout", "SET statement_timeout = 20"));
  auto slow = session->Query("sleeping", "SELECT pg_sleep(5)");
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, ErrorCode::kTimeout) << slow.error().ToString();
  EXPECT_NE(slow.error().message.find("statement timeout"), std::string::npos)
      << slow.error().message;
}

// Checked before any connection: nothing here listens.
TEST(ObserverArguments, RefusesWhatLibpqWouldMisread) {
  LibpqClient client;
  Endpoint good;
  good.host = "127.0.0.1";
  good.port = 1;
  good.user = "observer";
  std::vector<std::pair<std::string, Endpoint>> cases;
  auto with = [&](std::string name, auto change) {
    Endpoint endpoint = good;
    change(endpoint);
    cases.emplace_back(std::move(name), endpoint);
  };
  with("two hosts", [](Endpoint& e) { e.host = "10.0.0.1,10.0.0.2"; });
  with("no host", [](Endpoint& e) { e.host = ""; });
  with("port 0", [](Endpoint& e) { e.port = 0; });
  with("no user", [](Endpoint& e) { e.user = ""; });
  with("unknown sslmode", [](Endpoint& e) { e.sslmode = "sometimes"; });
  with("no timeout", [](Endpoint& e) { e.connect_timeout_seconds = 0; });
  for (const auto& [name, endpoint] : cases) {
    auto seen = client.Observe(endpoint, {});
    ASSERT_FALSE(seen) << name;
    EXPECT_EQ(seen.error().code, ErrorCode::kInvalid) << name << ": " << seen.error().ToString();
  }
  auto bad_pooler = client.Observe(good, {"10.0.0.1", "pooler-0"});
  ASSERT_FALSE(bad_pooler);
  EXPECT_EQ(bad_pooler.error().code, ErrorCode::kInvalid) << bad_pooler.error().ToString();
  auto below = client.SetRoleConnectionLimit(good, "app", -5);
  ASSERT_FALSE(below);
  EXPECT_EQ(below.error().code, ErrorCode::kInvalid) << below.error().ToString();
}

}  // namespace
}  // namespace poolkeeper::pgtest
