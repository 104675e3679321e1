// spec.paused as the reconciler follows it. The pooler agents PAUSE or RESUME their PgBouncer on
// the ConfigMap's `paused` key (render::kPausedKey) and report it (agent_status.h); this says
// which of a pool's pods are not there yet. A PAUSE returns only once the pod's server connections
// are released: in transaction mode when the transactions in flight end, in session mode when the
// clients disconnect, so a pool may stay Pausing for a while. The budget is not changed: a paused
// pod holds no server connection, but it is still charged its figure, which it resumes to.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controller/agent_status.h"
#include "controller/pods.h"

namespace poolkeeper::controller {

// Condition reasons: Progressing while some pods are behind spec.paused, Degraded while spec.paused
// cannot be honoured.
inline constexpr char kPausingReason[] = "Pausing";
inline constexpr char kResumingReason[] = "Resuming";
inline constexpr char kPauseNeedsAgentReason[] = "PauseNeedsAgent";

struct PauseProgress {
  // At least one pod runs and every running pod's agent reports PgBouncer paused: status.paused.
  bool paused = false;
  // Running pods whose agent does not report PgBouncer where spec.paused wants it (or did not
  // answer), by name.
  std::vector<std::string> behind;
};

// `pods` as ObservePod reads them; running: owned, neither terminating nor finished.
PauseProgress FollowPause(bool want_paused, const std::vector<ObservedPod>& pods,
                          const std::map<std::string, AgentReport>& reports);

// The Progressing message while `behind` is not empty (the reason is kPausingReason or
// kResumingReason): which pods, and what a PAUSE waits for.
std::string PauseWaitingMessage(bool want_paused, const std::vector<std::string>& behind);

// Whether `stored`, an owned object as the operator applied it, differs from `want` only in the
// ConfigMap's `paused` key (or lacks that key, as written by an earlier version): applying it then
// changes no configuration the pods run.
bool OnlyPausedDiffers(const nlohmann::json& stored, const nlohmann::json& want);

// The Degraded message of a pool with spec.paused whose pods have no agent to PAUSE them.
std::string PauseNeedsAgentMessage();

}  // namespace poolkeeper::controller
