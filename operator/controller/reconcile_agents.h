// The reconcile steps that follow the pooler agents' reports (agent_status.h). With the agent a pod
// takes a new configuration by RELOAD and spec.paused by PAUSE or RESUME, in place: the pods alone
// cannot tell a pass whether the change arrived, nor whether a pod already holds no more server
// connections than its new figure. These steps read what the agents last said, charge a pod its
// new figure only once its agent confirmed it, and keep the pool Progressing and queued again until
// every agent has. Pure: Reconcile (reconciler.h) runs them as steps of its pass.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "api/connection_pool.h"
#include "api/status.h"
#include "budget/plan.h"
#include "controller/pause.h"
#include "controller/reconciler.h"
#include "render/render.h"

namespace poolkeeper::controller {

// With the agent every pod that exists loads a new ConfigMap (draining ones too), so a
// configuration that raises the per-pod figure waits while the pods that exist could not all run
// it within the pool's limit: scaling down removes the pod first, then raises the caps. Returns
// what the held ConfigMap waits for, or nullopt when it need not wait.
std::optional<std::string> HoldRaise(const PoolInputs& in, const api::ConnectionPool& pool,
                                     const budget::PoolPlan& plan);

// With the agent: the pods that run the current pod hash take a new configuration by RELOAD.
// Each stays charged its own figure until its agent reports the new config hash loaded and, when
// the figure goes down, no more server connections held than the new one; then its figure
// becomes the new one (result.pod_figures). Until every pod reports, the rollout is not complete:
// returns what it waits for ("" when nothing), and has the pool asked and queued again.
std::string ConfirmReloads(const PoolInputs& in, const api::ConnectionPool& pool,
                           const render::OwnedObjects& objects, const budget::PoolPlan& plan,
                           ReconcileResult& result);

// spec.paused reaches the pods through the ConfigMap: status.paused is what their agents report,
// and until every running pod is where the spec wants it the pool is Pausing or Resuming, asked
// again as for reloads. Without the agent nothing can pause: Degraded says so, and nothing else
// changes. A blocked spec (result.blocked_reason) writes no ConfigMap, so there is nothing to wait
// for. Returns the pods still behind, for Progressing.
PauseProgress TrackPause(const PoolInputs& in, bool want_paused, int64_t generation,
                         api::PoolStatus& status, ReconcileResult& result);

}  // namespace poolkeeper::controller
