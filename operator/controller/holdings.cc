#include "controller/holdings.h"

#include <algorithm>

#include "controller/pods.h"
#include "controller/reconciler.h"
#include "kube/client.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

// The pool an object belongs to: its pool label, else its own name (a pool's ConfigMap).
std::string PoolOf(const json& object) {
  return PoolLabelKey(object).value_or(kube::ObjectKey(object));
}

}  // namespace

std::optional<std::string> PoolLabelKey(const json& object) {
  auto label = json::json_pointer("/metadata/labels") / render::kPoolLabel;
  if (!object.contains(label) || !object[label].is_string()) return std::nullopt;
  return object.value("/metadata/namespace"_json_pointer, "") + "/" +
         object[label].get<std::string>();
}

std::string HoldingsIndex::ServerOf(const json& object) {
  return StringAnnotation(object, render::kServerAnnotation);
}

HoldingsIndex::Charge HoldingsIndex::ChargeOf(std::shared_ptr<const json> pod) {
  return {ServerOf(*pod),
          PoolOf(*pod),
          IntAnnotation(*pod, render::kPodConnectionsAnnotation).value_or(0),
          !PodFinished(*pod),
          std::move(pod),
          std::nullopt};
}

void HoldingsIndex::UpsertPod(std::shared_ptr<const json> pod) {
  const std::string key = kube::ObjectKey(*pod);
  Charge charge = ChargeOf(std::move(pod));
  std::lock_guard guard(mutex_);
  pods_[key] = std::move(charge);
}

void HoldingsIndex::UpsertCreatedPod(std::shared_ptr<const json> pod) {
  const std::string key = kube::ObjectKey(*pod);
  Charge charge = ChargeOf(std::move(pod));
  charge.unconfirmed_since = clock_.Now();
  std::lock_guard guard(mutex_);
  if (!pods_.contains(key)) pods_[key] = std::move(charge);  // the informer was quicker
}

void HoldingsIndex::ExpireUnconfirmed() const {
  const Clock::TimePoint now = clock_.Now();
  std::erase_if(pods_, [&](const auto& entry) {
    const auto& since = entry.second.unconfirmed_since;
    return since && now - *since > kUnconfirmedFor;
  });
}

void HoldingsIndex::RemovePod(const json& pod) {
  std::lock_guard guard(mutex_);
  pods_.erase(kube::ObjectKey(pod));
}

void HoldingsIndex::UpsertAdmitted(const json& config_map) {
  auto planned = PlannedConnections(config_map);
  // An orphaned ConfigMap (delete --cascade=orphan) admits nothing: only pods hold connections.
  bool owned = false;
  for (const auto& ref :
       config_map.value("/metadata/ownerReferences"_json_pointer, json::array())) {
    owned = owned || ref.value("kind", "") == "ConnectionPool";
  }
  std::lock_guard guard(mutex_);
  if (!planned || !owned) {
    admitted_.erase(PoolOf(config_map));
    return;
  }
  admitted_[PoolOf(config_map)] = {
      ServerOf(config_map), *planned,
      IntAnnotation(config_map, render::kPodConnectionsAnnotation).value_or(0)};
}

void HoldingsIndex::RemoveAdmitted(const json& config_map) {
  std::lock_guard guard(mutex_);
  admitted_.erase(PoolOf(config_map));
}

std::map<std::string, int64_t> HoldingsIndex::OnServer(const std::string& server) const {
  std::map<std::string, int64_t> held;
  std::lock_guard guard(mutex_);
  ExpireUnconfirmed();
  for (const auto& [key, charge] : pods_) {
    if (charge.server != server || !charge.live) continue;
    int64_t connections = charge.connections;
    if (auto it = admitted_.find(charge.pool);
        it != admitted_.end() && it->second.server == server) {
      connections = std::max(connections, it->second.per_pod);
    }
    held[charge.pool] += connections;
  }
  for (const auto& [pool, admitted] : admitted_) {
    if (admitted.server == server) held[pool] = std::max(held[pool], admitted.worst_case);
  }
  return held;
}

budget::Holdings HoldingsIndex::OnServers(const std::set<std::string>& servers) const {
  budget::Holdings holdings;
  for (const auto& server : servers) {
    if (!server.empty()) holdings[server] = OnServer(server);
  }
  return holdings;
}

std::set<std::string> HoldingsIndex::PodAddresses(const std::set<std::string>& servers) const {
  std::set<std::string> addresses;
  std::lock_guard guard(mutex_);
  for (const auto& [key, charge] : pods_) {
    if (!servers.contains(charge.server)) continue;
    const std::string ip = charge.pod->value("/status/podIP"_json_pointer, "");
    if (!ip.empty()) addresses.insert(ip);
  }
  return addresses;
}

std::vector<std::shared_ptr<const json>> HoldingsIndex::PodsOf(const std::string& pool_key) const {
  std::vector<std::shared_ptr<const json>> pods;
  std::lock_guard guard(mutex_);
  ExpireUnconfirmed();
  for (const auto& [key, charge] : pods_) {
    if (charge.pool == pool_key) pods.push_back(charge.pod);
  }
  return pods;
}

}  // namespace poolkeeper::controller
