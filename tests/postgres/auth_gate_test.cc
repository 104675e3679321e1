// authQuery's membership gate (PostgresServer spec.authQuery.memberOf, postgres/auth_query.h)
// against a real PostgreSQL 15 and the Debian PgBouncer 1.18: only members of the gate role, direct
// or inherited, log in through the pooler; a role granted membership after the pooler started logs
// in with no change to the pooler; a non-member, and a superuser even when a member, are refused.
// The gate role is created NOLOGIN when missing, a second setup writes nothing, changing the gate
// re-creates the lookup, and a gate dropped by hand lets nobody in.
#include <gtest/gtest.h>

#include "auth_query_fixture.h"

namespace poolkeeper::pgtest {
namespace {

constexpr char kGate[] = "Pooler_Users";  // mixed case: quoted everywhere, never folded

class AuthGate : public AuthQuery {
 protected:
  // Whether `role` (password "<role>-pw") logs in through the pooler; the error otherwise.
  std::string LogIn(PgBouncer& bouncer, const std::string& role) {
    auto conn = PgConnection::Connect(bouncer.ConnInfo("appdb", role, role + "-pw"));
    if (!conn) return conn.error();
    auto who = conn->QueryValue("SELECT current_user");
    return who && *who == role ? "ok" : "logged in as " + who.value_or("?");
  }
  void Sql(const std::string& sql) {
    auto conn = server_->ConnectAsSuperuser();
    ASSERT_TRUE(conn) << conn.error();
    auto done = conn->Query(sql);
    ASSERT_TRUE(done) << sql << ": " << done.error();
  }
  void Role(const std::string& name, const std::string& extra = "") {
    ASSERT_TRUE(server_->CreateRole(name, name + "-pw"));
    if (!extra.empty()) Sql("ALTER ROLE " + name + " " + extra);
  }
  // Makes `member` (a role) a direct member of the gate.
  void GrantGate(const std::string& member) { Sql("GRANT \"Pooler_Users\" TO " + member); }
  // The lookup set up with the gate for appdb, and a pooler on it.
  std::unique_ptr<PgBouncer> GatedPooler() {
    EXPECT_TRUE(client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}, kGate)));
    budget::PoolPlan plan;
    return StartPooler(AuthPool(*server_, {"appdb"}, 6), plan);
  }
};

TEST_F(AuthGate, TheGateRoleIsCreatedNologinOnceAndTheSetupIsIdempotent) {
  auto first = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}, kGate));
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_TRUE(first->gate_created);
  EXPECT_EQ(Value(*server_,
                  "SELECT concat_ws(',', rolcanlogin, rolsuper) FROM pg_roles WHERE "
                  "rolname = 'Pooler_Users'")
                .value_or("?"),
            "f,f");
  auto second = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}, kGate));
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_FALSE(second->Any()) << "the second run wrote something";

  // A gate that already exists (the DBA's, with members) is used as it is.
  Sql("CREATE ROLE app_group NOLOGIN");
  auto existing = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}, "app_group"));
  ASSERT_TRUE(existing) << existing.error().ToString();
  EXPECT_FALSE(existing->gate_created);
  EXPECT_EQ(existing->databases, std::vector<std::string>{"appdb"});  // the lookup re-created
}

TEST_F(AuthGate, OnlyMembersLogInAndAGrantTakesEffectWithoutTouchingThePooler) {
  auto bouncer = GatedPooler();
  ASSERT_TRUE(bouncer);

  Role("member_app");
  GrantGate("member_app");
  Role("team");  // inherited membership: nested_app -> team -> Pooler_Users
  GrantGate("team");
  Role("nested_app");
  Sql("GRANT team TO nested_app");
  Role("outsider");
  Role("su_member", "SUPERUSER");
  GrantGate("su_member");

  EXPECT_EQ(LogIn(*bouncer, "member_app"), "ok") << bouncer->LogTail();
  EXPECT_EQ(LogIn(*bouncer, "nested_app"), "ok") << bouncer->LogTail();
  EXPECT_NE(LogIn(*bouncer, "outsider"), "ok") << "a non-member logged in";
  EXPECT_NE(LogIn(*bouncer, "su_member"), "ok") << "a superuser member logged in";
  // Directly on the server the outsider is a valid login: only the pooler refuses it.
  EXPECT_TRUE(
      PgConnection::Connect(LoopbackConnInfo(server_->port(), "appdb", "outsider", "outsider-pw")));

  // Granted after the pooler started: logs in at once, with no change to the pooler; revoked:
  // refused again at the next login.
  Role("late_app");
  EXPECT_NE(LogIn(*bouncer, "late_app"), "ok");
  GrantGate("late_app");
  EXPECT_EQ(LogIn(*bouncer, "late_app"), "ok") << bouncer->LogTail();
  Sql("REVOKE \"Pooler_Users\" FROM late_app");
  EXPECT_NE(LogIn(*bouncer, "late_app"), "ok") << "a revoked member logged in";
}

TEST_F(AuthGate, ChangingOrDroppingTheGateChangesWhoLogsIn) {
  auto bouncer = GatedPooler();
  ASSERT_TRUE(bouncer);
  Role("member_app");
  GrantGate("member_app");
  Role("outsider");
  ASSERT_NE(LogIn(*bouncer, "outsider"), "ok");

  // The gate cleared (the field removed): the lookup is re-created without it, and every login
  // role but superusers logs in again. The gate role stays with its members.
  auto open = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}));
  ASSERT_TRUE(open) << open.error().ToString();
  EXPECT_EQ(open->databases, std::vector<std::string>{"appdb"});
  EXPECT_EQ(LogIn(*bouncer, "outsider"), "ok") << bouncer->LogTail();
  EXPECT_EQ(Value(*server_,
                  "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON "
                  "g.oid = m.roleid WHERE g.rolname = 'Pooler_Users'")
                .value_or("?"),
            "1");

  // Set again, then dropped by hand: nobody logs in (the lookup fails closed, without an error
  // for every login), until the operator's next setup creates the role again.
  ASSERT_TRUE(client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}, kGate)));
  ASSERT_EQ(LogIn(*bouncer, "member_app"), "ok");
  Sql("DROP ROLE \"Pooler_Users\"");
  EXPECT_NE(LogIn(*bouncer, "member_app"), "ok") << "the gate was dropped, yet a login passed";
  EXPECT_NE(LogIn(*bouncer, "outsider"), "ok");
  auto again = client_.EnsureAuthQuery(Admin(*server_), LookupSetup({"appdb"}, kGate));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_TRUE(again->gate_created);
  EXPECT_FALSE(again->role_created);
}

}  // namespace
}  // namespace poolkeeper::pgtest
