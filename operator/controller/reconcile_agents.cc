#include "controller/reconcile_agents.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "controller/pods.h"
#include "controller/pool_writer.h"

namespace poolkeeper::controller {
namespace {

// A backstop: the poller asks the awaited agents often and queues the pool as soon as a report
// decides otherwise (agent_poller.h).
constexpr std::chrono::seconds kAgentRequeue{30};

}  // namespace

std::optional<std::string> HoldRaise(const PoolInputs& in, const api::ConnectionPool& pool,
                                     const budget::PoolPlan& plan) {
  if (pool.spec.pooler.agent_image.empty()) return std::nullopt;
  int64_t pods = 0;
  for (const auto& pod : in.pods) pods += PodFinished(pod) ? 0 : 1;
  if (pods * plan.per_instance <= plan.limit) return std::nullopt;
  return std::to_string(pods) + " pods exist: the raised caps (" +
         std::to_string(plan.per_instance) + " per pod) wait until " +
         std::to_string(plan.limit / std::max<int64_t>(plan.per_instance, 1)) + " are left";
}

std::string ConfirmReloads(const PoolInputs& in, const api::ConnectionPool& pool,
                           const render::OwnedObjects& objects, const budget::PoolPlan& plan,
                           ReconcileResult& result) {
  if (pool.spec.pooler.agent_image.empty() || !in.agents_asked) return "";
  std::vector<std::string> reloading;
  for (const auto& pod : in.pods) {
    ObservedPod o = ObservePod(pod, PoolUid(in.pool), 0);
    if (!o.owned || o.terminating || o.finished || o.config_hash != objects.pod_hash) continue;
    auto report = in.agent_reports.find(o.name);
    auto figure = IntAnnotation(pod, render::kPodConnectionsAnnotation);
    const bool lowering = !figure || *figure > plan.per_instance;
    if (report == in.agent_reports.end() || report->second.config_hash != objects.config_hash ||
        (lowering && report->second.server_connections > plan.per_instance)) {
      reloading.push_back(o.name);
      continue;
    }
    if (figure != plan.per_instance) {
      result.pod_figures.push_back({o.name, o.uid, plan.per_instance});
    }
  }
  if (reloading.empty()) return "";
  std::string names;
  for (const auto& name : reloading) names += (names.empty() ? "" : ", ") + name;
  result.agents_awaited_within = plan.per_instance;
  result.requeue_after = kAgentRequeue;
  return "the agents of " + names + " have not reported configuration " +
         objects.config_hash.substr(0, 12) + " loaded with at most " +
         std::to_string(plan.per_instance) + " server connections";
}

PauseProgress TrackPause(const PoolInputs& in, bool want_paused, int64_t generation,
                         api::PoolStatus& status, ReconcileResult& result) {
  const bool agent = !in.defaults.agent_image.empty();
  const bool rolled_out = result.blocked_reason.empty();
  if (rolled_out && want_paused && !agent) {
    api::SetCondition(status.conditions,
                      {api::kConditionDegraded, "True", kPauseNeedsAgentReason,
                       PauseNeedsAgentMessage(), generation, ""},
                      in.now);
    result.events.push_back({"Warning", kPauseNeedsAgentReason, PauseNeedsAgentMessage()});
  }
  status.paused = false;
  if (!agent || !in.agents_asked) return {};
  std::vector<ObservedPod> observed;
  for (const auto& pod : in.pods) observed.push_back(ObservePod(pod, PoolUid(in.pool), 0));
  PauseProgress pause = FollowPause(want_paused, observed, in.agent_reports);
  status.paused = pause.paused;
  if (!rolled_out) pause.behind.clear();
  if (pause.behind.empty()) return pause;
  // The poller asks these agents every second and queues the pool as soon as one reports paused
  // or resumed (agent_poller.h); no server-connection figure is awaited.
  if (!result.agents_awaited_within) {
    result.agents_awaited_within = std::numeric_limits<int64_t>::max();
  }
  if (result.requeue_after.count() == 0) result.requeue_after = kAgentRequeue;
  return pause;
}

}  // namespace poolkeeper::controller
