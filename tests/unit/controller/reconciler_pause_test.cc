// spec.paused: the ConfigMap's `paused` key carries it to the pooler agents, no pod rolls, and the
// status follows what the agents report: Progressing Pausing (or Resuming) naming the pods not
// there yet, then status.paused. Without the agent the pool says it cannot pause, and nothing else
// changes.
#include <gtest/gtest.h>

#include <set>

#include "controller/agent_status.h"
#include "controller/cache_trim.h"
#include "controller/pause.h"
#include "controller/reconciler.h"
#include "reconciler_fixture.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

class PauseReconcileTest : public AgentReconcilerTest {
 protected:
  // The pod's agent reports the pool's current configuration loaded, paused or not.
  void Report(const json& pool, const std::string& pod, bool paused) {
    reports_[pod] = {pool["status"].value("configHash", ""), 0, paused};
  }
  void ReportAll(const json& pool, bool paused) {
    for (const auto& [name, unused] : pods_) Report(pool, name, paused);
  }
  // Two pods with the agent, every agent reporting `paused`, nothing more to write.
  json SettledPool(bool paused) {
    json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
    pool["spec"]["paused"] = paused;
    for (int i = 0; i < 10; ++i) {
      ReconcileResult result = Reconcile(AgentInputs(pool));
      Store(pool, result, true);
      ReportAll(pool, paused);
      if (result.apply.empty() && result.create_pods.empty() && !result.status) return pool;
    }
    ADD_FAILURE() << "no steady state";
    return pool;
  }
};

const json* Applied(const ReconcileResult& result, const std::string& kind) {
  for (const json& object : result.apply) {
    if (object["kind"] == kind) return &object;
  }
  return nullptr;
}

TEST_F(PauseReconcileTest, PausingWritesTheConfigMapRollsNothingAndWaitsForEveryAgent) {
  json pool = SettledPool(false);
  ASSERT_EQ(pool["status"]["paused"], false);
  ASSERT_EQ(owned_["ConfigMap"]["data"][render::kPausedKey], "false");
  const auto uids = Uids();
  const std::string hash = pool["status"]["configHash"];
  pool["spec"]["paused"] = true;
  pool["metadata"]["generation"] = 4;

  ReconcileResult asked = Reconcile(AgentInputs(pool));
  const json* config_map = Applied(asked, "ConfigMap");
  ASSERT_NE(config_map, nullptr);
  EXPECT_EQ((*config_map)["data"][render::kPausedKey], "true");
  EXPECT_EQ((*config_map)["data"][render::kConfigHashKey], hash) << "no reload to wait for";
  EXPECT_EQ(asked.apply.size(), 1u) << "only the ConfigMap changes";
  EXPECT_TRUE(asked.create_pods.empty());
  EXPECT_TRUE(asked.delete_pods.empty()) << "pausing must not roll the pods";
  EXPECT_TRUE(asked.pod_figures.empty()) << "the budget does not change";
  EXPECT_GT(asked.requeue_after.count(), 0);
  ASSERT_TRUE(asked.status);
  EXPECT_EQ((*asked.status)["paused"], false);
  EXPECT_EQ(Condition(*asked.status, "Progressing", "status"), "True");
  EXPECT_EQ(Condition(*asked.status, "Progressing", "reason"), "Pausing");
  const std::string waiting = Condition(*asked.status, "Progressing", "message");
  EXPECT_NE(waiting.find("orders-0, orders-1"), std::string::npos) << waiting;
  EXPECT_EQ(Condition(*asked.status, "Ready", "status"), "True");
  Store(pool, asked, true);

  Report(pool, "orders-0", true);
  ReconcileResult one = Reconcile(AgentInputs(pool));
  ASSERT_TRUE(one.status);
  EXPECT_EQ((*one.status)["paused"], false) << "orders-1 still runs";
  EXPECT_EQ(Condition(*one.status, "Progressing", "reason"), "Pausing");
  EXPECT_EQ(Condition(*one.status, "Progressing", "message").find("orders-0"), std::string::npos);
  EXPECT_NE(Condition(*one.status, "Progressing", "message").find("orders-1"), std::string::npos);
  EXPECT_GT(one.requeue_after.count(), 0);
  Store(pool, one, true);

  Report(pool, "orders-1", true);
  ReconcileResult both = Reconcile(AgentInputs(pool));
  ASSERT_TRUE(both.status);
  EXPECT_EQ((*both.status)["paused"], true);
  EXPECT_EQ(Condition(*both.status, "Progressing", "status"), "False");
  EXPECT_EQ(Condition(*both.status, "Progressing", "reason"), "RolloutComplete");
  EXPECT_EQ(both.requeue_after.count(), 0);
  EXPECT_TRUE(both.apply.empty());
  Store(pool, both, true);
  EXPECT_EQ(Uids(), uids) << "no pod was replaced";
  EXPECT_FALSE(Reconcile(AgentInputs(pool)).status) << "paused is a steady state";
}

TEST_F(PauseReconcileTest, ResumingWaitsForEveryAgentAndStatusPausedFallsAtTheFirst) {
  json pool = SettledPool(true);
  ASSERT_EQ(pool["status"]["paused"], true);
  pool["spec"]["paused"] = false;
  pool["metadata"]["generation"] = 4;

  ReconcileResult asked = Reconcile(AgentInputs(pool));
  const json* config_map = Applied(asked, "ConfigMap");
  ASSERT_NE(config_map, nullptr);
  EXPECT_EQ((*config_map)["data"][render::kPausedKey], "false");
  ASSERT_TRUE(asked.status);
  EXPECT_EQ((*asked.status)["paused"], true) << "every PgBouncer is still paused";
  EXPECT_EQ(Condition(*asked.status, "Progressing", "reason"), "Resuming");
  Store(pool, asked, true);

  Report(pool, "orders-1", false);
  ReconcileResult one = Reconcile(AgentInputs(pool));
  ASSERT_TRUE(one.status);
  EXPECT_EQ((*one.status)["paused"], false);
  EXPECT_EQ(Condition(*one.status, "Progressing", "reason"), "Resuming");
  EXPECT_NE(Condition(*one.status, "Progressing", "message").find("orders-0"), std::string::npos);
  Store(pool, one, true);

  Report(pool, "orders-0", false);
  ReconcileResult both = Reconcile(AgentInputs(pool));
  ASSERT_TRUE(both.status);
  EXPECT_EQ(Condition(*both.status, "Progressing", "reason"), "RolloutComplete");
  EXPECT_EQ(both.requeue_after.count(), 0);
}

TEST_F(PauseReconcileTest, AnAgentThatDoesNotAnswerIsNotCountedPaused) {
  json pool = SettledPool(true);
  reports_.erase("orders-1");
  ReconcileResult result = Reconcile(AgentInputs(pool));
  ASSERT_TRUE(result.status);
  EXPECT_EQ((*result.status)["paused"], false);
  // The rollout waits for it too (its configuration is not confirmed either): RollingOut.
  EXPECT_EQ(Condition(*result.status, "Progressing", "status"), "True");
  const std::string message = Condition(*result.status, "Progressing", "message");
  EXPECT_NE(message.find("orders-1 have not reported PgBouncer paused"), std::string::npos)
      << message;
  EXPECT_GT(result.requeue_after.count(), 0);
}

TEST_F(PauseReconcileTest, WithoutTheAgentPausedIsDegradedAndNothingElseChanges) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Settle(pool);
  const auto pods = PodNames();
  pool["spec"]["paused"] = true;
  pool["metadata"]["generation"] = 4;
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.apply.empty()) << "nothing to pause with: no object changes";
  EXPECT_TRUE(result.create_pods.empty());
  EXPECT_TRUE(result.delete_pods.empty());
  EXPECT_TRUE(result.blocked_reason.empty());
  EXPECT_EQ(result.requeue_after.count(), 0);
  ASSERT_TRUE(result.status);
  EXPECT_EQ((*result.status)["paused"], false);
  EXPECT_EQ(Condition(*result.status, "Degraded", "status"), "True");
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "PauseNeedsAgent");
  const std::string message = Condition(*result.status, "Degraded", "message");
  EXPECT_NE(message.find("spec.paused"), std::string::npos) << message;
  EXPECT_NE(message.find("--agent-image"), std::string::npos) << message;
  EXPECT_NE(message.find("agent.enabled"), std::string::npos) << message;
  EXPECT_EQ(Condition(*result.status, "Ready", "status"), "True");
  EXPECT_EQ(Condition(*result.status, "Progressing", "reason"), "RolloutComplete");
  ASSERT_EQ(result.events.size(), 1u);
  EXPECT_EQ(result.events[0].reason, "PauseNeedsAgent");
  Store(pool, result, true);
  EXPECT_EQ(PodNames(), pods);

  pool["spec"]["paused"] = false;
  ReconcileResult resumed = Reconcile(Inputs(pool));
  ASSERT_TRUE(resumed.status);
  EXPECT_EQ(Condition(*resumed.status, "Degraded", "reason"), "AsPlanned");
}

// A ConfigMap applied by a version without `paused`: the key is added, which is no rollout either.
TEST_F(PauseReconcileTest, AddingThePausedKeyToAnOlderConfigMapIsNoRollout) {
  json pool = SettledPool(false);
  json& stored = owned_["ConfigMap"];
  stored["data"].erase(render::kPausedKey);
  stored["metadata"]["annotations"].erase(render::kAppliedHashAnnotation);
  stored["metadata"]["annotations"][render::kAppliedHashAnnotation] = render::AppliedHash(stored);
  ReconcileResult result = Reconcile(AgentInputs(pool));
  const json* config_map = Applied(result, "ConfigMap");
  ASSERT_NE(config_map, nullptr);
  EXPECT_EQ((*config_map)["data"][render::kPausedKey], "false");
  EXPECT_FALSE(result.status) << "Ready and Progressing stay as they are: "
                              << result.status.value_or(json()).dump();
}

TEST(OnlyPausedDiffers, AnyOtherChangeIsARealOne) {
  json want = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "orders-config"}}},
               {"data", {{"pgbouncer.ini", "a"}, {render::kPausedKey, "true"}}}};
  auto applied = [](json object) {
    object["metadata"]["annotations"][render::kAppliedHashAnnotation] = render::AppliedHash(object);
    return object;
  };
  json stored = want;
  stored["data"][render::kPausedKey] = "false";
  EXPECT_TRUE(OnlyPausedDiffers(applied(stored), want));
  // As the cache keeps it when it holds exactly what was applied (cache_trim.h): no data but
  // `paused`, which is still enough to tell.
  json compact = applied(stored);
  ASSERT_TRUE(CompactIfAsApplied(compact));
  EXPECT_TRUE(OnlyPausedDiffers(compact, want));
  json edited = stored;
  edited["data"]["pgbouncer.ini"] = "b";
  EXPECT_FALSE(OnlyPausedDiffers(applied(edited), want));
  json drifted = applied(stored);
  drifted["data"]["pgbouncer.ini"] = "b";  // edited by hand after the operator applied it
  EXPECT_FALSE(OnlyPausedDiffers(drifted, want));
  json secret = want;
  secret["kind"] = "Secret";
  EXPECT_FALSE(OnlyPausedDiffers(applied(secret), secret));
}

ObservedPod Running(const std::string& name) {
  ObservedPod pod;
  pod.name = name;
  pod.owned = true;
  return pod;
}

TEST(FollowPause, OnlyTheRunningPodsOfThePoolCount) {
  ObservedPod draining = Running("draining"), finished = Running("finished"),
              foreign = Running("foreign");
  draining.terminating = true;
  finished.finished = true;
  foreign.owned = false;
  const std::vector<ObservedPod> pods = {Running("a"), draining, finished, foreign};
  const std::map<std::string, AgentReport> reports = {{"a", {"h", 0, true}}};
  PauseProgress paused = FollowPause(true, pods, reports);
  EXPECT_TRUE(paused.paused);
  EXPECT_TRUE(paused.behind.empty());
  PauseProgress resuming = FollowPause(false, pods, reports);
  EXPECT_TRUE(resuming.paused);
  EXPECT_EQ(resuming.behind, (std::vector<std::string>{"a"}));
  EXPECT_FALSE(FollowPause(true, {draining}, reports).paused) << "no pod runs: nothing is paused";
}

}  // namespace
}  // namespace poolkeeper::controller
