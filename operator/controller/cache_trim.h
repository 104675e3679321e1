// What the operator's caches keep of each kind they watch (kube::InformerOptions::trim): the fields
// the reconciler, the fan-out and the holdings read, not whole objects. Decided here, beside the
// readers, because it is product knowledge: kube only runs the function at decode time.
//
//   every kind      drops kubectl's last-applied-configuration annotation (a copy of the object as
//                   kubectl last applied it; nothing reads it)
//   Pod             status keeps phase (finished pods), podIP (holdings) and the Ready condition's
//                   type and status (pods.cc); containerStatuses, hostIPs, podIPs, qosClass,
//                   startTime and the other conditions go. The spec stays: a sibling's is copied
//                   when a last good configuration keeps running (reconciler.cc).
//   owned kinds     (ConfigMap, Secret, Service, PodDisruptionBudget) when the object is exactly
//                   what the operator applied: its content, less what the API server adds, hashes
//                   to its applied-hash annotation (CompactIfAsApplied). Then the comparison the
//                   reconciler makes (the hash, and Contains of what it would apply) is already
//                   decided, and the cache keeps only what is read besides it: name, namespace,
//                   uid, resourceVersion, owners (apiVersion, kind, name, uid), annotations
//                   (holdings, the last admitted size), the pool label, a Secret's agent password,
//                   a ConfigMap's `paused` (pause.h), and a mark (kCachedAsApplied). An object
//                   someone changed (a label added, data edited) is kept whole, so Contains judges
//                   it as before.
//   Service         (not as applied) status, and the spec fields the API server fills in and
//                   render never sets (clusterIP(s), ipFamilies, ipFamilyPolicy,
//                   internalTrafficPolicy, sessionAffinity).
//   foreign names   objects of the owned kinds poolkeeper does not manage (foreign_names.h):
//                   metadata's name, namespace, uid, resourceVersion and each ownerReference's
//                   kind, name and uid; nothing else (TrimToOwnership).
//   others          ConnectionPool and PostgresServer status is read (reconciler, metrics).
//
// tests/unit/controller/cache_trim_test.cc checks that the steady state writes nothing over trimmed
// caches and that a changed object is kept whole; bench/cache_bytes prints the heap bytes per
// cached object of each kind.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string_view>

namespace poolkeeper::controller {

void DropLastApplied(nlohmann::json& object);
void TrimPod(nlohmann::json& pod);
void TrimService(nlohmann::json& service);

// Marks an owned object the cache keeps compact because it held exactly what was applied.
inline constexpr char kCachedAsApplied[] = "poolkeeper.io/cached-as-applied";
// Replaces an owned object that is exactly what the operator applied (see above) by its compact
// form; false (the object untouched) otherwise.
bool CompactIfAsApplied(nlohmann::json& object);
bool CachedAsApplied(const nlohmann::json& object);
// An owned kind's trim: DropLastApplied, then CompactIfAsApplied, else TrimService for Services.
void TrimOwned(nlohmann::json& object);
// Everything but what says who holds a name (foreign_names.h).
void TrimToOwnership(nlohmann::json& object);

// The trim of a cache of `kind` ("Pod", "Service", "ConnectionPool", ...); every kind gets at
// least DropLastApplied.
std::function<void(nlohmann::json&)> TrimFor(std::string_view kind);

}  // namespace poolkeeper::controller
