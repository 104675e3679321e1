// What exists on each server now, from the operator's caches of pooler pods and ConfigMaps. Every
// pod, draining or not, is charged the connections its configuration can open
// (render::kPodConnectionsAnnotation) on the server it was configured for
// (render::kServerAnnotation), whoever owns it by then: a pool deleted, invalid, moved to another
// server or orphaned keeps its pods charged until they are gone. A pod is charged at least the
// per-pod figure of its pool's ConfigMap (a restarted container loads the mounted file), and a
// pool at least the worst case of its admitted configuration (the ConfigMap's
// render::kPlannedConnectionsAnnotation), which covers pods it is about to create. The informer
// handlers keep it current; reconciles read it. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "budget/planner.h"
#include "common/clock.h"

namespace poolkeeper::controller {

// "namespace/pool" from an object's poolkeeper.io/pool label, if it has one.
std::optional<std::string> PoolLabelKey(const nlohmann::json& object);

class HoldingsIndex {
 public:
  explicit HoldingsIndex(const Clock& clock) : clock_(clock) {}
  // From the informer: what exists.
  void UpsertPod(std::shared_ptr<const nlohmann::json> pod);
  // From the operator's own create, before the informer sees it. Counted until the informer
  // reports it, or for kUnconfirmedFor at most: a pod created and gone while the watch was
  // being re-established would otherwise be charged (and hold its slot) for ever.
  void UpsertCreatedPod(std::shared_ptr<const nlohmann::json> pod);
  static constexpr std::chrono::seconds kUnconfirmedFor{120};
  void RemovePod(const nlohmann::json& pod);
  // A pool's ConfigMap: the admitted configuration.
  void UpsertAdmitted(const nlohmann::json& config_map);
  void RemoveAdmitted(const nlohmann::json& config_map);

  // By pool key ("namespace/pool"): what that pool holds on `server`.
  std::map<std::string, int64_t> OnServer(const std::string& server) const;
  budget::Holdings OnServers(const std::set<std::string>& servers) const;
  // The pods labelled as the pool's that exist (any owner, any phase), as last seen: by the
  // informer, or as the API server returned them when the operator created them (the informer
  // may not have seen those yet, and a plan that missed them could start one pod too many).
  std::vector<std::shared_ptr<const nlohmann::json>> PodsOf(const std::string& pool_key) const;
  // The addresses (status.podIP) of the pods configured for `servers`, draining ones included:
  // their server connections are the poolers', not other clients'.
  std::set<std::string> PodAddresses(const std::set<std::string>& servers) const;
  // The server an object says it was configured for ("" when it does not say).
  static std::string ServerOf(const nlohmann::json& object);

 private:
  struct Charge {
    std::string server;
    std::string pool;  // namespace/pool
    int64_t connections = 0;
    bool live = true;  // not finished
    std::shared_ptr<const nlohmann::json> pod;
    std::optional<Clock::TimePoint> unconfirmed_since;  // created by us, not yet seen
  };
  using Pods = std::map<std::string, Charge>;  // by namespace/name
  // Pods ordered by their key, so a pool's pods come out as the whole map would list them.
  struct ByPodKey {
    bool operator()(Pods::iterator a, Pods::iterator b) const { return a->first < b->first; }
  };
  using PodSet = std::set<Pods::iterator, ByPodKey>;
  struct Admitted {
    std::string server;
    int64_t worst_case = 0;
    int64_t per_pod = 0;
  };

  static Charge ChargeOf(std::shared_ptr<const nlohmann::json> pod);
  // Every change to pods_ goes through these, which keep the indexes below in step. Under mutex_.
  void PutPod(const std::string& key, Charge charge);
  void ErasePod(Pods::iterator pod) const;
  void Index(Pods::iterator pod);
  void Unindex(Pods::iterator pod) const;
  void PutAdmitted(const std::string& pool, std::optional<Admitted> admitted);
  // Drops created pods the informer never confirmed in time. Under mutex_.
  void ExpireUnconfirmed() const;

  const Clock& clock_;
  mutable std::mutex mutex_;
  mutable Pods pods_;
  std::map<std::string, Admitted> admitted_;  // by pool key
  // A reconcile reads one server's (or one pool's) share of ~1,000 pools: these indexes let it
  // touch only that share. Entries leave them before pods_ or admitted_ forget what they name, and
  // an emptied set is dropped, so servers and pools that are gone leave nothing behind.
  mutable std::map<std::string, PodSet> pods_by_server_;
  mutable std::map<std::string, PodSet> pods_by_pool_;
  mutable std::set<std::pair<Clock::TimePoint, std::string>> unconfirmed_;  // (since, pod key)
  std::map<std::string, std::set<std::string>> admitted_by_server_;         // pool keys
};

}  // namespace poolkeeper::controller
