// The Manager's read-only answers from its caches, for the admission webhook and the metrics:
// no writes, no waiting, safe from any thread.
#include "api/postgres_server.h"
#include "controller/admission.h"
#include "controller/manager.h"
#include "controller/object_key.h"
#include "controller/server_status.h"

namespace poolkeeper::controller {

using nlohmann::json;

std::optional<std::string> Manager::Admit(const json& pool) const {
  // The policy needs no cache: refused whether or not the caches are synced.
  if (!Synced()) return PolicyDenial(pool, options_.defaults, options_.policy);
  auto directory = registry_.Directory();
  return AdmitPool(
      pool, options_.defaults, options_.policy, *directory,
      [&](const api::ConnectionPool& candidate) {
        const std::string key = ObjectKey(candidate.metadata.namespace_, candidate.metadata.name);
        const std::set<std::string> references =
            directory->SharingBudgetWith(budget::ServerDirectory::ReferenceKey(candidate));
        AdmissionInputs in;
        for (auto& other : index_.OnServers(references)) {
          if (ObjectKey(other->metadata.namespace_, other->metadata.name) != key) {
            in.others.push_back(std::move(other));
          }
        }
        in.directory = directory.get();
        in.holdings = holdings_.OnServers(references);
        return in;
      });
}

std::vector<PoolBudgetFigures> Manager::Budgets() const {
  std::vector<PoolBudgetFigures> figures;
  pools_->ForEach([&figures](const json& object) {
    const json budget = object.value("/status/budget"_json_pointer, json::object());
    if (budget.empty()) return;
    figures.push_back({object.value("/metadata/namespace"_json_pointer, ""),
                       object.value("/metadata/name"_json_pointer, ""),
                       budget.value("usable", int64_t{0}), budget.value("allocated", int64_t{0}),
                       budget.value("headroom", int64_t{0})});
  });
  return figures;
}

std::vector<ServerFigures> Manager::Servers() const {
  std::vector<ServerFigures> figures;
  const int64_t now = UnixNow();
  for (const auto& object : servers_->List()) {
    const json status = object->value("status", json::object());
    const json budget = status.value("budget", json::object());
    const json observed = status.value("observed", json::object());
    ServerFigures f{object->value("/metadata/name"_json_pointer, ""),
                    budget.value("maxConnections", int64_t{0}),
                    observed.value("inUseByOthers", int64_t{0}),
                    budget.value("usable", int64_t{0}),
                    budget.value("allocated", int64_t{0}),
                    budget.value("headroom", int64_t{0}),
                    false,
                    std::nullopt};
    for (const auto& c : status.value("conditions", json::array())) {
      if (c.value("type", "") == kConditionReachable) f.reachable = c.value("status", "") == "True";
    }
    if (auto at = ParseRfc3339(observed.value("time", ""))) f.observation_age_seconds = now - *at;
    figures.push_back(std::move(f));
  }
  return figures;
}

uint64_t Manager::Relists() const {
  uint64_t relists = 0;
  auto count = [&relists](const kube::Informer& informer) {
    if (informer.Relists() > 1) relists += informer.Relists() - 1;
  };
  for (const auto& informer : pools_->informers()) count(*informer);
  for (const auto& [kind, group] : owned_) {
    for (const auto& informer : group->informers()) count(*informer);
  }
  for (const auto& informer : pods_->informers()) count(*informer);
  count(*servers_);
  return relists + secrets_.Relists() +
         config_maps_.Relists();  // one informer per namespace, whatever the pools
}

QueueFigures Manager::Queue() const { return {queue_.Depth(), adds_.load(), retries_.load()}; }

}  // namespace poolkeeper::controller
