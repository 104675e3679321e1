#include "controller/reconciler.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "api/parse.h"
#include "budget/planner.h"
#include "reconciler_fixture.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

TEST_F(ReconcilerTest, CreatesEveryOwnedObjectAndReportsTheBudget) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  ReconcileResult result = Reconcile(Inputs(pool));
  std::vector<std::string> kinds;
  for (const auto& o : result.apply) kinds.push_back(o["kind"]);
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"ConfigMap", "Secret", "Service", "PodDisruptionBudget"}));
  EXPECT_EQ(Names(result.create_pods), (std::vector<std::string>{"orders-0", "orders-1"}));
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
  Store(pool, Reconcile(Inputs(pool)), true);
  ReconcileResult second = Reconcile(Inputs(pool));  // the pods are ready: Ready flips
  ASSERT_TRUE(second.status);
  EXPECT_TRUE(second.apply.empty());
  EXPECT_TRUE(second.create_pods.empty());
  Store(pool, second, true);
  EXPECT_EQ(Condition(pool["status"], "Ready", "status"), "True");
  ReconcileResult third = Reconcile(Inputs(pool));
  EXPECT_TRUE(third.apply.empty());
  EXPECT_TRUE(third.delete_kinds.empty());
  EXPECT_TRUE(third.create_pods.empty());
  EXPECT_TRUE(third.delete_pods.empty());
  EXPECT_FALSE(third.status) << third.status->dump();
  EXPECT_TRUE(third.events.empty());
}

TEST_F(ReconcilerTest, OverrunUnderEnforceKeepsTheRunningConfiguration) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Settle(pool);
  auto pods_before = pods_;
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
  EXPECT_TRUE(result.create_pods.empty());
  EXPECT_TRUE(result.delete_pods.empty());
  EXPECT_EQ(pods_, pods_before);
}

// A node drain while a newer spec is refused must not leave the pool without pods: the last
// admitted configuration is kept at its admitted size, within what it was admitted with.
TEST_F(ReconcilerTest, RefusedPoolKeepsItsLastGoodPodsRunning) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Settle(pool);
  const json last_good = pods_["orders-1"];
  pool["spec"]["pooler"]["defaultPoolSize"] = 20;  // (2 + 1) x 20 = 60 > 35: refused
  pool["spec"]["databases"][0]["maxDbConnections"] = 20;
  pool["metadata"]["generation"] = 4;
  pods_.erase("orders-0");  // evicted and gone
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.apply.empty());
  ASSERT_EQ(Names(result.create_pods), std::vector<std::string>{"orders-0"});
  const json& copy = result.create_pods[0];
  EXPECT_EQ(copy["metadata"]["annotations"], last_good["metadata"]["annotations"]);
  EXPECT_EQ(copy["metadata"]["ownerReferences"], last_good["metadata"]["ownerReferences"]);
  EXPECT_EQ(copy["spec"], last_good["spec"]);
  EXPECT_FALSE(copy.contains("status"));
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "BudgetExceeded");
  EXPECT_EQ((*result.status)["readyInstances"], 1);
}

TEST_F(ReconcilerTest, LaterPoolOnTheSameServerWaitsForBudget) {
  json first = PoolJson("first", 2, 10, "2026-01-01T00:00:00Z");
  json second = PoolJson("second", 2, 10, "2026-01-02T00:00:00Z");
  PoolInputs in = Inputs(second);
  in.server_pools.insert(in.server_pools.begin(), Shared(*api::ParseConnectionPool(first)));
  ReconcileResult blocked = Reconcile(in);
  EXPECT_TRUE(blocked.apply.empty());
  EXPECT_EQ(Condition(*blocked.status, "BudgetExceeded", "status"), "True");
  ReconcileResult admitted = Reconcile(Inputs(second));  // the first pool was deleted
  EXPECT_FALSE(admitted.apply.empty());
  EXPECT_EQ(Condition(*admitted.status, "BudgetExceeded", "status"), "False");
}

TEST_F(ReconcilerTest, RefusedPoolKeepsBeingChargedForThePodsItStillRuns) {
  json first = PoolJson("first", 2, 10, "2026-01-01T00:00:00Z");
  Store(first, Reconcile(Inputs(first)), true);
  std::optional<int64_t> running = PlannedConnections(owned_["ConfigMap"]);
  ASSERT_EQ(running, 30);                           // (2 + 1) x 10
  first["spec"]["pooler"]["defaultPoolSize"] = 20;  // refused: 60 > 35
  first["spec"]["databases"][0]["maxDbConnections"] = 20;
  json second = PoolJson("second", 1, 2, "2026-01-02T00:00:00Z");  // (1 + 1) x 2 = 4 fits in 5
  owned_.clear();
  pods_.clear();
  PoolInputs in = Inputs(second);
  in.server_pools.insert(in.server_pools.begin(), Shared(*api::ParseConnectionPool(first)));
  in.holdings["db.shop:5432"]["shop/first"] = *running;
  EXPECT_FALSE(Reconcile(in).apply.empty());
  second["spec"]["pooler"]["defaultPoolSize"] = 3;  // 6 > 5 once first is charged its 30
  second["spec"]["databases"][0]["maxDbConnections"] = 3;
  in = Inputs(second);
  in.server_pools.insert(in.server_pools.begin(), Shared(*api::ParseConnectionPool(first)));
  in.holdings["db.shop:5432"]["shop/first"] = *running;
  ReconcileResult refused = Reconcile(in);
  EXPECT_TRUE(refused.apply.empty());
  EXPECT_EQ(Condition(*refused.status, "BudgetExceeded", "status"), "True");
}

// A spec change rolls the pods one at a time, and never lets old and new pods together hold more
// than the pool's limit.
TEST_F(ReconcilerTest, SpecChangeRollsThePodsWithinTheLimit) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");  // (2 + 1) x 10 = 30 of 35
  Settle(pool);
  ASSERT_EQ(PodNames(), (std::vector<std::string>{"orders-0", "orders-1"}));
  pool["spec"]["pooler"]["defaultPoolSize"] = 11;  // (2 + 1) x 11 = 33 of 35
  pool["spec"]["databases"][0]["maxDbConnections"] = 11;
  pool["metadata"]["generation"] = 4;
  ReconcileResult first = Reconcile(Inputs(pool));
  // 2 old pods, each restartable with the new ConfigMap: 2 x 11 + 11 = 33 <= 35.
  EXPECT_EQ(Names(first.create_pods), std::vector<std::string>{"orders-2"});
  EXPECT_TRUE(first.delete_pods.empty());
  EXPECT_EQ(Condition(*first.status, "Progressing", "status"), "True");
  Settle(pool);
  EXPECT_EQ(PodNames().size(), 2u);
  for (const auto& [name, pod] : pods_) {
    EXPECT_EQ(pod["metadata"]["annotations"]["poolkeeper.io/config-hash"],
              pool["status"]["configHash"]);
    EXPECT_EQ(pod["metadata"]["annotations"]["poolkeeper.io/connections-per-pod"], "11");
  }
  EXPECT_EQ(Condition(pool["status"], "Ready", "status"), "True");
}

TEST_F(ReconcilerTest, AppliesExactlyWhatRenderBuildsPlusTheAppliedHash) {
  // `poolkeeper render` prints render::BuildObjects; the operator must apply the same objects.
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  ReconcileResult result = Reconcile(Inputs(pool));
  auto parsed = api::ParseConnectionPool(pool);
  ASSERT_TRUE(parsed);
  auto plan = budget::PlanPools({*parsed});
  auto passwords = secrets::ResolvePasswords(*parsed, secrets_);
  ASSERT_TRUE(passwords);
  auto built =
      render::BuildObjects(*parsed, plan.pools[0], passwords->passwords, passwords->revision);
  ASSERT_TRUE(built);
  std::map<std::string, json> rendered = {{"ConfigMap", built->config_map},
                                          {"Secret", built->secret},
                                          {"Service", built->service},
                                          {"PodDisruptionBudget", built->pod_disruption_budget}};
  ASSERT_EQ(result.create_pods.size(), 2u);
  EXPECT_EQ(result.create_pods[1], render::PodInSlot(built->pod_template, "orders", 1));
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
  secrets_.Clear();
  ReconcileResult result = Reconcile(Inputs(PoolJson("orders", 1, 10, "t")));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "SecretNotFound");
  EXPECT_NE(
      Condition(*result.status, "Degraded", "message").find("spec.users[0].passwordSecretRef"),
      std::string::npos);
}

// Issue 12: a pool author named a Secret that was never meant for pools (an API key); its value
// went into the userlist. Without the opt-in label the Secret is refused with its own reason, and
// the value appears nowhere in what the pass writes.
TEST_F(ReconcilerTest, AnUnlabelledSecretIsRefusedNamingTheSecretAndTheLabel) {
  secrets_.Put({"shop", "app-db", "7", {{"password", "api-key-123"}}, {}});
  ReconcileResult result = Reconcile(Inputs(PoolJson("orders", 1, 10, "t")));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_TRUE(result.create_pods.empty());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "SecretNotExposed");
  const std::string message = Condition(*result.status, "Degraded", "message");
  EXPECT_NE(message.find("spec.users[0].passwordSecretRef.name"), std::string::npos) << message;
  EXPECT_NE(message.find("Secret shop/app-db"), std::string::npos) << message;
  EXPECT_NE(message.find("poolkeeper.io/expose-to-pools=true"), std::string::npos) << message;
  ASSERT_EQ(result.events.size(), 1u);
  EXPECT_EQ(result.events[0].reason, "SecretNotExposed");
  EXPECT_EQ(result.status->dump().find("api-key-123"), std::string::npos);
  EXPECT_EQ(result.events[0].message.find("api-key-123"), std::string::npos);
}

TEST_F(ReconcilerTest, ALabelRemovedStopsThePoolUsingTheSecret) {
  json pool = PoolJson("orders", 1, 10, "t");
  Settle(pool);
  ASSERT_EQ(Condition(pool["status"], "Degraded", "reason"), "AsPlanned");
  // The label is removed (and the password changed): the next pass must not render the new value.
  secrets_.Put({"shop", "app-db", "8", {{"password", "n3w"}}, {}});
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.apply.empty()) << "no userlist is written from an unexposed Secret";
  EXPECT_TRUE(result.create_pods.empty());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "SecretNotExposed");
  // The label back: the pool renders again.
  secrets_.Put({"shop", "app-db", "9", {{"password", "n3w"}}, kExposed});
  EXPECT_FALSE(Reconcile(Inputs(pool)).apply.empty());
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
  Settle(pool);
  std::string hash_before = pool["status"]["configHash"];
  secrets_.Put({"shop", "app-db", "8", {{"password", "n3w"}}, kExposed});
  ReconcileResult result = Reconcile(Inputs(pool));
  std::vector<std::string> kinds;
  for (const auto& o : result.apply) kinds.push_back(o["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"Secret"}));
  EXPECT_EQ(Names(result.create_pods), std::vector<std::string>{"orders-1"}) << "the surge slot";
  EXPECT_NE((*result.status)["configHash"], hash_before);
  EXPECT_EQ(result.status->dump().find("n3w"), std::string::npos);
  for (const auto& pod : result.create_pods) EXPECT_EQ(pod.dump().find("n3w"), std::string::npos);
  for (const auto& e : result.events) EXPECT_EQ(e.message.find("n3w"), std::string::npos);
}

TEST_F(ReconcilerTest, ScalingToOneInstanceDropsTheDisruptionBudget) {
  json pool = PoolJson("orders", 2, 10, "t");
  Settle(pool);
  pool["spec"]["pooler"]["instances"] = 1;
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_EQ(result.delete_kinds, std::vector<std::string>{"PodDisruptionBudget"});
}

TEST_F(ReconcilerTest, TransitionTimeMovesOnlyWhenAConditionChanges) {
  json pool = PoolJson("orders", 1, 10, "t");
  Store(pool, Reconcile(Inputs(pool)), false);
  std::string budget_time = Condition(pool["status"], "BudgetExceeded", "lastTransitionTime");
  PoolInputs later = Inputs(pool);
  later.now = "2026-11-23T11:00:00Z";
  ReconcileResult result = Reconcile(later);
  json status = result.status ? *result.status : pool["status"];
  EXPECT_EQ(Condition(status, "BudgetExceeded", "lastTransitionTime"), budget_time);
}

// With 0 instances there is nothing to roll out: the status that follows the writes says Ready,
// and the pass that sees them back writes nothing more.
TEST_F(ReconcilerTest, APoolOfNoInstancesIsReadyWithItsFirstStatus) {
  json pool = PoolJson("orders", 0, 10, "t");
  ReconcileResult first = Reconcile(Inputs(pool));
  ASSERT_FALSE(first.apply.empty());
  ASSERT_TRUE(first.status);
  EXPECT_EQ(Condition(*first.status, "Ready", "status"), "True");
  EXPECT_EQ(Condition(*first.status, "Progressing", "status"), "False");
  Store(pool, first, true);
  ReconcileResult second = Reconcile(Inputs(pool));
  EXPECT_TRUE(second.apply.empty());
  EXPECT_FALSE(second.status) << "no second status write";

  // Once it has pods, a configuration written is a rollout until they run it.
  pool["spec"]["pooler"]["instances"] = 1;
  Settle(pool);
  pool["spec"]["pooler"]["defaultPoolSize"] = 9;
  ReconcileResult changed = Reconcile(Inputs(pool));
  ASSERT_FALSE(changed.apply.empty());
  ASSERT_TRUE(changed.status);
  EXPECT_EQ(Condition(*changed.status, "Progressing", "status"), "True");
}

// The finalizer only holds a deletion for the pods: a pool takes it with its first pod, keeps
// it, and a pool with none (0 instances, or refused) costs no write for it.
TEST_F(ReconcilerTest, AddsItsFinalizerWithItsFirstPod) {
  json pool = PoolJson("orders", 1, 10, "t");
  EXPECT_EQ(Reconcile(Inputs(pool)).finalizer, FinalizerChange::kNone) << "it has it";
  pool["metadata"].erase("finalizers");
  ReconcileResult first = Reconcile(Inputs(pool));
  ASSERT_FALSE(first.create_pods.empty());
  EXPECT_EQ(first.finalizer, FinalizerChange::kAdd) << "with its first pod";
  Store(pool, first, true);
  EXPECT_EQ(Reconcile(Inputs(pool)).finalizer, FinalizerChange::kAdd)
      << "a pod exists without it (the write failed, or it was taken off)";

  pods_.clear();
  json idle = PoolJson("orders", 0, 10, "t");
  idle["metadata"].erase("finalizers");
  ReconcileResult none = Reconcile(Inputs(idle));
  EXPECT_FALSE(none.apply.empty()) << "its objects are written";
  EXPECT_EQ(none.finalizer, FinalizerChange::kNone) << "0 instances: no pod to wait for";
  json refused = PoolJson("orders", 5, 10, "t");  // 5 x 10 + 2 > 40
  refused["metadata"].erase("finalizers");
  ReconcileResult blocked = Reconcile(Inputs(refused));
  EXPECT_TRUE(blocked.create_pods.empty());
  EXPECT_EQ(blocked.finalizer, FinalizerChange::kNone) << "refused: no pod to wait for";
}

// Issue 9, case 1: `kubectl scale deployment --replicas=6` (or an HPA on the Deployment) is
// reverted on the next event, not only when the desired content changes.
// Issue 9, case 1: an edit of an owned object is reverted on the next event, not only when the
// desired content changes.
TEST_F(ReconcilerTest, EditsOfOwnedObjectsAreRevertedOnTheNextReconcile) {
  json pool = PoolJson("orders", 2, 10, "t");
  Settle(pool);
  ASSERT_TRUE(Reconcile(Inputs(pool)).apply.empty());
  owned_["ConfigMap"]["data"]["pgbouncer.ini"] = "[databases]\n* = host=elsewhere\n";
  owned_["PodDisruptionBudget"]["spec"]["minAvailable"] = 0;
  // Fields the API server adds are not drift.
  owned_["Service"]["spec"]["clusterIP"] = "10.0.0.7";
  ReconcileResult result = Reconcile(Inputs(pool));
  std::vector<std::string> kinds;
  for (const auto& o : result.apply) kinds.push_back(o["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"ConfigMap", "PodDisruptionBudget"}));
}

// Issue 9, case 1: there is no Deployment to scale by hand; a pod someone adds with the pool's
// labels is charged, and one someone deletes is replaced only where its charge fits.
TEST_F(ReconcilerTest, PodsDeletedByHandAreReplacedWithinTheLimit) {
  json pool = PoolJson("orders", 2, 10, "t");  // (2 + 1) x 10 = 30 of 35
  Settle(pool);
  pods_["orders-0"]["metadata"]["deletionTimestamp"] = "2026-11-23T11:00:00Z";  // draining
  pods_["orders-1"]["metadata"]["deletionTimestamp"] = "2026-11-23T11:00:00Z";
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_EQ(Names(result.create_pods), std::vector<std::string>{"orders-2"})
      << "10 + 10 draining + 10 new = 30; a fourth would be 40 > 35";
}

TEST(Contains, ComparesWhatIsDesiredAndListsWhole) {
  json stored = json::parse(R"({"a": 1, "b": {"c": "x", "d": 2}, "l": [{"n": 1, "m": 0}]})");
  EXPECT_TRUE(Contains(stored, json::parse(R"({"a": 1, "b": {"c": "x"}, "l": [{"n": 1}]})")));
  EXPECT_FALSE(Contains(stored, json::parse(R"({"a": 2})")));
  EXPECT_FALSE(Contains(stored, json::parse(R"({"e": 1})")));
  EXPECT_FALSE(Contains(stored, json::parse(R"({"l": [{"n": 1}, {"n": 2}]})")));
  EXPECT_FALSE(Contains(stored, json::parse(R"({"b": "x"})")));
}

// Issue 9, case 7: a Service, Deployment, ConfigMap or Secret already named like the pool's
// objects is never taken over (forced apply would make the pool its controller, and the garbage
// collector would delete it with the pool).
TEST_F(ReconcilerTest, NameTakenByAnotherObjectWritesNothing) {
  json pool = PoolJson("orders", 1, 10, "t");
  PoolInputs in = Inputs(pool);
  in.conflicts["Service"] = "Service shop/orders exists and is not owned by this ConnectionPool";
  ReconcileResult result = Reconcile(in);
  EXPECT_TRUE(result.apply.empty());
  EXPECT_TRUE(result.delete_kinds.empty());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "NameConflict");
  EXPECT_NE(Condition(*result.status, "Degraded", "message").find("Service shop/orders"),
            std::string::npos);
  EXPECT_EQ(Condition(*result.status, "Ready", "status"), "False");
}

// Issue 9, case 5: a spec that stops validating keeps the last good objects running (and, through
// the holdings, charged); nothing is applied or deleted.
// Issue 9, case 5: a spec that stops validating keeps the last good objects and pods running (and,
// through the holdings, charged); nothing is applied or deleted.
TEST_F(ReconcilerTest, InvalidSpecKeepsTheRunningObjects) {
  json pool = PoolJson("orders", 2, 10, "t");
  Settle(pool);
  pool["spec"]["pooler"]["parameters"] = {{"logfile", "/tmp/x"}};
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_TRUE(result.delete_kinds.empty());
  EXPECT_TRUE(result.delete_pods.empty());
  EXPECT_TRUE(result.create_pods.empty());
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "InvalidSpec");
  EXPECT_EQ((*result.status)["configHash"], pool["status"]["configHash"]);
  EXPECT_EQ((*result.status)["readyInstances"], 2) << "the old pods still serve";
}

// Issue 9, case 5: a deleted pool's budget is not handed out while its pods drain.
// Issue 9, case 5: a deleted pool's budget is not handed out while its pods drain.
TEST_F(ReconcilerTest, DeletionWaitsForThePodsToBeGone) {
  json pool = PoolJson("orders", 2, 10, "t");
  Settle(pool);
  pool["metadata"]["deletionTimestamp"] = "2026-11-23T11:00:00Z";
  for (auto& [name, pod] : pods_) pod["metadata"]["resourceVersion"] = "rv-" + name;
  ReconcileResult first = Reconcile(Inputs(pool));
  ASSERT_EQ(first.delete_pods.size(), 2u);
  // Deleted only as seen: if the garbage collector orphaned a pod after this cache read (the
  // operator tier once deleted pods the user had orphaned), the delete fails with a conflict.
  for (const auto& pod : first.delete_pods) EXPECT_EQ(pod.resource_version, "rv-" + pod.name);
  EXPECT_EQ(first.finalizer, FinalizerChange::kNone);
  EXPECT_FALSE(first.status);
  for (auto& [name, pod] : pods_) pod["metadata"]["deletionTimestamp"] = "2026-11-23T11:00:01Z";
  ReconcileResult draining = Reconcile(Inputs(pool));
  EXPECT_EQ(draining.finalizer, FinalizerChange::kNone);
  EXPECT_TRUE(draining.delete_pods.empty());
  pods_.clear();
  EXPECT_EQ(Reconcile(Inputs(pool)).finalizer, FinalizerChange::kRemove);
}

TEST_F(ReconcilerTest, OrphaningDeletionLeavesThePodsToTheUser) {
  json pool = PoolJson("orders", 2, 10, "t");
  Settle(pool);
  pool["metadata"]["deletionTimestamp"] = "2026-11-23T11:00:00Z";
  pool["metadata"]["finalizers"].push_back("orphan");
  EXPECT_TRUE(Reconcile(Inputs(pool)).delete_pods.empty()) << "the garbage collector goes first";
  pool["metadata"]["finalizers"] = {"poolkeeper.io/pods-drained"};
  for (auto& [name, pod] : pods_) pod["metadata"].erase("ownerReferences");
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.delete_pods.empty());
  EXPECT_EQ(result.finalizer, FinalizerChange::kRemove);
}

}  // namespace
}  // namespace poolkeeper::controller
