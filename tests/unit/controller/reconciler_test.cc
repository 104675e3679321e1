#include "controller/reconciler.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "api/parse.h"
#include "budget/planner.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

json PoolJson(const std::string& name, int instances, int pool_size, const std::string& created) {
  return json::parse(R"({
    "apiVersion": "poolkeeper.io/v1alpha1", "kind": "ConnectionPool",
    "metadata": {"name": ")" +
                     name + R"(", "namespace": "shop", "uid": "uid-)" + name + R"(",
                 "generation": 3, "creationTimestamp": ")" +
                     created + R"("},
    "spec": {
      "server": {"host": "db.shop", "maxConnections": 40, "overhead": 2},
      "pooler": {"instances": )" +
                     std::to_string(instances) + R"(, "pgbouncerVersion": "1.18",
                 "image": "pgbouncer:1.18.0", "defaultPoolSize": )" +
                     std::to_string(pool_size) + R"(},
      "databases": [{"name": "orders", "maxDbConnections": )" +
                     std::to_string(pool_size) + R"(}],
      "users": [{"name": "app", "passwordSecretRef": {"name": "app-db"}}]}})");
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    secrets_.secrets[{"shop", "app-db"}] = {"shop", "app-db", "7", {{"password", "s3cret"}}};
  }

  PoolInputs Inputs(const json& pool) {
    PoolInputs in;
    in.pool = pool;
    auto parsed = api::ParseConnectionPool(pool);
    if (parsed) in.server_pools.push_back(*parsed);
    in.secrets = &secrets_;
    in.owned = owned_;
    in.now = "2026-11-23T10:00:00Z";
    return in;
  }

  // Stores what a reconcile wrote, as the API server (and then the cache) would hold it.
  void Store(json& pool, const ReconcileResult& result, int64_t ready) {
    for (const auto& object : result.apply) owned_[object["kind"]] = object;
    for (const auto& kind : result.delete_kinds) owned_.erase(kind);
    if (owned_.contains("Deployment")) {
      int64_t replicas = owned_["Deployment"]["spec"]["replicas"];
      owned_["Deployment"]["metadata"]["generation"] = 1;
      owned_["Deployment"]["status"] = {{"observedGeneration", 1},
                                        {"replicas", replicas},
                                        {"updatedReplicas", replicas},
                                        {"readyReplicas", ready},
                                        {"availableReplicas", ready}};
    }
    if (result.status) pool["status"] = *result.status;
  }

  static std::string Condition(const json& status, const std::string& type, const char* field) {
    for (const auto& c : status["conditions"]) {
      if (c["type"] == type) return c[field];
    }
    return "";
  }

  api::Manifests secrets_;
  std::map<std::string, json> owned_;
};

TEST_F(ReconcilerTest, CreatesEveryOwnedObjectAndReportsTheBudget) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  ReconcileResult result = Reconcile(Inputs(pool));
  std::vector<std::string> kinds;
  for (const auto& o : result.apply) kinds.push_back(o["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"ConfigMap", "Secret", "Service",
                                             "PodDisruptionBudget", "Deployment"}));
  ASSERT_TRUE(result.status);
  const json& status = *result.status;
  EXPECT_EQ(status["observedGeneration"], 3);
  EXPECT_EQ(status["budget"]["usable"], 35);
  EXPECT_EQ(status["budget"]["worstCase"], 30);
  EXPECT_EQ(status["selector"], "app.kubernetes.io/name=pgbouncer,poolkeeper.io/pool=orders");
  EXPECT_EQ(Condition(status, "BudgetExceeded", "status"), "False");
  EXPECT_EQ(Condition(status, "Ready", "status"), "False");
  EXPECT_EQ(Condition(status, "Progressing", "status"), "True");
  EXPECT_TRUE(result.blocked_reason.empty());
}

TEST_F(ReconcilerTest, SteadyStateWritesNothing) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Store(pool, Reconcile(Inputs(pool)), 2);
  ReconcileResult second = Reconcile(Inputs(pool));  // rollout finished: Ready flips
  ASSERT_TRUE(second.status);
  EXPECT_TRUE(second.apply.empty());
  Store(pool, second, 2);
  EXPECT_EQ(Condition(pool["status"], "Ready", "status"), "True");
  ReconcileResult third = Reconcile(Inputs(pool));
  EXPECT_TRUE(third.apply.empty());
  EXPECT_TRUE(third.delete_kinds.empty());
  EXPECT_FALSE(third.status) << third.status->dump();
  EXPECT_TRUE(third.events.empty());
}

TEST_F(ReconcilerTest, OverrunUnderEnforceKeepsTheRunningConfiguration) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Store(pool, Reconcile(Inputs(pool)), 2);
  json deployment_before = owned_["Deployment"];
  pool["spec"]["pooler"]["defaultPoolSize"] = 20;  // (2 + 1) x 20 = 60 > 35
  pool["spec"]["databases"][0]["maxDbConnections"] = 20;
  pool["metadata"]["generation"] = 4;
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.apply.empty()) << "nothing of the overrunning plan may be applied";
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "BudgetExceeded", "status"), "True");
  EXPECT_NE(Condition(*result.status, "BudgetExceeded", "message").find("60"), std::string::npos);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "BudgetExceeded");
  EXPECT_EQ(Condition(*result.status, "Ready", "status"), "False");
  ASSERT_FALSE(result.events.empty());
  EXPECT_EQ(result.events[0].type, "Warning");
  EXPECT_EQ(owned_["Deployment"], deployment_before);
}

TEST_F(ReconcilerTest, LaterPoolOnTheSameServerWaitsForBudget) {
  json first = PoolJson("first", 2, 10, "2026-01-01T00:00:00Z");
  json second = PoolJson("second", 2, 10, "2026-01-02T00:00:00Z");
  PoolInputs in = Inputs(second);
  in.server_pools.insert(in.server_pools.begin(), *api::ParseConnectionPool(first));
  ReconcileResult blocked = Reconcile(in);
  EXPECT_TRUE(blocked.apply.empty());
  EXPECT_EQ(Condition(*blocked.status, "BudgetExceeded", "status"), "True");
  ReconcileResult admitted = Reconcile(Inputs(second));  // the first pool was deleted
  EXPECT_FALSE(admitted.apply.empty());
  EXPECT_EQ(Condition(*admitted.status, "BudgetExceeded", "status"), "False");
}

TEST_F(ReconcilerTest, RefusedPoolKeepsBeingChargedForThePodsItStillRuns) {
  json first = PoolJson("first", 2, 10, "2026-01-01T00:00:00Z");
  Store(first, Reconcile(Inputs(first)), 2);
  std::optional<int64_t> running = PlannedConnections(owned_["Deployment"]);
  ASSERT_EQ(running, 30);                           // (2 + 1) x 10
  first["spec"]["pooler"]["defaultPoolSize"] = 20;  // refused: 60 > 35
  first["spec"]["databases"][0]["maxDbConnections"] = 20;
  json second = PoolJson("second", 1, 2, "2026-01-02T00:00:00Z");  // (1 + 1) x 2 = 4 fits in 5
  owned_.clear();
  PoolInputs in = Inputs(second);
  in.server_pools.insert(in.server_pools.begin(), *api::ParseConnectionPool(first));
  in.running["shop/first"] = *running;
  EXPECT_FALSE(Reconcile(in).apply.empty());
  second["spec"]["pooler"]["defaultPoolSize"] = 3;  // 6 > 5 once first is charged its 30
  second["spec"]["databases"][0]["maxDbConnections"] = 3;
  in = Inputs(second);
  in.server_pools.insert(in.server_pools.begin(), *api::ParseConnectionPool(first));
  in.running["shop/first"] = *running;
  ReconcileResult refused = Reconcile(in);
  EXPECT_TRUE(refused.apply.empty());
  EXPECT_EQ(Condition(*refused.status, "BudgetExceeded", "status"), "True");
}

TEST_F(ReconcilerTest, ShrinkingPoolKeepsItsLargerChargeUntilTheRolloutCompletes) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Store(pool, Reconcile(Inputs(pool)), 2);
  ASSERT_EQ(PlannedConnections(owned_["Deployment"]), 30);
  pool["spec"]["pooler"]["defaultPoolSize"] = 5;  // (2 + 1) x 5 = 15
  pool["spec"]["databases"][0]["maxDbConnections"] = 5;
  pool["metadata"]["generation"] = 4;
  ReconcileResult shrinking = Reconcile(Inputs(pool));
  auto deployment = std::ranges::find(shrinking.apply, json("Deployment"),
                                      [](const json& o) { return o["kind"]; });
  ASSERT_NE(deployment, shrinking.apply.end());
  EXPECT_EQ(PlannedConnections(*deployment), 30) << "old pods with pool size 10 still run";
  EXPECT_EQ(
      (*deployment)["spec"]["template"]["metadata"]["annotations"]["poolkeeper.io/config-hash"],
      *shrinking.status->find("configHash"));
  for (const auto& object : shrinking.apply) owned_[object["kind"]] = object;
  owned_["Deployment"]["metadata"]["generation"] = 2;
  owned_["Deployment"]["status"] = {{"observedGeneration", 1}};  // the rollout has not started
  pool["status"] = *shrinking.status;
  EXPECT_TRUE(Reconcile(Inputs(pool)).apply.empty()) << "nothing new while it rolls";
  Store(pool, {}, 2);  // the rollout completed: every pod runs the new template
  ReconcileResult done = Reconcile(Inputs(pool));
  ASSERT_EQ(done.apply.size(), 1u);
  EXPECT_EQ(PlannedConnections(done.apply[0]), 15);
}

TEST_F(ReconcilerTest, AppliesExactlyWhatRenderBuildsPlusTheAppliedHash) {
  // `poolkeeper render` prints render::BuildObjects; the operator must apply the same objects.
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  ReconcileResult result = Reconcile(Inputs(pool));
  auto parsed = api::ParseConnectionPool(pool);
  ASSERT_TRUE(parsed);
  auto plan = budget::PlanPools({*parsed});
  ASSERT_TRUE(plan);
  auto passwords = api::ResolvePasswords(*parsed, secrets_);
  ASSERT_TRUE(passwords);
  auto built =
      render::BuildObjects(*parsed, plan->pools[0], passwords->passwords, passwords->revision);
  ASSERT_TRUE(built);
  std::map<std::string, json> rendered = {{"ConfigMap", built->config_map},
                                          {"Secret", built->secret},
                                          {"Deployment", built->deployment},
                                          {"Service", built->service},
                                          {"PodDisruptionBudget", built->pod_disruption_budget}};
  ASSERT_EQ(result.apply.size(), rendered.size());
  for (json applied : result.apply) {
    std::string kind = applied["kind"];
    ASSERT_TRUE(applied["metadata"]["annotations"].contains(render::kAppliedHashAnnotation));
    applied["metadata"]["annotations"].erase(render::kAppliedHashAnnotation);
    if (applied["metadata"]["annotations"].empty()) applied["metadata"].erase("annotations");
    EXPECT_EQ(applied, rendered[kind]) << kind;
  }
}

TEST_F(ReconcilerTest, ClientsBeyondThePoolersCapacityAreAWarningEvent) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  pool["spec"]["pooler"]["maxClientConn"] = 10;  // 2 x 10 = 20 client slots
  pool["spec"]["clients"] = {{{"name", "web"}, {"instances", 3}, {"poolSize", 10}}};
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_FALSE(result.apply.empty()) << "the server's budget holds: it rolls out";
  auto event =
      std::ranges::find(result.events, std::string("ClientCapacityExceeded"), &EventRecord::reason);
  ASSERT_NE(event, result.events.end());
  EXPECT_EQ(event->type, "Warning");
}

TEST_F(ReconcilerTest, MissingSecretIsAConditionNotACrash) {
  secrets_.secrets.clear();
  ReconcileResult result = Reconcile(Inputs(PoolJson("orders", 1, 10, "t")));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "SecretNotFound");
  EXPECT_NE(
      Condition(*result.status, "Degraded", "message").find("spec.users[0].passwordSecretRef"),
      std::string::npos);
}

TEST_F(ReconcilerTest, InvalidSpecNamesTheField) {
  json pool = PoolJson("orders", 1, 10, "t");
  pool["spec"]["pooler"]["parameters"] = {{"logfile", "/tmp/x"}};
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "InvalidSpec");
  EXPECT_NE(Condition(*result.status, "Degraded", "message").find("spec.pooler.parameters.logfile"),
            std::string::npos);
}

TEST_F(ReconcilerTest, PasswordRotationRollsThePodsWithoutLeakingThePassword) {
  json pool = PoolJson("orders", 1, 10, "t");
  Store(pool, Reconcile(Inputs(pool)), 1);
  std::string hash_before = pool["status"]["configHash"];
  secrets_.secrets[{"shop", "app-db"}] = {"shop", "app-db", "8", {{"password", "n3w"}}};
  ReconcileResult result = Reconcile(Inputs(pool));
  std::vector<std::string> kinds;
  for (const auto& o : result.apply) kinds.push_back(o["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"Secret", "Deployment"}));
  EXPECT_NE((*result.status)["configHash"], hash_before);
  EXPECT_EQ(result.status->dump().find("n3w"), std::string::npos);
  for (const auto& e : result.events) EXPECT_EQ(e.message.find("n3w"), std::string::npos);
}

TEST_F(ReconcilerTest, ScalingToOneInstanceDropsTheDisruptionBudget) {
  json pool = PoolJson("orders", 2, 10, "t");
  Store(pool, Reconcile(Inputs(pool)), 2);
  pool["spec"]["pooler"]["instances"] = 1;
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_EQ(result.delete_kinds, std::vector<std::string>{"PodDisruptionBudget"});
}

TEST_F(ReconcilerTest, TransitionTimeMovesOnlyWhenAConditionChanges) {
  json pool = PoolJson("orders", 1, 10, "t");
  Store(pool, Reconcile(Inputs(pool)), 0);
  std::string budget_time = Condition(pool["status"], "BudgetExceeded", "lastTransitionTime");
  PoolInputs later = Inputs(pool);
  later.now = "2026-11-23T11:00:00Z";
  ReconcileResult result = Reconcile(later);
  json status = result.status ? *result.status : pool["status"];
  EXPECT_EQ(Condition(status, "BudgetExceeded", "lastTransitionTime"), budget_time);
}

}  // namespace
}  // namespace poolkeeper::controller
