// The reconcile of a pool that verifies its server: with its PostgresServer's CA (copied into the
// pool's ConfigMap, the pods rolled when it changes, the pool Degraded naming the field while it
// cannot be read), and with a CA in a labelled ConfigMap of its own (hashed, so a change rolls).
#include <gtest/gtest.h>

#include "reconciler_fixture.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

json ServerCaPool() {
  json pool = PoolJson("orders", 1, 5, "2026-11-23T09:00:00Z");
  pool["spec"].erase("server");
  pool["spec"]["serverRef"] = {{"name", "main"}};
  pool["spec"]["tls"] = {{"server", {{"sslMode", "verify-full"}}}};
  return pool;
}

class TlsReconcileTest : public ReconcilerTest {
 protected:
  void SetUp() override {
    ReconcilerTest::SetUp();
    auto server = api::ParsePostgresServer(json::parse(R"({
      "apiVersion": "poolkeeper.io/v1alpha1", "kind": "PostgresServer",
      "metadata": {"name": "main", "uid": "uid-main", "generation": 1},
      "spec": {"host": "db.shop", "maxConnections": 40, "sslMode": "verify-full",
               "caSecretRef": {"namespace": "ops", "name": "db-ca"}}})"));
    ASSERT_TRUE(server) << server.error().message;
    directory_ = std::make_unique<budget::ServerDirectory>(std::vector{*server});
  }
  PoolInputs TlsInputs(const json& pool) {
    PoolInputs in = Inputs(pool);
    in.directory = directory_.get();
    in.server_ca = server_ca_;
    in.config_maps = config_maps_;
    return in;
  }
  void SettleTls(json& pool) {
    for (int i = 0; i < 10; ++i) {
      ReconcileResult result = Reconcile(TlsInputs(pool));
      bool quiet = result.apply.empty() && result.create_pods.empty() &&
                   result.delete_pods.empty() && !result.status;
      Store(pool, result, true);
      if (quiet) return;
    }
    FAIL() << "no steady state";
  }
  std::string PodHash() const {
    return pods_.begin()->second["metadata"]["annotations"][render::kConfigHashAnnotation];
  }
  std::unique_ptr<budget::ServerDirectory> directory_;
  Result<std::string> server_ca_ = std::string("SERVER-CA-1");
  secrets::SecretMap config_maps_;
};

TEST_F(TlsReconcileTest, ThePostgresServersCaIsCopiedAndANewOneRollsThePods) {
  json pool = ServerCaPool();
  SettleTls(pool);
  ASSERT_EQ(PodNames(), std::vector<std::string>{"orders-0"});
  EXPECT_EQ(owned_["ConfigMap"]["data"][api::kServerCaKey], "SERVER-CA-1");
  EXPECT_EQ(Condition(pool["status"], "Ready", "status"), "True");
  const std::string before = PodHash();

  server_ca_ = std::string("SERVER-CA-2");
  SettleTls(pool);
  EXPECT_EQ(owned_["ConfigMap"]["data"][api::kServerCaKey], "SERVER-CA-2");
  EXPECT_NE(PodHash(), before) << "the pods run the new CA";
}

TEST_F(TlsReconcileTest, AnUnreadableServerCaIsDegradedNamingTheFieldAndWritesNothing) {
  server_ca_ = FieldFail(ErrorCode::kNotFound, "spec.tls.server.caRef",
                         "the CA of PostgresServer \"main\" (its caSecretRef, Secret ops/db-ca) "
                         "not found");
  ReconcileResult result = Reconcile(TlsInputs(ServerCaPool()));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_TRUE(result.create_pods.empty());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "SecretNotFound");
  EXPECT_NE(Condition(*result.status, "Degraded", "message").find("spec.tls.server.caRef"),
            std::string::npos);
}

// A PostgresServer without caSecretRef cannot give a CA: placement refuses the pool, naming the
// field, and nothing of it is written.
TEST_F(TlsReconcileTest, AServerWithoutACaRefusesAPoolThatHasNone) {
  auto server = api::ParsePostgresServer(json::parse(R"({
      "apiVersion": "poolkeeper.io/v1alpha1", "kind": "PostgresServer",
      "metadata": {"name": "main", "uid": "uid-main", "generation": 1},
      "spec": {"host": "db.shop", "maxConnections": 40}})"));
  ASSERT_TRUE(server);
  directory_ = std::make_unique<budget::ServerDirectory>(std::vector{*server});
  ReconcileResult result = Reconcile(TlsInputs(ServerCaPool()));
  EXPECT_TRUE(result.apply.empty());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "ServerCaMissing");
  EXPECT_NE(Condition(*result.status, "Degraded", "message").find("spec.tls.server.caRef"),
            std::string::npos);
}

TEST_F(TlsReconcileTest, ACaInALabelledConfigMapIsHashedSoItsChangeRollsThePods) {
  json pool = PoolJson("orders", 1, 5, "2026-11-23T09:00:00Z");
  pool["spec"]["tls"] = {
      {"server", {{"sslMode", "verify-full"}, {"caRef", {{"configMapName", "db-ca"}}}}}};
  config_maps_.Put({"shop", "db-ca", "4", {{"ca.crt", "MAP-CA-1"}}, kExposed});
  SettleTls(pool);
  ASSERT_EQ(PodNames(), std::vector<std::string>{"orders-0"});
  const std::string before = PodHash();
  EXPECT_FALSE(owned_["ConfigMap"]["data"].contains(api::kServerCaKey)) << "not copied: mounted";

  config_maps_.Put({"shop", "db-ca", "5", {{"ca.crt", "MAP-CA-2"}}, kExposed});
  SettleTls(pool);
  EXPECT_NE(PodHash(), before);

  config_maps_.Put({"shop", "db-ca", "6", {{"ca.crt", "MAP-CA-2"}}, {}});  // label removed
  ReconcileResult result = Reconcile(TlsInputs(pool));
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "SecretNotExposed");
  EXPECT_NE(Condition(*result.status, "Degraded", "message")
                .find("kubectl label configmap -n shop db-ca"),
            std::string::npos);
}

}  // namespace
}  // namespace poolkeeper::controller
