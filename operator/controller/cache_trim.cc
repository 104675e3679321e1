#include "controller/cache_trim.h"

#include "controller/reconciler.h"
#include "render/render.h"

namespace poolkeeper::controller {

using nlohmann::json;

namespace {

// Moves the listed fields of `from` (when present) into `to`.
void MoveFields(json& from, json& to, std::initializer_list<const char*> fields) {
  for (const char* field : fields) {
    if (auto it = from.find(field); it != from.end()) to[field] = std::move(*it);
  }
}

// Moves the owner references of `from` (metadata) into `to`, each with only `fields`.
void MoveOwners(json& from, json& to, std::initializer_list<const char*> fields) {
  auto refs = from.find("ownerReferences");
  if (refs == from.end() || !refs->is_array()) return;
  json owners = json::array();
  for (json& ref : *refs) {
    if (!ref.is_object()) continue;
    json owner = json::object();
    MoveFields(ref, owner, fields);
    owners.push_back(std::move(owner));
  }
  to["ownerReferences"] = std::move(owners);
}

// What the API server fills in on a Service and render never sets.
constexpr const char* kServiceServerFields[] = {
    "clusterIP",      "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy",
    "sessionAffinity"};

// The object less what the API server adds to an object the operator applied (identity, times,
// defaults, status) and less the applied-hash stamp: what render built, if nobody changed it.
json AppliedContent(const json& object) {
  json content = object;
  content.erase("status");
  json& metadata = content["metadata"];
  for (const char* field : {"uid", "resourceVersion", "creationTimestamp", "generation"}) {
    metadata.erase(field);
  }
  if (auto annotations = metadata.find("annotations"); annotations != metadata.end()) {
    annotations->erase(render::kAppliedHashAnnotation);
    if (annotations->empty()) metadata.erase(annotations);  // render sets none but the stamp
  }
  if (content.value("kind", "") == "Service") {
    if (auto spec = content.find("spec"); spec != content.end() && spec->is_object()) {
      for (const char* field : kServiceServerFields) spec->erase(field);
    }
  }
  return content;
}

}  // namespace

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
  MoveFields(*status, kept, {"phase", "podIP"});
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
  for (const char* field : kServiceServerFields) spec->erase(field);
}

void TrimToOwnership(json& object) {
  json kept = json::object();
  MoveFields(object, kept, {"apiVersion", "kind"});
  auto metadata = object.find("metadata");
  if (metadata != object.end() && metadata->is_object()) {
    json meta = json::object();
    MoveFields(*metadata, meta, {"name", "namespace", "uid", "resourceVersion"});
    MoveOwners(*metadata, meta, {"kind", "name", "uid"});
    kept["metadata"] = std::move(meta);
  }
  object = std::move(kept);
}

bool CompactIfAsApplied(json& object) {
  if (!object.is_object()) return false;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return false;
  const std::string hash = StringAnnotation(object, render::kAppliedHashAnnotation);
  if (hash.empty() || render::AppliedHash(AppliedContent(object)) != hash) return false;
  json meta = json::object();
  MoveFields(*metadata, meta, {"name", "namespace", "uid", "resourceVersion", "annotations"});
  MoveOwners(*metadata, meta, {"apiVersion", "kind", "name", "uid"});  // fan-out, OwnedBy
  auto labels = metadata->find("labels");
  if (labels != metadata->end() && labels->is_object()) {
    json kept = json::object();
    MoveFields(*labels, kept, {render::kPoolLabel});
    if (!kept.empty()) meta["labels"] = std::move(kept);
  }
  json compact = {{kCachedAsApplied, true}, {"metadata", std::move(meta)}};
  MoveFields(object, compact, {"apiVersion", "kind"});
  if (auto data = object.find("data"); data != object.end() && data->is_object()) {
    json kept = json::object();
    MoveFields(*data, kept, {render::kAgentPasswordKey, render::kPausedKey});  // OnlyPausedDiffers
    if (!kept.empty()) compact["data"] = std::move(kept);
  }
  object = std::move(compact);
  return true;
}

bool CachedAsApplied(const json& object) {
  auto it = object.find(kCachedAsApplied);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

void TrimOwned(json& object) {
  DropLastApplied(object);
  if (CompactIfAsApplied(object)) return;
  if (object.value("kind", "") == "Service") TrimService(object);
}

std::function<void(json&)> TrimFor(std::string_view kind) {
  if (kind == "Pod") return TrimPod;
  if (render::FindOwnedKind(kind)) return TrimOwned;
  return DropLastApplied;
}

}  // namespace poolkeeper::controller
