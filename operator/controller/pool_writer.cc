#include "controller/pool_writer.h"

#include <algorithm>

#include "controller/parallel.h"
#include "controller/resources.h"
#include "render/render.h"

namespace poolkeeper::controller {

using nlohmann::json;

kube::ResourceType ResourceTypeOf(const render::OwnedKind& kind) {
  return {kind.group, kind.version, kind.plural, kind.kind, true};
}

std::string PoolUid(const json& pool) { return pool.value("/metadata/uid"_json_pointer, ""); }

bool OwnedBy(const json& object, const std::string& uid) {
  for (const auto& ref : object.value("/metadata/ownerReferences"_json_pointer, json::array())) {
    if (ref.value("uid", "") == uid) return true;
  }
  return false;
}

std::string DescribeForeign(std::string_view kind, const json& object) {
  std::string owners;
  for (const auto& ref : object.value("/metadata/ownerReferences"_json_pointer, json::array())) {
    owners += (owners.empty() ? "" : ", ") + ref.value("kind", "") + " " + ref.value("name", "");
  }
  return std::string(kind) + " " + object.value("/metadata/namespace"_json_pointer, "") + "/" +
         object.value("/metadata/name"_json_pointer, "") +
         " exists and is not owned by this ConnectionPool (" +
         (owners.empty() ? "no owner" : "owned by " + owners) + ")";
}

Result<bool> PoolWriter::CheckNamesFree(PoolInputs& in, const ReconcileResult& result) {
  const std::string uid = PoolUid(in.pool);
  struct Lookup {
    std::string kind;
    const json* desired;
    Result<json> stored = json();
  };
  std::vector<Lookup> lookups;
  bool changed = false;
  for (const json& desired : result.apply) {
    const std::string kind = desired.value("kind", "");
    const render::OwnedKind* owned = render::FindOwnedKind(kind);
    if (!owned || in.owned.contains(kind) || in.conflicts.contains(kind)) continue;
    if (options_.foreign) {
      const json& metadata = desired["metadata"];
      const std::string ns = metadata.value("namespace", "");
      const std::string name = metadata.value("name", "");
      switch (options_.foreign->Lookup(kind, ns, name)) {
        case NameState::kFree:
          continue;
        case NameState::kTaken:
          // One that names this pool as its owner lost its label: the GET brings it whole.
          if (auto holder = options_.foreign->Find(kind, ns, name);
              holder && !OwnedBy(*holder, uid)) {
            in.conflicts[kind] = DescribeForeign(kind, *holder);
            changed = true;
            continue;
          }
          break;
        case NameState::kUnknown:
          break;
      }
    }
    lookups.push_back({kind, &desired});
  }
  // The GETs at once; what they found is merged below, in order, on this thread.
  std::vector<std::function<Status()>> gets;
  for (Lookup& lookup : lookups) {
    gets.emplace_back([this, &lookup]() -> Status {
      const json& metadata = (*lookup.desired)["metadata"];
      lookup.stored = client_.Get(ResourceTypeOf(*render::FindOwnedKind(lookup.kind)),
                                  metadata.value("namespace", ""), metadata.value("name", ""));
      return {};
    });
  }
  (void)RunBounded(gets, options_.parallel, options_.helpers);
  for (Lookup& lookup : lookups) {
    if (!lookup.stored) {
      if (lookup.stored.error().code == ErrorCode::kNotFound) continue;
      return std::unexpected(lookup.stored.error());
    }
    changed = true;
    if (OwnedBy(*lookup.stored, uid)) {
      in.owned[lookup.kind] = std::move(*lookup.stored);
    } else {
      in.conflicts[lookup.kind] = DescribeForeign(lookup.kind, *lookup.stored);
    }
  }
  return changed;
}

Status PoolWriter::WriteFinalizer(const json& pool, FinalizerChange change) {
  json finalizers = json::array();
  for (const auto& f : pool.value("/metadata/finalizers"_json_pointer, json::array())) {
    if (f != kFinalizer) finalizers.push_back(f);
  }
  if (change == FinalizerChange::kAdd) finalizers.push_back(kFinalizer);
  // The resourceVersion makes the merge patch conditional: the list is replaced whole, so it must
  // be the list we read.
  json patch = {{"metadata",
                 {{"finalizers", finalizers},
                  {"resourceVersion", pool.value("/metadata/resourceVersion"_json_pointer, "")}}}};
  auto patched = client_.MergePatch(
      kConnectionPoolType, pool.value("/metadata/namespace"_json_pointer, ""),
      pool.value("/metadata/name"_json_pointer, ""), patch, "", kube::Reply::kStatusOnly);
  // A pool gone before its finalizer was added gets no pod: the failure ends the pass (the next
  // finds the pool gone). Gone before its finalizer was removed is what the removal was for.
  if (!patched &&
      (change == FinalizerChange::kAdd || patched.error().code != ErrorCode::kNotFound)) {
    return std::unexpected(patched.error());
  }
  return {};
}

bool NeedsBudgetLock(const PoolInputs& in, const ReconcileResult& result) {
  if (!result.create_pods.empty() || !result.pod_figures.empty()) return true;
  if (in.pods.empty()) return false;
  return std::ranges::any_of(result.apply,
                             [](const json& o) { return o.value("kind", "") == "ConfigMap"; });
}

Status PoolWriter::Write(const PoolInputs& in, const ReconcileResult& result) {
  if (auto written = WriteObjects(in, result); !written) return written;
  return WriteStatus(in, result);
}

Status PoolWriter::WriteObjects(const PoolInputs& in, const ReconcileResult& result) {
  const std::string ns = in.pool.value("/metadata/namespace"_json_pointer, "");
  const std::string name = in.pool.value("/metadata/name"_json_pointer, "");
  // The owned objects at once, and all of them before any pod: the ConfigMap carries what the
  // pods are admitted with, and a pod mounts the ConfigMap and the Secret. The ConfigMap goes last,
  // after the rest: its config-hash is what a pod's agent reports loaded once it has RELOADed, so
  // a kubelet that refreshes the pod's volumes between two writes must not see the new hash beside
  // the old userlist (the agent would confirm a password rotation PgBouncer never read). With no
  // pod (a new pool, or one at 0 instances) nothing mounts either yet: all go at once, one round
  // trip fewer before the pool's first status.
  const bool mounted = !in.pods.empty();
  std::vector<std::function<Status()>> writes;
  // The finalizer holds a deletion until the pods are gone: it must be in place before any pod is
  // made, not before the owned objects (the garbage collector removes those by their owner), so it
  // goes with them. It is removed only when nothing is left.
  if (result.finalizer == FinalizerChange::kAdd) {
    writes.emplace_back([this, &in] { return WriteFinalizer(in.pool, FinalizerChange::kAdd); });
  }
  const json* config_map = nullptr;
  for (const json& desired : result.apply) {
    const render::OwnedKind* kind = render::FindOwnedKind(desired.value("kind", ""));
    if (!kind) return Fail(ErrorCode::kInternal, "no resource type for " + desired.dump());
    if (kind->kind == "ConfigMap" && mounted) {
      config_map = &desired;
      continue;
    }
    writes.emplace_back([this, kind, &desired]() -> Status {
      auto applied = client_.Apply(ResourceTypeOf(*kind), desired, kube::Reply::kStatusOnly);
      if (!applied) return std::unexpected(applied.error());
      return {};
    });
  }
  for (const auto& kind_name : result.delete_kinds) {
    const render::OwnedKind* kind = render::FindOwnedKind(kind_name);
    const std::string uid = in.owned.at(kind_name).value("/metadata/uid"_json_pointer, "");
    writes.emplace_back([this, kind, uid, &ns, &name]() -> Status {
      auto deleted = client_.Delete(ResourceTypeOf(*kind), ns, name + std::string(kind->suffix),
                                    {.precondition_uid = uid});
      if (!deleted && deleted.error().code != ErrorCode::kNotFound) {
        return std::unexpected(deleted.error());
      }
      return {};
    });
  }
  if (auto written = RunBounded(writes, options_.parallel, options_.helpers); !written)
    return written;
  if (config_map) {
    if (auto applied =
            client_.Apply(kube::resources::kConfigMap, *config_map, kube::Reply::kStatusOnly);
        !applied)
      return std::unexpected(applied.error());
  }
  for (const auto& pod : result.delete_pods) {
    auto deleted = client_.Delete(
        kube::resources::kPod, ns, pod.name,
        {.precondition_uid = pod.uid, .precondition_resource_version = pod.resource_version});
    if (!deleted && deleted.error().code != ErrorCode::kNotFound) {
      return std::unexpected(deleted.error());
    }
  }
  // A pod's figure follows its agent's report; the uid in the patch makes it fail rather than
  // touch a pod of the same name made since.
  for (const auto& figure : result.pod_figures) {
    auto patched = client_.MergePatch(
        kube::resources::kPod, ns, figure.name,
        {{"metadata",
          {{"uid", figure.uid},
           {"annotations",
            {{render::kPodConnectionsAnnotation, std::to_string(figure.connections)}}}}}},
        "", kube::Reply::kStatusOnly);
    if (!patched && patched.error().code != ErrorCode::kNotFound) {
      return std::unexpected(patched.error());
    }
  }
  for (const json& pod : result.create_pods) {
    auto created = client_.Create(kube::resources::kPod, pod);
    if (!created) return std::unexpected(created.error());
    holdings_.UpsertCreatedPod(std::make_shared<const json>(std::move(*created)));
  }
  return {};
}

Status PoolWriter::WriteStatus(const PoolInputs& in, const ReconcileResult& result) {
  const std::string ns = in.pool.value("/metadata/namespace"_json_pointer, "");
  const std::string name = in.pool.value("/metadata/name"_json_pointer, "");
  if (result.status) {
    auto patched = client_.MergePatch(kConnectionPoolType, ns, name, {{"status", *result.status}},
                                      "status", kube::Reply::kStatusOnly);
    if (!patched && patched.error().code != ErrorCode::kNotFound) {
      return std::unexpected(patched.error());
    }
  }
  if (result.finalizer == FinalizerChange::kRemove) {
    if (auto written = WriteFinalizer(in.pool, result.finalizer); !written) return written;
  }
  return {};
}

}  // namespace poolkeeper::controller
