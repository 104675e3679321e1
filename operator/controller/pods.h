// The pooler pods of one pool, driven by the operator rather than a Deployment, so that the budget
// holds at every instant: a Deployment does not count terminating pods against maxSurge and
// replaces a deleted or evicted pod at once, while a draining PgBouncer keeps its server
// connections. Here a pod is created only when the connections of every pod of the pool that
// exists (draining ones included) plus its own fit in the pool's limit, and only in a free named
// slot (<pool>-0 .. <pool>-(instances + maxSurge - 1)): a name is free again only when its pod is
// gone, so no retry, restart or race can start more pods than there are slots.
//
// A rollout replaces pods one at a time: a new pod first when the budget and a slot allow it (then
// an old one goes once the new one is ready), else an old pod first (then its replacement starts
// when it is gone). Pure: no I/O.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace poolkeeper::controller {

struct ObservedPod {
  std::string name;
  std::string uid;
  std::string resource_version;  // as observed: a delete applies only to this version
  std::string config_hash;
  int64_t connections = 0;  // what its pgbouncer can open (its annotation)
  bool owned = false;       // controlled by this pool (else only charged: orphaned, hand-made)
  bool terminating = false;
  bool finished = false;  // Succeeded or Failed: its pgbouncer has exited
  bool ready = false;
};

// What the pool wants of its pods.
struct PodTarget {
  std::string pool_name;
  int instances = 0;
  int slots = 0;  // instances + maxSurge; 0 with 0 instances
  std::string config_hash;
  int64_t connections = 0;  // per pod of the new configuration
  int64_t limit = 0;        // the most the pool's pods may hold at once
  int max_unavailable = 0;  // how many fewer than `instances` may be ready during a rollout
};

struct PodChanges {
  std::vector<int> create;          // slots
  std::vector<ObservedPod> remove;  // pods to delete (graceful: they drain)
  int64_t ready = 0;                // ready pods of the current configuration
  bool complete = false;            // exactly `instances` ready pods, all current
  std::string waiting;              // why a wanted pod is not created, when one is not
};

// Succeeded or Failed: the pod's pgbouncer has exited, so it holds no connection.
bool PodFinished(const nlohmann::json& pod);

// Reads the facts PlanPods needs from a stored pod. `fallback_connections` charges a pod that
// carries no figure (made by an earlier version).
ObservedPod ObservePod(const nlohmann::json& pod, const std::string& pool_uid,
                       int64_t fallback_connections);

PodChanges PlanPods(const PodTarget& target, const std::vector<ObservedPod>& pods);

}  // namespace poolkeeper::controller
