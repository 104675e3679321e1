// The pooler agent's password: generated once into the pool's auth Secret, then kept, so a running
// agent never loses its console login to a reconcile; and the agent image passes the pod policy.
#include <gtest/gtest.h>

#include "common/base64.h"
#include "controller/reconciler.h"
#include "reconciler_fixture.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

constexpr char kAgentImage[] = "localhost/poolkeeper:dev";

class AgentReconcileTest : public ReconcilerTest {};

PoolInputs WithAgent(PoolInputs in, const std::string& fresh) {
  in.defaults.agent_image = kAgentImage;
  in.policy.agent_image = kAgentImage;
  SetAgentImage(in.server_pools, kAgentImage);
  in.new_agent_password = fresh;
  return in;
}

const json* Applied(const ReconcileResult& result, const std::string& kind) {
  for (const json& object : result.apply) {
    if (object["kind"] == kind) return &object;
  }
  return nullptr;
}

std::string AgentPasswordOf(const json& secret) {
  return DecodeBase64(secret["data"][render::kAgentPasswordKey].get<std::string>()).value_or("");
}

TEST_F(AgentReconcileTest, TheAgentPasswordIsGeneratedOnceAndThenKept) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  ReconcileResult first = Reconcile(WithAgent(Inputs(pool), "fresh-1"));
  ASSERT_TRUE(first.blocked_reason.empty()) << first.blocked_reason;
  const json* secret = Applied(first, "Secret");
  ASSERT_NE(secret, nullptr);
  EXPECT_EQ(AgentPasswordOf(*secret), "fresh-1");
  ASSERT_FALSE(first.create_pods.empty());
  EXPECT_EQ(first.create_pods[0]["spec"]["containers"].size(), 2u);
  EXPECT_EQ(first.create_pods[0]["spec"]["containers"][1]["image"], kAgentImage);

  Store(pool, first, true);
  // A later pass offers another fresh password: the stored one wins, nothing is rewritten.
  ReconcileResult second = Reconcile(WithAgent(Inputs(pool), "fresh-2"));
  EXPECT_EQ(Applied(second, "Secret"), nullptr);
  EXPECT_TRUE(second.create_pods.empty());
}

TEST_F(AgentReconcileTest, NoAgentPasswordAtAllBlocksThePool) {
  json pool = PoolJson("orders", 2, 10, "2026-01-01T00:00:00Z");
  ReconcileResult result = Reconcile(WithAgent(Inputs(pool), ""));
  EXPECT_FALSE(result.blocked_reason.empty());
  EXPECT_TRUE(result.apply.empty());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(Condition(*result.status, "Degraded", "reason"), "AgentPasswordUnavailable");
}

}  // namespace
}  // namespace poolkeeper::controller
