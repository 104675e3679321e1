#include "controller/pause.h"

#include "common/json_get.h"
#include "controller/cache_trim.h"
#include "controller/reconciler.h"
#include "render/render.h"

namespace poolkeeper::controller {

PauseProgress FollowPause(bool want_paused, const std::vector<ObservedPod>& pods,
                          const std::map<std::string, AgentReport>& reports) {
  PauseProgress progress;
  bool all_paused = true, any = false;
  for (const ObservedPod& pod : pods) {
    if (!pod.owned || pod.terminating || pod.finished) continue;
    any = true;
    auto report = reports.find(pod.name);
    const bool paused = report != reports.end() && report->second.paused;
    all_paused = all_paused && paused;
    if (report == reports.end() || paused != want_paused) progress.behind.push_back(pod.name);
  }
  progress.paused = any && all_paused;
  return progress;
}

std::string PauseWaitingMessage(bool want_paused, const std::vector<std::string>& behind) {
  std::string names;
  for (const auto& name : behind) names += (names.empty() ? "" : ", ") + name;
  if (!want_paused) return "the agents of " + names + " have not reported PgBouncer resumed";
  return "the agents of " + names +
         " have not reported PgBouncer paused (PAUSE waits until the pod's server connections "
         "are released: transactions in flight end; in session mode, clients disconnect)";
}

bool OnlyPausedDiffers(const nlohmann::json& stored, const nlohmann::json& want) {
  if (JsonGet<std::string>(want, "kind", "") != "ConfigMap" || !want.contains("data")) return false;
  // `want` with the stored `paused`: if that is what was applied, `paused` is all that changed.
  nlohmann::json same = want;
  auto data = stored.find("data");
  if (data != stored.end() && data->is_object() && data->contains(render::kPausedKey)) {
    same["data"][render::kPausedKey] = data->at(render::kPausedKey);
  } else {
    same["data"].erase(render::kPausedKey);
  }
  const std::string hash = render::AppliedHash(same);
  same["metadata"]["annotations"][render::kAppliedHashAnnotation] = hash;
  // A compact cached object holds exactly what its hash stamps (cache_trim.h).
  return StringAnnotation(stored, render::kAppliedHashAnnotation) == hash &&
         (CachedAsApplied(stored) || Contains(stored, same));
}

std::string PauseNeedsAgentMessage() {
  return "spec.paused is true, but the pods have no pooler agent to PAUSE them: nothing is "
         "paused; run the operator with --agent-image (the chart's agent.enabled: true), or set "
         "spec.paused to false";
}

}  // namespace poolkeeper::controller
