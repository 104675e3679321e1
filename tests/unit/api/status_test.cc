#include "api/status.h"

#include <gtest/gtest.h>

namespace poolkeeper::api {
namespace {

TEST(SetCondition, KeepsTransitionTimeWhileStatusIsUnchanged) {
  std::vector<Condition> conditions;
  SetCondition(conditions, {kConditionReady, "False", "Progressing", "rolling out", 1, ""}, "t1");
  SetCondition(conditions, {kConditionReady, "False", "Progressing", "2 of 3 ready", 2, ""}, "t2");
  ASSERT_EQ(conditions.size(), 1u);
  EXPECT_EQ(conditions[0].last_transition_time, "t1");
  EXPECT_EQ(conditions[0].message, "2 of 3 ready");
  EXPECT_EQ(conditions[0].observed_generation, 2);
  SetCondition(conditions, {kConditionReady, "True", "Available", "3 of 3 ready", 2, ""}, "t3");
  EXPECT_EQ(conditions[0].last_transition_time, "t3");
}

TEST(StatusJson, RoundTrips) {
  PoolStatus status;
  status.observed_generation = 4;
  status.instances = 2;
  status.ready_instances = 1;
  status.selector = "poolkeeper.io/pool=orders";
  status.config_hash = "abc";
  status.paused = true;
  status.budget = {"db:5432", 177, 150, 50, 150, 27, {{"orders", 25, true}}};
  SetCondition(status.conditions, {kConditionBudgetExceeded, "False", "WithinBudget", "ok", 4, ""},
               "2026-11-23T10:00:00Z");
  EXPECT_EQ(StatusFromJson(StatusToJson(status)), status);
  EXPECT_FALSE(StatusToJson(status).contains("live")) << "no agent, no live figures";
  status.live = LiveStatus{.server_connections = 17,
                           .clients_waiting = 4,
                           .longest_wait_seconds = 3,
                           .pods_reporting = 2};
  const nlohmann::json with_live = StatusToJson(status);
  EXPECT_EQ(with_live["live"]["serverConnections"], 17);
  EXPECT_EQ(with_live["live"]["longestWaitSeconds"], 3);
  EXPECT_EQ(StatusFromJson(with_live), status);
}

TEST(StatusJson, IgnoresMistypedFieldsOfAnOlderStatus) {
  auto status = StatusFromJson(
      nlohmann::json::parse(R"({"instances":"2","paused":"true","conditions":[{}]})"));
  EXPECT_EQ(status.instances, 0);
  EXPECT_FALSE(status.paused);
  EXPECT_EQ(status.conditions.size(), 1u);
}

}  // namespace
}  // namespace poolkeeper::api
