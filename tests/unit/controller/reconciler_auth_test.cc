// The reconcile of a pool in authQuery mode: it waits for the auth role's Secret the operator
// keeps for its PostgresServer, then renders a userlist with the auth user alone; no application
// password reaches any object it writes, even with the application's Secret at hand.
#include <gtest/gtest.h>

#include "common/base64.h"
#include "controller/auth_query.h"
#include "reconciler_fixture.h"

namespace poolkeeper::controller {
namespace {

constexpr char kOperatorNamespace[] = "poolkeeper-system";

json AuthPoolJson() {
  json pool = PoolJson("orders", 1, 5, "2026-11-23T09:00:00Z");
  pool["spec"].erase("server");
  pool["spec"]["serverRef"] = {{"name", "main"}};
  pool["spec"]["authentication"] = {{"mode", "authQuery"}};
  // A user with per-user settings, and a Secret reference that authQuery ignores.
  pool["spec"]["users"] = json::parse(
      R"([{"name": "app", "maxUserConnections": 3, "passwordSecretRef": {"name": "app-db"}}])");
  return pool;
}

class AuthReconcileTest : public ReconcilerTest {
 protected:
  void SetUp() override {
    ReconcilerTest::SetUp();  // the application's Secret "app-db" (password "s3cret") exists
    auto server = api::ParsePostgresServer(json::parse(R"({
      "apiVersion": "poolkeeper.io/v1alpha1", "kind": "PostgresServer",
      "metadata": {"name": "main", "uid": "uid-main", "generation": 1},
      "spec": {"host": "db.shop", "maxConnections": 40}})"));
    ASSERT_TRUE(server) << server.error().message;
    directory_ = std::make_unique<budget::ServerDirectory>(std::vector{*server});
  }
  PoolInputs AuthInputs(const json& pool) {
    PoolInputs in = Inputs(pool);
    in.directory = directory_.get();
    in.auth_secret_namespace = kOperatorNamespace;
    return in;
  }
  std::unique_ptr<budget::ServerDirectory> directory_;
};

TEST_F(AuthReconcileTest, WaitsForTheAuthSecretWritingNothing) {
  ReconcileResult result = Reconcile(AuthInputs(AuthPoolJson()));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_TRUE(result.create_pods.empty());
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "AuthQueryNotReady");
}

TEST_F(AuthReconcileTest, TheUserlistHoldsTheAuthUserAndNoApplicationPassword) {
  secrets_.Put(
      {kOperatorNamespace, AuthSecretName("main"), "12", {{"password", "auth-9f3"}}, kExposed});
  ReconcileResult result = Reconcile(AuthInputs(AuthPoolJson()));
  ASSERT_FALSE(result.apply.empty()) << result.blocked_reason;
  std::string written;
  for (const auto& object : result.apply) written += object.dump();
  for (const auto& pod : result.create_pods) written += pod.dump();
  if (result.status) written += result.status->dump();
  for (const auto& event : result.events) written += event.message;
  EXPECT_EQ(written.find("s3cret"), std::string::npos);
  EXPECT_EQ(written.find(EncodeBase64("s3cret")), std::string::npos);
  EXPECT_NE(written.find(EncodeBase64("\"poolkeeper_auth\" \"auth-9f3\"\n")), std::string::npos);
  EXPECT_NE(written.find("auth_query = SELECT usename, passwd FROM poolkeeper.lookup($1)"),
            std::string::npos);
}

TEST_F(AuthReconcileTest, ANewAuthPasswordRollsThePods) {
  secrets_.Put(
      {kOperatorNamespace, AuthSecretName("main"), "12", {{"password", "auth-1"}}, kExposed});
  ReconcileResult before = Reconcile(AuthInputs(AuthPoolJson()));
  secrets_.Put(
      {kOperatorNamespace, AuthSecretName("main"), "13", {{"password", "auth-2"}}, kExposed});
  ReconcileResult after = Reconcile(AuthInputs(AuthPoolJson()));
  ASSERT_TRUE(before.status && after.status);
  EXPECT_NE((*before.status)["configHash"], (*after.status)["configHash"]);
}

// "a" and "main" reach one PostgreSQL (the same system identifier) and "a", first by name, has an
// authQuery pool: it manages the auth role, so a pool on "main" cannot log in with main's Secret
// (even a stale one) and says where to go instead, writing nothing.
TEST_F(AuthReconcileTest, APoolOnAServerWhoseAuthRoleAnotherManagesSaysWhichAndWaits) {
  auto server = [](const std::string& name) {
    json object = json::parse(R"({
      "apiVersion": "poolkeeper.io/v1alpha1", "kind": "PostgresServer",
      "metadata": {"generation": 1}, "spec": {"host": "db.shop", "maxConnections": 40},
      "status": {"observed": {"maxConnections": 40, "systemIdentifier": "7001"}}})");
    object["metadata"]["name"] = name;
    object["metadata"]["uid"] = "uid-" + name;
    return *api::ParsePostgresServer(object);
  };
  directory_ = std::make_unique<budget::ServerDirectory>(std::vector{server("a"), server("main")});
  secrets_.Put(
      {kOperatorNamespace, AuthSecretName("main"), "12", {{"password", "stale"}}, kExposed});
  json on_a = AuthPoolJson();
  on_a["metadata"]["name"] = "billing";
  on_a["spec"]["serverRef"]["name"] = "a";
  PoolInputs in = AuthInputs(AuthPoolJson());
  in.server_pools.push_back(Shared(*api::ParseConnectionPool(on_a)));
  ReconcileResult result = Reconcile(in);
  EXPECT_TRUE(result.apply.empty());
  EXPECT_TRUE(result.create_pods.empty());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "AuthRoleShared");
  EXPECT_EQ(Condition(*result.status, "Ready", "status"), "False");
  const std::string message = Condition(*result.status, "Degraded", "message");
  for (const char* part : {"spec.serverRef", "PostgresServer a,", "userlist"}) {
    EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace poolkeeper::controller
