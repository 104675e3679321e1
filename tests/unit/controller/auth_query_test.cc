// authQuery, the operator's side of one PostgresServer (controller/auth_query.h), on a scripted
// API server and an in-memory database: the auth role's Secret created once and reused, a new
// password on request, the setup asked for exactly the databases the pools serve, nothing written
// without usable credentials, a missing privilege named, and removal when no pool needs it.
#include "controller/auth_query.h"

#include <gtest/gtest.h>

#include "../kube/fake_transport.h"
#include "common/base64.h"
#include "fake_database.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::FakeTransport;
using nlohmann::json;

constexpr char kNamespace[] = "poolkeeper-system";
constexpr char kSecretPath[] = "/api/v1/namespaces/poolkeeper-system/secrets/poolkeeper-auth-main";

using testing::FakeDatabase;

api::PostgresServer Server() {
  api::PostgresServer server;
  server.name = "main";
  server.generation = 3;
  return server;
}

json Stored(json annotations = json::object(), json databases = nullptr) {
  json stored = {{"metadata", {{"name", "main"}, {"annotations", annotations}}}};
  if (!databases.is_null()) stored["status"]["authQuery"]["databases"] = databases;
  return stored;
}

json StoredSecret(const std::string& password, const std::string& rotated_for) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata",
           {{"name", "poolkeeper-auth-main"},
            {"namespace", kNamespace},
            {"resourceVersion", "4"},
            {"annotations", {{kRotatedForAnnotation, rotated_for}}}}},
          {"data", {{"password", EncodeBase64(password)}}}};
}

budget::SharedPool Pool(std::string server, api::AuthMode mode, std::vector<std::string> dbnames) {
  api::ConnectionPool pool;
  pool.spec.server_ref = std::move(server);
  pool.spec.auth_mode = mode;
  for (const auto& db : dbnames) pool.spec.databases.push_back({.name = db, .dbname = db});
  return std::make_shared<const api::ConnectionPool>(std::move(pool));
}

struct AuthQueryTest : ::testing::Test {
  AuthQueryOutcome Keep(const json& stored, const std::vector<std::string>& wanted,
                        Result<postgres::Endpoint> endpoint = postgres::Endpoint{}) {
    return KeepAuthQuery({client, database, kNamespace}, Server(), stored, endpoint, wanted);
  }
  // The password the operator wrote into the Secret (server-side apply), or "".
  std::string AppliedPassword() const {
    for (const auto& request : transport.Requests()) {
      if (request.method == "PATCH" && request.path.starts_with(kSecretPath)) {
        return json::parse(request.body)["stringData"]["password"];
      }
    }
    return "";
  }
  FakeTransport transport;
  kube::Client client{transport};
  FakeDatabase database;
};

TEST(AuthQueryDatabases, OnlyAuthQueryPoolsOfThisServerSortedOnce) {
  std::vector<budget::SharedPool> pools = {
      Pool("main", api::AuthMode::kAuthQuery, {"orders", "catalog"}),
      Pool("main", api::AuthMode::kAuthQuery, {"orders"}),
      Pool("main", api::AuthMode::kUserlist, {"billing"}),
      Pool("other", api::AuthMode::kAuthQuery, {"elsewhere"}),
  };
  EXPECT_EQ(AuthQueryDatabases(pools, "main"), (std::vector<std::string>{"catalog", "orders"}));
  EXPECT_TRUE(AuthQueryDatabases(pools, "none").empty());
}

TEST_F(AuthQueryTest, FirstPassCreatesTheSecretAndSetsUpEveryDatabase) {
  transport.RespondJson("GET", kSecretPath, 404, {{"kind", "Status"}, {"code", 404}});
  transport.RespondJson("PATCH", kSecretPath, 200, json::object());
  AuthQueryOutcome outcome = Keep(Stored(), {"catalog", "orders"});
  ASSERT_EQ(database.ensured.size(), 1u);
  const postgres::AuthQuerySetup& setup = database.ensured[0];
  EXPECT_EQ(setup.role, "poolkeeper_auth");
  EXPECT_EQ(setup.databases, (std::vector<std::string>{"catalog", "orders"}));
  EXPECT_EQ(setup.password.size(), 48u);
  EXPECT_EQ(setup.password, AppliedPassword());
  EXPECT_EQ(outcome.secret, "poolkeeper-system/poolkeeper-auth-main");
  EXPECT_EQ(outcome.databases, (std::vector<std::string>{"catalog", "orders"}));
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->status, "True");
  EXPECT_EQ(outcome.condition->reason, "SetUp");
}

// spec.authQuery.memberOf reaches the setup (the function and the gate role are the database's
// business, tests/postgres/auth_query_test.cc), and the condition says who may log in.
TEST_F(AuthQueryTest, TheMembershipGateIsPassedToTheSetupAndNamedInTheCondition) {
  transport.RespondJson("GET", kSecretPath, 200, StoredSecret("kept-pw", ""));
  api::PostgresServer gated = Server();
  gated.spec.auth_query_member_of = "pooler_users";
  AuthQueryOutcome outcome =
      KeepAuthQuery({client, database, kNamespace}, gated, Stored({}, {"orders"}),
                    postgres::Endpoint{}, {"orders"});
  ASSERT_EQ(database.ensured.size(), 1u);
  EXPECT_EQ(database.ensured[0].member_of, "pooler_users");
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->status, "True");
  EXPECT_NE(outcome.condition->message.find("members of role pooler_users"), std::string::npos)
      << outcome.condition->message;

  transport.RespondJson("GET", kSecretPath, 200, StoredSecret("kept-pw", ""));
  AuthQueryOutcome open = Keep(Stored({}, {"orders"}), {"orders"});
  ASSERT_EQ(database.ensured.size(), 2u);
  EXPECT_EQ(database.ensured[1].member_of, "");
  EXPECT_NE(open.condition->message.find("no authQuery.memberOf"), std::string::npos);
}

TEST_F(AuthQueryTest, ALaterPassReusesThePasswordAndWritesNoSecret) {
  transport.RespondJson("GET", kSecretPath, 200, StoredSecret("kept-pw", ""));
  Keep(Stored({}, {"orders"}), {"orders"});
  ASSERT_EQ(database.ensured.size(), 1u);
  EXPECT_EQ(database.ensured[0].password, "kept-pw");
  EXPECT_EQ(AppliedPassword(), "");
}

TEST_F(AuthQueryTest, TheRotationAnnotationGetsANewPassword) {
  transport.RespondJson("GET", kSecretPath, 200, StoredSecret("old-pw", ""));
  transport.RespondJson("PATCH", kSecretPath, 200, json::object());
  Keep(Stored({{kRotateAuthAnnotation, "2026-11-30"}}, {"orders"}), {"orders"});
  const std::string fresh = AppliedPassword();
  EXPECT_NE(fresh, "");
  EXPECT_NE(fresh, "old-pw");
  ASSERT_EQ(database.ensured.size(), 1u);
  EXPECT_EQ(database.ensured[0].password, fresh);
  for (const auto& request : transport.Requests()) {
    if (request.method == "PATCH") {
      EXPECT_EQ(json::parse(request.body)["metadata"]["annotations"][kRotatedForAnnotation],
                "2026-11-30");
    }
  }
}

TEST_F(AuthQueryTest, WithoutCredentialsNothingIsWrittenAndTheConditionSaysWhy) {
  AuthQueryOutcome outcome =
      Keep(Stored(), {"orders"}, Fail(ErrorCode::kNotFound, "no credentialsSecretRef"));
  EXPECT_TRUE(transport.Requests().empty());
  EXPECT_TRUE(database.ensured.empty());
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->status, "False");
  EXPECT_EQ(outcome.condition->reason, "NoAdminCredentials");
  EXPECT_NE(outcome.condition->message.find("credentialsSecretRef"), std::string::npos);
}

TEST_F(AuthQueryTest, AMissingPrivilegeIsNamedAndNothingIsRecordedAsSetUp) {
  transport.RespondJson("GET", kSecretPath, 200, StoredSecret("kept-pw", ""));
  database.auth_failure = Error{ErrorCode::kUnauthorized,
                                "db:5432: authQuery needs SUPERUSER for the credentials' role",
                                {},
                                0};
  AuthQueryOutcome outcome = Keep(Stored(), {"orders"});
  EXPECT_TRUE(outcome.databases.empty());
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->reason, "AdminPrivilegeMissing");
  EXPECT_NE(outcome.condition->message.find("SUPERUSER"), std::string::npos);
  EXPECT_EQ(outcome.condition->message.find("kept-pw"), std::string::npos);
}

TEST_F(AuthQueryTest, ARefusedSetupWritesNoSecretForThePoolsToCopy) {
  transport.RespondJson("GET", kSecretPath, 404, {{"kind", "Status"}, {"code", 404}});
  database.auth_failure = Error{ErrorCode::kUnauthorized, "db:5432: needs SUPERUSER", {}, 0};
  AuthQueryOutcome outcome = Keep(Stored(), {"orders"});
  EXPECT_EQ(AppliedPassword(), "");  // no PATCH of the Secret
  EXPECT_TRUE(outcome.secret.empty());
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->reason, "AdminPrivilegeMissing");
}

TEST_F(AuthQueryTest, ADatabaseNoLongerServedIsRemovedAlone) {
  transport.RespondJson("GET", kSecretPath, 200, StoredSecret("kept-pw", ""));
  AuthQueryOutcome outcome = Keep(Stored({}, {"old", "orders"}), {"orders"});
  ASSERT_EQ(database.removed.size(), 1u);
  EXPECT_EQ(database.removed[0].first.databases, std::vector<std::string>{"old"});
  EXPECT_FALSE(database.removed[0].second);  // the role stays
  EXPECT_EQ(outcome.databases, std::vector<std::string>{"orders"});
}

TEST_F(AuthQueryTest, NoPoolLeftRemovesTheLookupTheRoleAndTheSecret) {
  transport.Respond("DELETE", kSecretPath, 200);
  AuthQueryOutcome outcome = Keep(Stored({}, {"orders"}), {});
  ASSERT_EQ(database.removed.size(), 1u);
  EXPECT_EQ(database.removed[0].first.databases, std::vector<std::string>{"orders"});
  EXPECT_TRUE(database.removed[0].second);  // and the role
  EXPECT_TRUE(outcome.databases.empty());
  EXPECT_TRUE(outcome.secret.empty());
  EXPECT_FALSE(outcome.condition);  // nothing wanted, nothing left
}

// Two PostgresServers on one PostgreSQL (equal system identifier) would each reset the one auth
// role to their own password: the first by name that wants authQuery manages it, every pass agrees.
api::PostgresServer Observed(std::string name, std::string system, bool set_up = false) {
  api::PostgresServer server;
  server.name = std::move(name);
  if (!system.empty()) server.observed = api::ServerObservation{.system_identifier = system};
  server.auth_query_set_up = set_up;
  return server;
}

TEST(AuthRoleManager, TheFirstByNameThatWantsAuthQueryOnTheSamePostgresManages) {
  const std::vector<budget::SharedPool> on_a = {Pool("a", api::AuthMode::kAuthQuery, {"orders"})};
  const std::vector<budget::SharedPool> userlist_on_a = {
      Pool("a", api::AuthMode::kUserlist, {"orders"})};
  struct Case {
    std::string what;
    std::vector<api::PostgresServer> servers;
    std::vector<budget::SharedPool> pools;
    std::string manager_of_b;
  };
  const std::vector<Case> cases = {
      {"alone", {Observed("b", "7001")}, on_a, "b"},
      {"a has authQuery pools", {Observed("a", "7001"), Observed("b", "7001")}, on_a, "a"},
      {"a set it up (status)", {Observed("a", "7001", true), Observed("b", "7001")}, {}, "a"},
      {"a wants nothing", {Observed("a", "7001"), Observed("b", "7001")}, userlist_on_a, "b"},
      {"a is another PostgreSQL", {Observed("a", "7002"), Observed("b", "7001")}, on_a, "b"},
      {"a not observed yet", {Observed("a", ""), Observed("b", "7001")}, on_a, "b"},
      {"b not observed yet", {Observed("a", "7001"), Observed("b", "")}, on_a, "b"},
      {"c comes after b",
       {Observed("b", "7001"), Observed("c", "7001", true)},
       {Pool("c", api::AuthMode::kAuthQuery, {"orders"})},
       "b"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(AuthRoleManager(c.servers, c.pools, "b"), c.manager_of_b) << c.what;
  }
}

TEST_F(AuthQueryTest, ASharedRoleIsLeftToItsManagerAndThisServersSecretGoes) {
  transport.Respond("DELETE", kSecretPath, 200);
  api::PostgresServer server = Server();
  server.observed = api::ServerObservation{.system_identifier = "7001"};
  json stored = Stored({}, {"orders"});
  stored["status"]["authQuery"]["secret"] = "poolkeeper-system/poolkeeper-auth-main";
  AuthQueryOutcome outcome = KeepAuthQuery({client, database, kNamespace}, server, stored,
                                           postgres::Endpoint{}, {"catalog", "orders"}, "aaa");
  EXPECT_TRUE(database.ensured.empty());  // nothing written on PostgreSQL
  EXPECT_TRUE(database.removed.empty());  // nor removed: the manager's setup stays
  const auto requests = transport.Requests();
  ASSERT_EQ(requests.size(), 1u);  // only the DELETE of this server's own Secret
  EXPECT_EQ(requests[0].method, "DELETE");
  EXPECT_EQ(outcome.databases, std::vector<std::string>{"orders"});  // still recorded
  EXPECT_TRUE(outcome.secret.empty());
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->status, "False");
  EXPECT_EQ(outcome.condition->reason, "AuthRoleShared");
  for (const char* part : {"PostgresServer aaa", "7001", "put the authQuery pools on"}) {
    EXPECT_NE(outcome.condition->message.find(part), std::string::npos)
        << outcome.condition->message;
  }
}

// Once the status records no Secret, a server that keeps deferring to its manager asks nothing.
TEST_F(AuthQueryTest, ASharedRoleWhoseSecretIsGoneSendsNoRequest) {
  api::PostgresServer server = Server();
  server.observed = api::ServerObservation{.system_identifier = "7001"};
  AuthQueryOutcome outcome =
      KeepAuthQuery({client, database, kNamespace}, server, Stored({}, {"orders"}),
                    postgres::Endpoint{}, {"catalog", "orders"}, "aaa");
  EXPECT_TRUE(transport.Requests().empty());
  EXPECT_TRUE(outcome.secret.empty());
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->reason, "AuthRoleShared");
}

TEST_F(AuthQueryTest, TheManagerItselfSetsUpAsBefore) {
  transport.RespondJson("GET", kSecretPath, 200, StoredSecret("kept-pw", ""));
  AuthQueryOutcome outcome =
      KeepAuthQuery({client, database, kNamespace}, Server(), Stored({}, {"orders"}),
                    postgres::Endpoint{}, {"orders"}, "main");
  EXPECT_EQ(database.ensured.size(), 1u);
  ASSERT_TRUE(outcome.condition);
  EXPECT_EQ(outcome.condition->reason, "SetUp");
}

TEST_F(AuthQueryTest, AServerThatNeverHadAuthQueryIsLeftAlone) {
  AuthQueryOutcome outcome = Keep(Stored(), {});
  EXPECT_TRUE(transport.Requests().empty());
  EXPECT_TRUE(database.ensured.empty() && database.removed.empty());
  EXPECT_FALSE(outcome.condition);
}

}  // namespace
}  // namespace poolkeeper::controller
