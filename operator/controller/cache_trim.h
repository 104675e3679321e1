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
//   Service         status, and the spec fields the API server fills in and render never sets
//                   (clusterIP(s), ipFamilies, ipFamilyPolicy, internalTrafficPolicy,
//                   sessionAffinity): drift is judged only on fields render sets (Contains).
//   foreign names   objects of the owned kinds poolkeeper does not manage (foreign_names.h):
//                   metadata's name, namespace, uid, resourceVersion and each ownerReference's
//                   kind, name and uid; nothing else (TrimToOwnership).
//   others          ConnectionPool and PostgresServer status is read (reconciler, metrics);
//                   ConfigMap and Secret data is what Contains compares: kept (digests of it
//                   were measured: 5.8 -> 5.5 KiB heap per ConfigMap, no gain per Secret).
//
// tests/unit/controller/cache_trim_test.cc checks that no field render sets is ever dropped (else
// every resync would apply again) and prints the bytes per cached object before and after.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string_view>

namespace poolkeeper::controller {

void DropLastApplied(nlohmann::json& object);
void TrimPod(nlohmann::json& pod);
void TrimService(nlohmann::json& service);
// Everything but what says who holds a name (foreign_names.h).
void TrimToOwnership(nlohmann::json& object);

// The trim of a cache of `kind` ("Pod", "Service", "ConnectionPool", ...); every kind gets at
// least DropLastApplied.
std::function<void(nlohmann::json&)> TrimFor(std::string_view kind);

}  // namespace poolkeeper::controller
