// authQuery mode against a real PostgreSQL 15 and the Debian PgBouncer 1.18: the operator's setup
// (postgres::LibpqClient::EnsureAuthQuery / RemoveAuthQuery) with the least privilege it claims,
// and a pooler rendered in authQuery mode serving roles no Kubernetes object names: created after
// the pooler started, with a password changed in PostgreSQL; a dropped role, a superuser and a
// pg_* role refused; the auth user's own server connections inside the plan.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "auth_query_fixture.h"
#include "budget/sizing.h"

namespace poolkeeper::pgtest {
namespace {

TEST_F(AuthQuery, SetupIsLeastPrivilegeAndASecondRunChangesNothing) {
  auto first = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb", "otherdb"}));
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_TRUE(first->role_created);
  EXPECT_EQ(first->databases, (std::vector<std::string>{"appdb", "otherdb"}));
  auto second = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb", "otherdb"}));
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_FALSE(second->Any()) << "the second run wrote something";

  // The role: login, nothing else.
  EXPECT_EQ(Value(*server_,
                  "SELECT concat_ws(',', rolcanlogin, rolsuper, rolinherit, rolcreaterole, "
                  "rolcreatedb, rolreplication, rolbypassrls) FROM pg_roles WHERE rolname = "
                  "'poolkeeper_auth'")
                .value_or("?"),
            "t,f,f,f,f,f,f");
  // The function: SECURITY DEFINER, owned by the admin, search_path fixed, EXECUTE for the auth
  // role only (not PUBLIC, not another login role).
  for (const std::string db : {"appdb", "otherdb"}) {
    EXPECT_EQ(Value(*server_,
                    "SELECT concat_ws(',', p.prosecdef, pg_get_userbyid(p.proowner), "
                    "array_to_string(p.proconfig, ';'), "
                    "has_function_privilege('poolkeeper_auth', p.oid, 'EXECUTE'), "
                    "has_function_privilege('owner', p.oid, 'EXECUTE')) FROM pg_proc p "
                    "WHERE p.oid = 'poolkeeper.lookup(text)'::regprocedure",
                    db)
                  .value_or("?"),
              "t,postgres,search_path=pg_catalog, pg_temp,t,f")
        << db;
  }
  // As the auth role: a login role's verifier, nothing for a superuser, itself or pg_*, and no
  // direct read of pg_authid.
  auto as_auth = PgConnection::Connect(
      LoopbackConnInfo(server_->port(), "appdb", api::kAuthUser, kAuthPassword));
  ASSERT_TRUE(as_auth) << as_auth.error();
  EXPECT_EQ(
      as_auth->QueryValue("SELECT left(passwd, 14) FROM poolkeeper.lookup('owner')").value_or("?"),
      "SCRAM-SHA-256$");
  for (const std::string role : {"postgres", "poolkeeper_auth", "pg_monitor", "nobody"}) {
    EXPECT_EQ(as_auth
                  ->QueryValue("SELECT count(*) FROM poolkeeper.lookup(" +
                               as_auth->QuoteLiteral(role) + ")")
                  .value_or("?"),
              "0")
        << role;
  }
  auto direct = as_auth->Query("SELECT rolpassword FROM pg_authid");
  ASSERT_FALSE(direct);
  EXPECT_NE(direct.error().find("permission denied"), std::string::npos) << direct.error();
}

TEST_F(AuthQuery, SetupRepairsAChangedFunctionAPublicGrantAndAChangedPassword) {
  ASSERT_TRUE(client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"})));
  auto conn = server_->ConnectAsSuperuser("appdb");
  ASSERT_TRUE(conn);
  ASSERT_TRUE(conn->Query("GRANT EXECUTE ON FUNCTION poolkeeper.lookup(text) TO PUBLIC"));
  ASSERT_TRUE(conn->Query("ALTER ROLE poolkeeper_auth PASSWORD 'someone-else' INHERIT"));
  auto repaired = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}));
  ASSERT_TRUE(repaired) << repaired.error().ToString();
  EXPECT_TRUE(repaired->role_altered);
  EXPECT_TRUE(repaired->password_set);
  EXPECT_EQ(repaired->databases, std::vector<std::string>{"appdb"});
  EXPECT_EQ(conn->QueryValue("SELECT has_function_privilege('owner', "
                             "'poolkeeper.lookup(text)', 'EXECUTE')")
                .value_or("?"),
            "f");
  auto again = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->Any());
}

TEST_F(AuthQuery, CredentialsWithoutSuperuserAreRefusedBeforeAnyWrite) {
  ASSERT_TRUE(server_->CreateRole("admin_lite", "lite-pw"));
  auto conn = server_->ConnectAsSuperuser();
  ASSERT_TRUE(conn);
  ASSERT_TRUE(conn->Query("ALTER ROLE admin_lite CREATEROLE"));
  postgres::Endpoint lite = Admin(*server_);
  lite.user = "admin_lite";
  lite.password = "lite-pw";
  auto refused = client_.EnsureAuthQuery(lite, LookupSetup({"appdb"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthorized);
  EXPECT_NE(refused.error().message.find("SUPERUSER"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("lite-pw"), std::string::npos);
  EXPECT_EQ(Value(*server_, "SELECT count(*) FROM pg_roles WHERE rolname = 'poolkeeper_auth'")
                .value_or("?"),
            "0");
}

TEST_F(AuthQuery, AMissingDatabaseIsNotFoundBeforeAnyWrite) {
  auto refused = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb", "nosuchdb"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kNotFound);
  EXPECT_NE(refused.error().message.find("nosuchdb"), std::string::npos);
  EXPECT_EQ(Value(*server_, "SELECT count(*) FROM pg_roles WHERE rolname = 'poolkeeper_auth'")
                .value_or("?"),
            "0");
}

// Leader election's fence (issue 12, item 3) holds for this setup too: a replica that may no
// longer write creates nothing and removes nothing.
TEST_F(AuthQuery, AFencedReplicaNeitherSetsUpNorRemoves) {
  postgres::LibpqClient fenced([]() -> Result<std::chrono::milliseconds> {
    return Fail(ErrorCode::kNotLeader, "not the leader");
  });
  auto refused = fenced.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kNotLeader);
  EXPECT_EQ(Value(*server_, "SELECT count(*) FROM pg_roles WHERE rolname = 'poolkeeper_auth'")
                .value_or("?"),
            "0");

  ASSERT_TRUE(client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"})));
  Status kept = fenced.RemoveAuthQuery(Admin(*server_), LookupSetup({"appdb"}), true);
  ASSERT_FALSE(kept);
  EXPECT_EQ(kept.error().code, ErrorCode::kNotLeader);
  EXPECT_EQ(Value(*server_, "SELECT count(*) FROM pg_roles WHERE rolname = 'poolkeeper_auth'")
                .value_or("?"),
            "1");
  EXPECT_EQ(
      Value(*server_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'poolkeeper'", "appdb")
          .value_or("?"),
      "1");
}

TEST_F(AuthQuery, TeardownRemovesWhatSetupCreated) {
  ASSERT_TRUE(client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb", "otherdb"})));
  // One database dropped from the pool: its lookup goes, the role stays for the other.
  ASSERT_TRUE(client_.RemoveAuthQuery(Admin(*server_), LookupSetup({"otherdb"}), false));
  EXPECT_EQ(
      Value(*server_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'poolkeeper'", "otherdb")
          .value_or("?"),
      "0");
  EXPECT_EQ(
      Value(*server_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'poolkeeper'", "appdb")
          .value_or("?"),
      "1");
  // No pool left: everything goes, and a second removal is a no-op.
  for (int run = 0; run < 2; ++run) {
    auto removed =
        client_.RemoveAuthQuery(Admin(*server_), LookupSetup({"appdb", "otherdb"}), true);
    ASSERT_TRUE(removed) << removed.error().ToString();
  }
  EXPECT_EQ(Value(*server_, "SELECT count(*) FROM pg_roles WHERE rolname = 'poolkeeper_auth'")
                .value_or("?"),
            "0");
  EXPECT_EQ(
      Value(*server_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'poolkeeper'", "appdb")
          .value_or("?"),
      "0");
}

TEST_F(AuthQuery, PoolerServesRolesTheClusterNeverHeardOf) {
  ASSERT_TRUE(client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"})));
  api::ConnectionPool pool = AuthPool(*server_, {"appdb"}, 6);
  budget::PoolPlan plan;
  auto bouncer = StartPooler(pool, plan);
  ASSERT_TRUE(bouncer);
  EXPECT_EQ(bouncer->ini().find("owner"), std::string::npos);  // no role is named anywhere

  // A role created after the pooler started logs in, with no change to the pooler.
  ASSERT_TRUE(server_->CreateRole("late_app", "late-pw-1"));
  auto late = PgConnection::Connect(bouncer->ConnInfo("appdb", "late_app", "late-pw-1"));
  ASSERT_TRUE(late) << late.error() << "\n" << bouncer->LogTail();
  EXPECT_EQ(late->QueryValue("SELECT current_user").value_or("?"), "late_app");

  // A password changed in PostgreSQL takes effect: the old one is refused, the new one works.
  auto conn = server_->ConnectAsSuperuser();
  ASSERT_TRUE(conn);
  ASSERT_TRUE(conn->Query("ALTER ROLE late_app PASSWORD 'late-pw-2'"));
  EXPECT_FALSE(PgConnection::Connect(bouncer->ConnInfo("appdb", "late_app", "late-pw-1")));
  auto renewed = PgConnection::Connect(bouncer->ConnInfo("appdb", "late_app", "late-pw-2"));
  ASSERT_TRUE(renewed) << renewed.error() << "\n" << bouncer->LogTail();
  EXPECT_EQ(renewed->QueryValue("SELECT 6 * 7").value_or("?"), "42");

  // A superuser, the auth role's siblings among pg_* roles, and a role dropped in PostgreSQL
  // cannot log in through the pooler.
  auto superuser = PgConnection::Connect(
      bouncer->ConnInfo("appdb", PostgresServer::kSuperuser, server_->superuser_password()));
  EXPECT_FALSE(superuser) << "a superuser logged in through the pooler";
  ASSERT_TRUE(server_->CreateRole("gone_app", "gone-pw"));
  {
    auto before = PgConnection::Connect(bouncer->ConnInfo("appdb", "gone_app", "gone-pw"));
    ASSERT_TRUE(before) << before.error();
  }
  ASSERT_TRUE(conn->Query("DROP ROLE gone_app"));
  auto dropped = PgConnection::Connect(bouncer->ConnInfo("appdb", "gone_app", "gone-pw"));
  EXPECT_FALSE(dropped) << "a dropped role logged in through the pooler";
}

TEST_F(AuthQuery, AuthConnectionsStayInsideThePlan) {
  ASSERT_TRUE(client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb", "otherdb"})));
  api::ConnectionPool pool = AuthPool(*server_, {"appdb", "otherdb"}, 4);
  budget::PoolPlan plan;
  auto bouncer = StartPooler(pool, plan);
  ASSERT_TRUE(bouncer);
  const int64_t auth_bound = budget::AuthUserPerInstance(pool);  // 2 databases x pool size 2
  ASSERT_EQ(auth_bound, 4);
  ASSERT_EQ(plan.worst_case, 4 + 4 + auth_bound);

  // Eight roles log in at once, each to both databases, holding their sessions open.
  constexpr int kRoles = 8;
  for (int r = 0; r < kRoles; ++r) {
    ASSERT_TRUE(server_->CreateRole("app" + std::to_string(r), "pw-" + std::to_string(r)));
  }
  std::vector<std::thread> clients;
  std::vector<std::optional<PgConnection>> held(kRoles * 2);
  std::vector<std::string> errors(kRoles * 2);
  for (int i = 0; i < kRoles * 2; ++i) {
    clients.emplace_back([&, i] {
      const std::string role = "app" + std::to_string(i / 2);
      auto conn = PgConnection::Connect(
          bouncer->ConnInfo(i % 2 ? "otherdb" : "appdb", role, "pw-" + std::to_string(i / 2)));
      if (!conn) {
        errors[i] = conn.error();
        return;
      }
      (void)conn->Query("SELECT pg_sleep(0.2)");
      held[i] = std::move(*conn);
    });
  }
  // Sampled while they run: the auth user's connections and the pooler's whole.
  int64_t most_auth = 0, most_total = 0;
  std::atomic<bool> done = false;
  std::thread sampler([&] {
    auto watch = server_->ConnectAsSuperuser();
    while (watch && !done) {
      auto auth = watch->QueryValue(
          "SELECT count(*) FROM pg_stat_activity WHERE usename = 'poolkeeper_auth'");
      auto total = watch->QueryValue(
          "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND "
          "usename <> 'postgres'");
      if (auth && total) {
        most_auth = std::max<int64_t>(most_auth, std::stoll(*auth));
        most_total = std::max<int64_t>(most_total, std::stoll(*total));
      }
    }
  });
  for (auto& c : clients) c.join();
  done = true;
  sampler.join();
  int logged_in = 0;
  for (const auto& h : held) logged_in += h.has_value();
  EXPECT_EQ(logged_in, kRoles * 2) << errors[0] << "\n" << bouncer->LogTail();
  EXPECT_GE(most_auth, 1) << "the lookup never ran as the auth user";
  EXPECT_LE(most_auth, auth_bound);
  EXPECT_LE(most_total, plan.worst_case);
  RecordProperty("most_auth_connections", std::to_string(most_auth));
  RecordProperty("most_pooler_connections", std::to_string(most_total));
  std::printf(
      "auth connections seen: at most %lld (bound %lld); pooler: at most %lld (plan %lld)\n",
      static_cast<long long>(most_auth), static_cast<long long>(auth_bound),
      static_cast<long long>(most_total), static_cast<long long>(plan.worst_case));
}

}  // namespace
}  // namespace poolkeeper::pgtest
