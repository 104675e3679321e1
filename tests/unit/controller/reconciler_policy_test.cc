// The pod policy in a reconcile: a pool whose image or scheduling fields the operator does not
// allow is refused with the field, an Event and a condition; nothing of it is rendered or written
// (its password Secrets are not read into anything), and pods it already runs keep running, as for
// any blocked spec, but are never copied when they break the policy themselves.
#include <gtest/gtest.h>

#include <algorithm>

#include "api/pod_policy.h"
#include "controller/reconciler.h"
#include "reconciler_fixture.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

// Its own suite name: gtest keeps one fixture class per suite across files.
class PolicyReconcileTest : public ReconcilerTest {};

bool Mentions(const ReconcileResult& result, const std::string& text) {
  for (const auto& object : result.apply) {
    if (object.dump().find(text) != std::string::npos) return true;
  }
  for (const auto& pod : result.create_pods) {
    if (pod.dump().find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_F(PolicyReconcileTest, APoolThePolicyRefusesGetsNothingRendered) {
  struct Case {
    std::string field;
    json value;
    std::string path;
  };
  for (const auto& c : std::vector<Case>{
           {"image", "attacker.example/anything:1.18", "spec.pooler.image"},
           {"image", "ghcr.io/cloudnative-pg/pgbouncer.evil.com/x:1.18", "spec.pooler.image"},
           {"tolerations", json::array({{{"operator", "Exists"}}}), "spec.pooler.tolerations[0]"},
           {"tolerations",
            json::array({{{"key", "node-role.kubernetes.io/control-plane"},
                          {"operator", "Exists"},
                          {"effect", "NoSchedule"}}}),
            "spec.pooler.tolerations[0]"},
           {"priorityClassName", "system-node-critical", "spec.pooler.priorityClassName"},
       }) {
    json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
    pool["spec"]["pooler"][c.field] = c.value;
    ReconcileResult result = Reconcile(Inputs(pool));
    EXPECT_TRUE(result.apply.empty()) << c.path;
    EXPECT_TRUE(result.create_pods.empty()) << c.path;
    EXPECT_FALSE(Mentions(result, "s3cret")) << c.path;
    ASSERT_TRUE(result.status);
    EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "PolicyViolation") << c.path;
    const std::string message = Condition(*result.status, "Degraded", "message");
    EXPECT_TRUE(message.starts_with(
        "refused by the operator's pod policy, nothing rendered: " + c.path + ": "))
        << message;
    EXPECT_EQ(Condition(*result.status, "Ready", "reason"), "Blocked");
    ASSERT_EQ(result.events.size(), 1u);
    EXPECT_EQ(result.events[0], (EventRecord{"Warning", "PolicyViolation", message}));
  }
}

TEST_F(PolicyReconcileTest, TheOperatorsFlagsAllowWhatTheyName) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  pool["spec"]["pooler"]["image"] = "localhost:5000/team/pgbouncer:1.18.0";
  pool["spec"]["pooler"]["tolerations"] = json::array({{{"operator", "Exists"}}});
  pool["spec"]["pooler"]["priorityClassName"] = "system-cluster-critical";
  PoolInputs in = Inputs(pool);
  auto policy = api::MakePodPolicy({"localhost:5000/team/*"}, {"system-cluster-critical"}, true,
                                   api::ParseDefaults{});
  ASSERT_TRUE(policy);
  in.policy = *policy;
  ReconcileResult result = Reconcile(in);
  EXPECT_EQ(result.create_pods.size(), 2u);
  EXPECT_EQ(result.create_pods[0]["spec"]["containers"][0]["image"],
            "localhost:5000/team/pgbouncer:1.18.0");
  EXPECT_EQ(result.create_pods[0]["spec"]["priorityClassName"], "system-cluster-critical");
}

// As an overrun under Enforce: the pods of the last allowed spec keep running and are replaced
// when one goes, nothing is applied.
TEST_F(PolicyReconcileTest, ARefusedChangeKeepsTheRunningPods) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  Settle(pool);
  ASSERT_EQ(PodNames(), (std::vector<std::string>{"orders-0", "orders-1"}));
  const json config_map = owned_["ConfigMap"];
  pool["spec"]["pooler"]["image"] = "attacker.example/anything:1.18";
  pool["metadata"]["generation"] = 4;
  ReconcileResult result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.apply.empty());
  EXPECT_TRUE(result.delete_pods.empty());
  EXPECT_TRUE(result.create_pods.empty());
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "PolicyViolation");
  Store(pool, result, true);
  EXPECT_EQ(owned_["ConfigMap"], config_map);
  pods_.erase("orders-1");  // evicted: replaced by a copy of its sibling, the allowed image
  result = Reconcile(Inputs(pool));
  ASSERT_EQ(result.create_pods.size(), 1u);
  EXPECT_EQ(result.create_pods[0]["spec"]["containers"][0]["image"],
            "ghcr.io/cloudnative-pg/pgbouncer:1.18.0");
  EXPECT_FALSE(Mentions(result, "attacker.example"));
}

// Pods that ran before the policy did (an operator upgrade) keep running, but one that goes is
// not copied: the copy would run the refused image again.
TEST_F(PolicyReconcileTest, ARunningPodThePolicyRefusesIsNotCopied) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  pool["spec"]["pooler"]["image"] = "attacker.example/anything:1.18";
  auto everything = api::MakePodPolicy({"*"}, {}, false, api::ParseDefaults{});
  ASSERT_TRUE(everything);
  for (int i = 0; i < 10; ++i) {  // settled under a policy that allowed it
    PoolInputs in = Inputs(pool);
    in.policy = *everything;
    ReconcileResult result = Reconcile(in);
    Store(pool, result, true);
    if (result.create_pods.empty() && result.apply.empty() && !result.status) break;
  }
  ASSERT_EQ(PodNames(), (std::vector<std::string>{"orders-0", "orders-1"}));
  ReconcileResult result = Reconcile(Inputs(pool));  // the default policy
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "PolicyViolation");
  EXPECT_TRUE(result.delete_pods.empty()) << "running pods are left to the admin";
  pods_.erase("orders-1");
  result = Reconcile(Inputs(pool));
  EXPECT_TRUE(result.create_pods.empty());
}

}  // namespace
}  // namespace poolkeeper::controller
