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

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "budget/planner.h"

namespace poolkeeper::controller {

class HoldingsIndex {
 public:
  void UpsertPod(const nlohmann::json& pod);
  void RemovePod(const nlohmann::json& pod);
  // A pool's ConfigMap: the admitted configuration.
  void UpsertAdmitted(const nlohmann::json& config_map);
  void RemoveAdmitted(const nlohmann::json& config_map);

  // By pool key ("namespace/pool"): what that pool holds on `server`.
  std::map<std::string, int64_t> OnServer(const std::string& server) const;
  budget::Holdings OnServers(const std::set<std::string>& servers) const;
  // Names of the pods labelled as the pool's that exist (any owner, any phase).
  std::vector<std::string> PodsOf(const std::string& pool_key) const;
  // The server an object says it was configured for ("" when it does not say).
  static std::string ServerOf(const nlohmann::json& object);

 private:
  struct Charge {
    std::string server;
    std::string pool;  // namespace/pool
    int64_t connections = 0;
    bool live = true;  // pods: not finished
  };
  struct Admitted {
    std::string server;
    int64_t worst_case = 0;
    int64_t per_pod = 0;
  };

  mutable std::mutex mutex_;
  std::map<std::string, Charge> pods_;        // by namespace/name
  std::map<std::string, Admitted> admitted_;  // by pool key
};

}  // namespace poolkeeper::controller
