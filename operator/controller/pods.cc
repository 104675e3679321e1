#include "controller/pods.h"

#include <algorithm>
#include <set>

#include "controller/pool_writer.h"
#include "controller/reconciler.h"
#include "render/render.h"

namespace poolkeeper::controller {

using nlohmann::json;

bool PodFinished(const json& pod) {
  const std::string phase = pod.value("/status/phase"_json_pointer, "");
  return phase == "Succeeded" || phase == "Failed";
}

ObservedPod ObservePod(const json& pod, const std::string& pool_uid, int64_t fallback_connections) {
  ObservedPod observed;
  observed.name = pod.value("/metadata/name"_json_pointer, "");
  observed.uid = pod.value("/metadata/uid"_json_pointer, "");
  observed.resource_version = pod.value("/metadata/resourceVersion"_json_pointer, "");
  observed.config_hash = StringAnnotation(pod, render::kConfigHashAnnotation);
  observed.connections =
      IntAnnotation(pod, render::kPodConnectionsAnnotation).value_or(fallback_connections);
  observed.owned = OwnedBy(pod, pool_uid);
  observed.terminating = pod.contains("/metadata/deletionTimestamp"_json_pointer);
  observed.finished = PodFinished(pod);
  for (const auto& c : pod.value("/status/conditions"_json_pointer, json::array())) {
    if (c.value("type", "") == "Ready") observed.ready = c.value("status", "") == "True";
  }
  return observed;
}

namespace {

// Which of several pods to keep: ready before not ready, then the lowest slot.
bool Better(const ObservedPod& a, const ObservedPod& b) {
  return std::tie(b.ready, a.name) < std::tie(a.ready, b.name);
}

}  // namespace

PodChanges PlanPods(const PodTarget& target, const std::vector<ObservedPod>& pods) {
  PodChanges changes;
  int64_t charged = 0;  // what every pod that exists can open, draining ones included
  std::set<std::string> taken;
  std::vector<ObservedPod> current, stale;
  bool draining = false;
  for (const auto& pod : pods) {
    taken.insert(pod.name);
    if (!pod.finished) charged += pod.connections;
    if (!pod.owned) continue;
    if (pod.terminating) {
      draining = draining || !pod.finished;
    } else if (pod.finished) {
      changes.remove.push_back(pod);  // frees its slot; it holds nothing
    } else if (pod.config_hash == target.config_hash) {
      current.push_back(pod);
    } else {
      stale.push_back(pod);
    }
  }
  std::ranges::sort(current, Better);
  std::ranges::sort(stale, Better);

  // More current pods than wanted (scaled down): the worst go.
  while (current.size() > static_cast<size_t>(target.instances)) {
    changes.remove.push_back(current.back());
    current.pop_back();
  }

  // New pods, in the lowest free slots, while their connections fit.
  int missing = target.instances - static_cast<int>(current.size());
  for (int slot = 0; slot < target.slots && missing > 0; ++slot) {
    const std::string name = render::PodName(target.pool_name, slot);
    if (taken.contains(name)) continue;
    if (charged + target.connections > target.limit) {
      changes.waiting = "a new pod needs " + std::to_string(target.connections) +
                        " connections beside the " + std::to_string(charged) +
                        " its pool's pods hold, over its limit of " + std::to_string(target.limit);
      break;
    }
    changes.create.push_back(slot);
    charged += target.connections;
    --missing;
  }
  if (missing > 0 && changes.waiting.empty()) {
    changes.waiting = "every slot is taken by a pod that still exists";
  }

  changes.ready = std::ranges::count_if(current, &ObservedPod::ready);
  const int64_t wanted = target.instances;
  if (changes.ready >= wanted) {
    // The new configuration serves at full strength: every old pod goes.
    for (const auto& pod : stale) changes.remove.push_back(pod);
    stale.clear();
  } else if (!stale.empty()) {
    // One old pod at a time, the worst first: one that is not ready costs nothing; a ready one
    // only as far as max_unavailable allows, or when nothing else can move the rollout on (no pod
    // can be created, none is starting or draining).
    const ObservedPod& victim = stale.back();
    const int64_t serving = changes.ready + std::ranges::count_if(stale, &ObservedPod::ready);
    const bool starting = !changes.create.empty() ||
                          std::ranges::any_of(current, [](const auto& p) { return !p.ready; });
    const bool stuck = changes.create.empty() && !starting && !draining;
    if (!victim.ready || serving - 1 >= wanted - target.max_unavailable || stuck) {
      changes.remove.push_back(victim);
      stale.pop_back();
    }
  }
  changes.complete = stale.empty() && current.size() == static_cast<size_t>(wanted) &&
                     changes.ready == wanted && changes.create.empty() && changes.remove.empty();
  return changes;
}

}  // namespace poolkeeper::controller
