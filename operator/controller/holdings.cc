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

void HoldingsIndex::Index(Pods::iterator pod) {
  const Charge& charge = pod->second;
  pods_by_server_[charge.server].insert(pod);
  pods_by_pool_[charge.pool].insert(pod);
  if (charge.unconfirmed_since) unconfirmed_.emplace(*charge.unconfirmed_since, pod->first);
}

void HoldingsIndex::Unindex(Pods::iterator pod) const {
  const Charge& charge = pod->second;
  auto drop = [&](std::map<std::string, PodSet>& index, const std::string& by) {
    auto it = index.find(by);
    if (it == index.end()) return;
    it->second.erase(pod);
    if (it->second.empty()) index.erase(it);
  };
  drop(pods_by_server_, charge.server);
  drop(pods_by_pool_, charge.pool);
  if (charge.unconfirmed_since) unconfirmed_.erase({*charge.unconfirmed_since, pod->first});
}

void HoldingsIndex::PutPod(const std::string& key, Charge charge) {
  auto [it, inserted] = pods_.try_emplace(key);
  if (!inserted) Unindex(it);
  it->second = std::move(charge);
  Index(it);
}

void HoldingsIndex::ErasePod(Pods::iterator pod) const {
  Unindex(pod);
  pods_.erase(pod);
}

void HoldingsIndex::UpsertPod(std::shared_ptr<const json> pod) {
  const std::string key = kube::ObjectKey(*pod);
  Charge charge = ChargeOf(std::move(pod));
  std::lock_guard guard(mutex_);
  PutPod(key, std::move(charge));
}

void HoldingsIndex::UpsertCreatedPod(std::shared_ptr<const json> pod) {
  const std::string key = kube::ObjectKey(*pod);
  Charge charge = ChargeOf(std::move(pod));
  charge.unconfirmed_since = clock_.Now();
  std::lock_guard guard(mutex_);
  if (!pods_.contains(key)) PutPod(key, std::move(charge));  // the informer was quicker
}

void HoldingsIndex::ExpireUnconfirmed() const {
  const Clock::TimePoint now = clock_.Now();
  while (!unconfirmed_.empty() && now - unconfirmed_.begin()->first > kUnconfirmedFor) {
    ErasePod(pods_.find(unconfirmed_.begin()->second));
  }
}

void HoldingsIndex::RemovePod(const json& pod) {
  std::lock_guard guard(mutex_);
  if (auto it = pods_.find(kube::ObjectKey(pod)); it != pods_.end()) ErasePod(it);
}

void HoldingsIndex::PutAdmitted(const std::string& pool, std::optional<Admitted> admitted) {
  if (auto it = admitted_.find(pool); it != admitted_.end()) {
    auto on_server = admitted_by_server_.find(it->second.server);
    on_server->second.erase(pool);
    if (on_server->second.empty()) admitted_by_server_.erase(on_server);
    admitted_.erase(it);
  }
  if (!admitted) return;
  admitted_by_server_[admitted->server].insert(pool);
  admitted_.emplace(pool, std::move(*admitted));
}

void HoldingsIndex::UpsertAdmitted(const json& config_map) {
  auto planned = PlannedConnections(config_map);
  // An orphaned ConfigMap (delete --cascade=orphan) admits nothing: only pods hold connections.
  bool owned = false;
  for (const auto& ref :
       config_map.value("/metadata/ownerReferences"_json_pointer, json::array())) {
    owned = owned || ref.value("kind", "") == "ConnectionPool";
  }
  std::optional<Admitted> admitted;
  if (planned && owned) {
    admitted = Admitted{ServerOf(config_map), *planned,
                        IntAnnotation(config_map, render::kPodConnectionsAnnotation).value_or(0)};
  }
  std::lock_guard guard(mutex_);
  PutAdmitted(PoolOf(config_map), std::move(admitted));
}

void HoldingsIndex::RemoveAdmitted(const json& config_map) {
  std::lock_guard guard(mutex_);
  PutAdmitted(PoolOf(config_map), std::nullopt);
}

std::map<std::string, int64_t> HoldingsIndex::OnServer(const std::string& server) const {
  std::map<std::string, int64_t> held;
  std::lock_guard guard(mutex_);
  ExpireUnconfirmed();
  if (auto pods = pods_by_server_.find(server); pods != pods_by_server_.end()) {
    for (const auto& pod : pods->second) {
      const Charge& charge = pod->second;
      if (!charge.live) continue;
      int64_t connections = charge.connections;
      if (auto it = admitted_.find(charge.pool);
          it != admitted_.end() && it->second.server == server) {
        connections = std::max(connections, it->second.per_pod);
      }
      held[charge.pool] += connections;
    }
  }
  if (auto pools = admitted_by_server_.find(server); pools != admitted_by_server_.end()) {
    for (const auto& pool : pools->second) {
      held[pool] = std::max(held[pool], admitted_.at(pool).worst_case);
    }
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
  for (const auto& server : servers) {
    auto pods = pods_by_server_.find(server);
    if (pods == pods_by_server_.end()) continue;
    for (const auto& pod : pods->second) {
      const std::string ip = pod->second.pod->value("/status/podIP"_json_pointer, "");
      if (!ip.empty()) addresses.insert(ip);
    }
  }
  return addresses;
}

std::vector<std::shared_ptr<const json>> HoldingsIndex::PodsOf(const std::string& pool_key) const {
  std::vector<std::shared_ptr<const json>> pods;
  std::lock_guard guard(mutex_);
  ExpireUnconfirmed();
  if (auto of_pool = pods_by_pool_.find(pool_key); of_pool != pods_by_pool_.end()) {
    for (const auto& pod : of_pool->second) pods.push_back(pod->second.pod);
  }
  return pods;
}

}  // namespace poolkeeper::controller
