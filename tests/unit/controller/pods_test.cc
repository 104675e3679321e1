#include "controller/pods.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace poolkeeper::controller {
namespace {

ObservedPod Pod(std::string name, std::string hash, int64_t connections, bool ready = true) {
  return {.name = std::move(name),
          .uid = "uid",
          .config_hash = std::move(hash),
          .connections = connections,
          .owned = true,
          .ready = ready};
}

PodTarget Target(int instances, int surge, int64_t connections, int64_t limit) {
  return {.pool_name = "app",
          .instances = instances,
          .slots = instances == 0 ? 0 : instances + surge,
          .config_hash = "new",
          .connections = connections,
          .limit = limit,
          .max_unavailable = surge == 0 ? 1 : 0};
}

std::vector<std::string> Removed(const PodChanges& changes) {
  std::vector<std::string> names;
  for (const auto& pod : changes.remove) names.push_back(pod.name);
  return names;
}

struct Case {
  const char* name;
  PodTarget target;
  std::vector<ObservedPod> pods;
  std::vector<int> create;
  std::vector<std::string> remove;
  bool complete = false;
};

TEST(PlanPods, Table) {
  ObservedPod evicted = Pod("app-0", "new", 5);
  evicted.terminating = true;
  ObservedPod finished = Pod("app-1", "new", 5);
  finished.finished = true;
  ObservedPod foreign = Pod("app-1", "new", 5);
  foreign.owned = false;
  const Case cases[] = {
      {"StartsTheMissingPodsInTheLowestSlots", Target(2, 1, 5, 15), {}, {0, 1}, {}},
      {"SteadyStateChangesNothing",
       Target(2, 1, 5, 15),
       {Pod("app-0", "new", 5), Pod("app-1", "new", 5)},
       {},
       {},
       true},
      {"RolloutStartsASurgePodFirst",
       Target(2, 1, 5, 15),
       {Pod("app-0", "old", 5), Pod("app-1", "old", 5)},
       {2},
       {}},
      {"RolloutRetiresAnOldPodOnceTheNewOneIsReady",
       Target(2, 1, 5, 15),
       {Pod("app-0", "old", 5), Pod("app-1", "old", 5), Pod("app-2", "new", 5)},
       {},
       {"app-1"}},
      // Issue 9, case 4: 2 -> 3 instances with derived caps 5 -> 3 on 15 usable. Old and new
      // configurations side by side may hold 2 x 5 + 3 = 13, never 2 x 5 + 2 x 3 = 16.
      {"LowerCapsWaitForTheOldPodsToGo",
       Target(3, 1, 3, 15),
       {Pod("app-0", "old", 5), Pod("app-1", "old", 5)},
       {2},
       {}},
      {"WithoutSurgeAnOldPodGoesFirst",
       Target(2, 0, 5, 10),
       {Pod("app-0", "old", 5), Pod("app-1", "old", 5)},
       {},
       {"app-1"}},
      {"WithoutRoomForASurgePodTheRolloutStillMoves",
       Target(2, 1, 8, 16),
       {Pod("app-0", "old", 8), Pod("app-1", "old", 8)},
       {},
       {"app-1"}},
      {"ScalingDownRetiresTheHighestSlots",
       Target(2, 1, 5, 15),
       {Pod("app-0", "new", 5), Pod("app-1", "new", 5), Pod("app-2", "new", 5)},
       {},
       {"app-2"}},
      {"ScalingDownRetiresPodsThatAreNotReadyFirst",
       Target(2, 1, 5, 15),
       {Pod("app-0", "new", 5, false), Pod("app-1", "new", 5), Pod("app-2", "new", 5)},
       {},
       {"app-0"}},
      // Issue 9, case 3: an evicted pod drains in its slot and stays charged; its replacement
      // takes the surge slot only because the charge fits.
      {"AnEvictedPodIsReplacedOnlyWhereItsChargeFits",
       Target(2, 1, 5, 15),
       {evicted, Pod("app-1", "new", 5)},
       {2},
       {}},
      {"ASecondEvictionWaitsForTheFirstToBeGone",
       Target(2, 1, 5, 15),
       {evicted, Pod("app-1", "new", 5, false), Pod("app-2", "new", 5)},
       {},
       {}},
      {"AFinishedPodIsRemovedAndHoldsNothing",
       Target(2, 0, 5, 10),
       {Pod("app-0", "new", 5), finished},
       {},
       {"app-1"}},
      {"APodOfNoOwnerIsChargedButLeftAlone",
       Target(2, 1, 5, 10),
       {Pod("app-0", "new", 5), foreign},
       {},
       {}},
      // Issue 9, case 6.
      {"ZeroInstancesRetireEveryPod",
       Target(0, 1, 5, 0),
       {Pod("app-0", "new", 5), Pod("app-1", "old", 5)},
       {},
       {"app-0", "app-1"}},
  };
  for (const Case& c : cases) {
    PodChanges changes = PlanPods(c.target, c.pods);
    EXPECT_EQ(changes.create, c.create) << c.name;
    EXPECT_EQ(Removed(changes), c.remove) << c.name;
    EXPECT_EQ(changes.complete, c.complete) << c.name;
  }
}

TEST(PlanPods, SaysWhyItWaits) {
  PodChanges changes =
      PlanPods(Target(3, 1, 3, 15),
               {Pod("app-0", "old", 5), Pod("app-1", "old", 5), Pod("app-2", "new", 3, false)});
  EXPECT_TRUE(changes.create.empty());
  EXPECT_NE(changes.waiting.find("beside the 13"), std::string::npos) << changes.waiting;
}

// A cluster where anything happens to the pods between two reconciles: pods become ready, are
// evicted or deleted by hand (they drain for a while), finish, and the pool's configuration and
// size change. Whatever the order, what the existing pods can open never exceeds the limit, and
// the rollout always completes once the disturbances stop.
TEST(PlanPods, WhatExistsNeverExceedsTheLimit) {
  std::mt19937 rng(7);
  auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  for (int trial = 0; trial < 300; ++trial) {
    std::map<std::string, ObservedPod> pods;
    int version = 0;
    PodTarget target = Target(pick(0, 4), pick(0, 2), pick(1, 6), 0);
    auto retarget = [&] {
      target = Target(pick(0, 4), pick(0, 2), pick(1, 6), 0);
      target.config_hash = "v" + std::to_string(++version);
      // The budget is at least the plan, as admission guarantees.
      target.limit = target.slots * target.connections + pick(0, 6);
    };
    retarget();
    auto step = [&](bool disturb) {
      std::vector<ObservedPod> observed;
      for (const auto& [name, pod] : pods) observed.push_back(pod);
      // A restarted container loads the current ConfigMap: each pod counts at least that.
      for (auto& pod : observed) pod.connections = std::max(pod.connections, target.connections);
      PodChanges changes = PlanPods(target, observed);
      for (const auto& pod : changes.remove) pods[pod.name].terminating = true;
      for (int slot : changes.create) {
        std::string name = "app-" + std::to_string(slot);
        ASSERT_FALSE(pods.contains(name)) << "slot reused while its pod exists";
        pods[name] = Pod(name, target.config_hash, target.connections, false);
      }
      int64_t charged = 0;
      for (const auto& [name, pod] : pods) {
        charged += pod.finished ? 0 : std::max(pod.connections, target.connections);
      }
      if (!changes.create.empty()) {
        EXPECT_LE(charged, target.limit) << "trial " << trial;
      }
      // The world moves on.
      for (auto it = pods.begin(); it != pods.end();) {
        ObservedPod& pod = it->second;
        int roll = pick(0, 9);
        if (pod.terminating && roll < 5) {
          it = pods.erase(it);  // drained and gone
          continue;
        }
        if (!pod.terminating && !pod.finished && roll < 7) pod.ready = true;
        if (disturb && !pod.terminating && roll == 9) pod.terminating = true;  // evicted
        if (disturb && !pod.terminating && roll == 8 && pick(0, 3) == 0) pod.finished = true;
        ++it;
      }
    };
    for (int i = 0; i < 20; ++i) {
      if (pick(0, 5) == 0) retarget();
      step(/*disturb=*/true);
    }
    for (int i = 0; i < 60; ++i) step(/*disturb=*/false);
    std::vector<ObservedPod> observed;
    for (const auto& [name, pod] : pods) observed.push_back(pod);
    EXPECT_TRUE(PlanPods(target, observed).complete) << "trial " << trial << " stuck";
  }
}

}  // namespace
}  // namespace poolkeeper::controller
