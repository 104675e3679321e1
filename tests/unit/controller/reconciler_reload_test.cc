// The budget during a reload (the pooler agent): a pod whose configuration changes by RELOAD keeps
// being charged its old per-pod figure until its agent reports the new configuration loaded; only
// then does the reconciler lower (or raise) the pod's poolkeeper.io/connections-per-pod. Scaling up
// with derived caps therefore lowers the caps on the running pods first and adds the pod once they
// report, by admission alone.
#include <gtest/gtest.h>

#include <set>

#include "controller/agent_status.h"
#include "controller/pods.h"
#include "controller/reconciler.h"
#include "reconciler_fixture.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

class ReloadReconcileTest : public AgentReconcilerTest {
 protected:
  // Every pod's agent reports `hash` loaded, holding `servers` server connections.
  void AllLoad(const std::string& hash, int64_t servers = 0) {
    for (const auto& [name, pod] : pods_) reports_[name] = {hash, servers};
  }
  // Stores a pass's writes, the annotation patches included.
  void StoreAll(json& pool, const ReconcileResult& result) {
    Store(pool, result, true);
    for (const auto& figure : result.pod_figures) {
      pods_[figure.name]["metadata"]["annotations"][render::kPodConnectionsAnnotation] =
          std::to_string(figure.connections);
    }
  }
  void SettleWithAgents(json& pool) {
    for (int i = 0; i < 10; ++i) {
      ReconcileResult result = Reconcile(AgentInputs(pool));
      StoreAll(pool, result);
      AllLoad(pool["status"].value("configHash", ""));
      bool quiet = result.apply.empty() && result.create_pods.empty() &&
                   result.delete_pods.empty() && result.pod_figures.empty() && !result.status;
      if (quiet) return;
    }
    FAIL() << "no steady state";
  }
  // What the pool's pods are charged: each its own figure (the ledger's view of what exists).
  int64_t Charged() const {
    int64_t sum = 0;
    for (const auto& [name, pod] : pods_) {
      sum += IntAnnotation(pod, render::kPodConnectionsAnnotation).value_or(0);
    }
    return sum;
  }
};

// Derived caps: no maxDbConnections, so the per-pod cap is what the server has left for the pool
// divided by instances + maxSurge.
json DerivedPool(int instances, int max_surge) {
  json pool = PoolJson("orders", instances, 20, "2026-01-01T00:00:00Z");
  pool["spec"]["databases"][0].erase("maxDbConnections");
  pool["spec"]["pooler"]["maxSurge"] = max_surge;
  return pool;
}

TEST_F(ReloadReconcileTest, ASettingChangeReloadsInPlaceAndTheFigureFollowsTheAgents) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  SettleWithAgents(pool);
  ASSERT_EQ(Charged(), 20);
  const auto uids = Uids();
  pool["spec"]["pooler"]["defaultPoolSize"] = 8;
  pool["spec"]["databases"][0]["maxDbConnections"] = 8;
  pool["metadata"]["generation"] = 4;

  ReconcileResult changed = Reconcile(AgentInputs(pool));
  ASSERT_FALSE(changed.apply.empty());  // the ConfigMap: the agents reload it
  EXPECT_TRUE(changed.create_pods.empty());
  EXPECT_TRUE(changed.delete_pods.empty()) << "a reloadable change must not roll the pods";
  EXPECT_TRUE(changed.pod_figures.empty()) << "no agent reported the new configuration yet";
  EXPECT_GT(changed.requeue_after.count(), 0);
  EXPECT_EQ(changed.agents_awaited_within, 8) << "the poller asks these agents often meanwhile";
  ASSERT_TRUE(changed.status);
  EXPECT_EQ(Condition(*changed.status, "Progressing", "status"), "True");
  EXPECT_NE(Condition(*changed.status, "Progressing", "message").find("orders-0"),
            std::string::npos);
  StoreAll(pool, changed);
  EXPECT_EQ(Charged(), 20) << "the old figure stays charged until the agents report";

  // Reloaded, but still holding 10 server connections (above the new 8): not lowered yet.
  AllLoad((*changed.status)["configHash"], 10);
  ReconcileResult holding = Reconcile(AgentInputs(pool));
  EXPECT_TRUE(holding.pod_figures.empty()) << "lowered while the pod holds more";
  EXPECT_GT(holding.requeue_after.count(), 0);
  StoreAll(pool, holding);
  reports_["orders-0"].server_connections = 8;  // one pod within the new caps
  ReconcileResult one = Reconcile(AgentInputs(pool));
  ASSERT_EQ(one.pod_figures.size(), 1u);
  EXPECT_EQ(one.pod_figures[0].name, "orders-0");
  EXPECT_EQ(one.pod_figures[0].uid, "uid-orders-0");
  EXPECT_EQ(one.pod_figures[0].connections, 8);
  EXPECT_GT(one.requeue_after.count(), 0);
  StoreAll(pool, one);
  EXPECT_EQ(Charged(), 18);

  AllLoad(pool["status"]["configHash"]);
  ReconcileResult both = Reconcile(AgentInputs(pool));
  ASSERT_EQ(both.pod_figures.size(), 1u);
  EXPECT_EQ(both.pod_figures[0].name, "orders-1");
  StoreAll(pool, both);
  EXPECT_EQ(Charged(), 16);
  ReconcileResult done = Reconcile(AgentInputs(pool));
  EXPECT_TRUE(done.pod_figures.empty());
  EXPECT_EQ(done.requeue_after.count(), 0);
  EXPECT_FALSE(done.agents_awaited_within);
  StoreAll(pool, done);
  EXPECT_EQ(Condition(pool["status"], "Progressing", "status"), "False");
  EXPECT_EQ(Condition(pool["status"], "Ready", "status"), "True");
  EXPECT_EQ(Uids(), uids) << "no pod was replaced";
}

// instances 2 -> 3, maxSurge 0: the caps drop from 35 / 2 = 17 to 35 / 3 = 11 per pod. The new pod
// fits only once the running pods run the lowered caps (2 x 17 + 11 = 45 > 33; 2 x 11 + 11 = 33).
TEST_F(ReloadReconcileTest, ScalingUpLowersTheRunningPodsCapsBeforeAddingAPod) {
  json pool = DerivedPool(2, 0);
  SettleWithAgents(pool);
  ASSERT_EQ(PodNames(), (std::vector<std::string>{"orders-0", "orders-1"}));
  ASSERT_EQ(Charged(), 34);
  const int64_t usable = pool["status"]["budget"]["usable"];
  pool["spec"]["pooler"]["instances"] = 3;
  pool["metadata"]["generation"] = 4;

  ReconcileResult lowered = Reconcile(AgentInputs(pool));
  EXPECT_TRUE(lowered.create_pods.empty()) << "added before the running pods reloaded";
  EXPECT_TRUE(lowered.delete_pods.empty());
  EXPECT_TRUE(lowered.pod_figures.empty());
  StoreAll(pool, lowered);
  EXPECT_LE(Charged(), usable);

  AllLoad(pool["status"]["configHash"]);
  ReconcileResult reported = Reconcile(AgentInputs(pool));
  EXPECT_EQ(reported.pod_figures.size(), 2u);
  EXPECT_TRUE(reported.create_pods.empty()) << "the figures are lowered first";
  StoreAll(pool, reported);
  EXPECT_EQ(Charged(), 22);

  ReconcileResult added = Reconcile(AgentInputs(pool));
  EXPECT_EQ(Names(added.create_pods), (std::vector<std::string>{"orders-2"}));
  EXPECT_TRUE(added.delete_pods.empty()) << "scaling restarts nothing";
  StoreAll(pool, added);
  EXPECT_EQ(Charged(), 33);
  EXPECT_LE(Charged(), usable);
}

bool AppliesKind(const ReconcileResult& result, const std::string& kind) {
  for (const json& object : result.apply) {
    if (object["kind"] == kind) return true;
  }
  return false;
}

// 3 -> 2: the caps rise from 11 to 17 per pod. Every pod that exists would load a new ConfigMap,
// and 3 x 17 = 51 would overrun the server: the pod goes first, then the ConfigMap with the raised
// caps, then the figures once the agents report it.
TEST_F(ReloadReconcileTest, ScalingDownRemovesThePodThenRaisesTheCaps) {
  json pool = DerivedPool(3, 0);
  SettleWithAgents(pool);
  ASSERT_EQ(Charged(), 33);
  const int64_t usable = pool["status"]["budget"]["usable"];
  pool["spec"]["pooler"]["instances"] = 2;
  pool["metadata"]["generation"] = 4;
  ReconcileResult down = Reconcile(AgentInputs(pool));
  ASSERT_EQ(down.delete_pods.size(), 1u);
  EXPECT_EQ(down.delete_pods[0].name, "orders-2");
  EXPECT_TRUE(down.create_pods.empty());
  EXPECT_FALSE(AppliesKind(down, "ConfigMap")) << "raised caps while 3 pods exist";
  EXPECT_TRUE(down.pod_figures.empty());
  ASSERT_TRUE(down.status);
  EXPECT_NE(Condition(*down.status, "Progressing", "message").find("raised caps"),
            std::string::npos)
      << Condition(*down.status, "Progressing", "message");
  StoreAll(pool, down);  // orders-2 is gone

  ReconcileResult raise = Reconcile(AgentInputs(pool));
  EXPECT_TRUE(AppliesKind(raise, "ConfigMap"));
  EXPECT_TRUE(raise.pod_figures.empty());
  StoreAll(pool, raise);
  EXPECT_LE(2 * 17, usable);
  AllLoad(pool["status"]["configHash"]);
  ReconcileResult raised = Reconcile(AgentInputs(pool));
  ASSERT_EQ(raised.pod_figures.size(), 2u);
  EXPECT_EQ(raised.pod_figures[0].connections, 17);
  StoreAll(pool, raised);
  EXPECT_EQ(Charged(), 34);
}

TEST_F(ReloadReconcileTest, AnAgentReportingAnotherConfigurationChangesNothing) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  SettleWithAgents(pool);
  pool["spec"]["pooler"]["defaultPoolSize"] = 8;
  pool["spec"]["databases"][0]["maxDbConnections"] = 8;
  StoreAll(pool, Reconcile(AgentInputs(pool)));
  AllLoad("some-older-hash");
  ReconcileResult result = Reconcile(AgentInputs(pool));
  EXPECT_TRUE(result.pod_figures.empty());
  EXPECT_GT(result.requeue_after.count(), 0);
}

TEST_F(ReloadReconcileTest, WithoutTheAgentASettingChangeRollsAndNothingIsPatched) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Settle(pool);
  pool["spec"]["pooler"]["defaultPoolSize"] = 8;
  pool["spec"]["databases"][0]["maxDbConnections"] = 8;
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.pod_figures.empty());
  EXPECT_EQ(result.requeue_after.count(), 0);
  EXPECT_FALSE(result.create_pods.empty() && result.delete_pods.empty()) << "not rolled";
}

// status.live: what the poller gathered from the agents, as it is; a pool no longer asked drops
// it (a merge patch keeps what it does not name).
TEST_F(ReloadReconcileTest, TheStatusShowsTheAgentsLiveFiguresAndDropsThemWithoutTheAgent) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  SettleWithAgents(pool);
  PoolInputs in = AgentInputs(pool);
  in.live = api::LiveStatus{.server_connections = 13,
                            .clients_waiting = 5,
                            .longest_wait_seconds = 2,
                            .pods_reporting = 2};
  ReconcileResult busy = Reconcile(in);
  ASSERT_TRUE(busy.status);
  EXPECT_EQ((*busy.status)["live"], json({{"serverConnections", 13},
                                          {"clientsWaiting", 5},
                                          {"longestWaitSeconds", 2},
                                          {"podsReporting", 2}}));
  EXPECT_TRUE(busy.apply.empty() && busy.pod_figures.empty()) << "live figures change no object";
  StoreAll(pool, busy);
  PoolInputs again = AgentInputs(pool);
  again.live = in.live;
  EXPECT_FALSE(Reconcile(again).status) << "the same figures: nothing to write";

  ReconcileResult without = Reconcile(Inputs(pool));
  ASSERT_TRUE(without.status);
  ASSERT_TRUE(without.status->contains("live"));
  EXPECT_TRUE((*without.status)["live"].is_null());
}

}  // namespace
}  // namespace poolkeeper::controller
