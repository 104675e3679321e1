#include "controller/cache_trim.h"

namespace poolkeeper::controller {

using nlohmann::json;

void DropLastApplied(json& object) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return;
  auto annotations = metadata->find("annotations");
  if (annotations == metadata->end() || !annotations->is_object()) return;
  annotations->erase("kubectl.kubernetes.io/last-applied-configuration");
}

void TrimPod(json& pod) {
  DropLastApplied(pod);
  auto status = pod.find("status");
  if (status == pod.end() || !status->is_object()) return;
  json kept = json::object();
  for (const char* field : {"phase", "podIP"}) {
    if (auto it = status->find(field); it != status->end()) kept[field] = std::move(*it);
  }
  if (auto conditions = status->find("conditions");
      conditions != status->end() && conditions->is_array()) {
    for (const json& condition : *conditions) {
      if (condition.is_object() && condition.value("type", "") == "Ready") {
        kept["conditions"] = json::array(
            {{{"type", "Ready"}, {"status", condition.value("status", json("Unknown"))}}});
      }
    }
  }
  *status = std::move(kept);
}

void TrimService(json& service) {
  DropLastApplied(service);
  service.erase("status");
  auto spec = service.find("spec");
  if (spec == service.end() || !spec->is_object()) return;
  for (const char* field : {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                            "internalTrafficPolicy", "sessionAffinity"}) {
    spec->erase(field);
  }
}

void TrimToOwnership(json& object) {
  json kept = json::object();
  for (const char* field : {"apiVersion", "kind"}) {
    if (auto it = object.find(field); it != object.end()) kept[field] = std::move(*it);
  }
  auto metadata = object.find("metadata");
  if (metadata != object.end() && metadata->is_object()) {
    json meta = json::object();
    for (const char* field : {"name", "namespace", "uid", "resourceVersion"}) {
      if (auto it = metadata->find(field); it != metadata->end()) meta[field] = std::move(*it);
    }
    if (auto refs = metadata->find("ownerReferences");
        refs != metadata->end() && refs->is_array()) {
      json owners = json::array();
      for (json& ref : *refs) {
        if (!ref.is_object()) continue;
        json owner = json::object();
        for (const char* field : {"kind", "name", "uid"}) {
          if (auto it = ref.find(field); it != ref.end()) owner[field] = std::move(*it);
        }
        owners.push_back(std::move(owner));
      }
      meta["ownerReferences"] = std::move(owners);
    }
    kept["metadata"] = std::move(meta);
  }
  object = std::move(kept);
}

std::function<void(json&)> TrimFor(std::string_view kind) {
  if (kind == "Pod") return TrimPod;
  if (kind == "Service") return TrimService;
  return DropLastApplied;
}

}  // namespace poolkeeper::controller
