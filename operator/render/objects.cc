// The Kubernetes objects the operator owns for one pool, as JSON: ConfigMap (pgbouncer.ini),
// Secret (userlist), Deployment (deployment.cc), Service and, with more than one instance, a
// PodDisruptionBudget. nlohmann::json objects keep their keys sorted and nothing null is added, so
// the output is stable byte for byte.
#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace internal {

using nlohmann::json;

json Labels(const api::ConnectionPool& pool) {
  return {
      {"app.kubernetes.io/name", "pgbouncer"},
      {"app.kubernetes.io/instance", pool.metadata.name},
      {"app.kubernetes.io/component", "pooler"},
      {"app.kubernetes.io/part-of", "poolkeeper"},
      {"app.kubernetes.io/managed-by", "poolkeeper"},
      {"poolkeeper.io/pool", pool.metadata.name},
  };
}

json SelectorLabels(const api::ConnectionPool& pool) {
  return {{"app.kubernetes.io/name", "pgbouncer"}, {"poolkeeper.io/pool", pool.metadata.name}};
}

json Metadata(const api::ConnectionPool& pool, const std::string& name) {
  json metadata = {
      {"name", name},
      {"namespace", pool.metadata.namespace_},
      {"labels", Labels(pool)},
  };
  // Offline (`poolkeeper render`) the pool has no uid yet; an owner reference without one would
  // be rejected by the API server.
  if (!pool.metadata.uid.empty()) {
    metadata["ownerReferences"] = json::array({{
        {"apiVersion", api::kApiVersion},
        {"kind", api::kKind},
        {"name", pool.metadata.name},
        {"uid", pool.metadata.uid},
        {"controller", true},
        {"blockOwnerDeletion", true},
    }});
  }
  return metadata;
}

}  // namespace internal

namespace {

using internal::Metadata;
using internal::SelectorLabels;
using nlohmann::json;

json ConfigMap(const api::ConnectionPool& pool, const std::string& ini) {
  return {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata", Metadata(pool, pool.metadata.name + "-config")},
      {"data", {{kIniFile, ini}}},
  };
}

json Secret(const api::ConnectionPool& pool, const std::string& userlist) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata", Metadata(pool, pool.metadata.name + "-auth")},
      {"type", "Opaque"},
      {"data", {{kUserlistFile, internal::Base64(userlist)}}},
  };
}

json Service(const api::ConnectionPool& pool) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", Metadata(pool, pool.metadata.name)},
      {"spec",
       {
           {"type", "ClusterIP"},
           {"selector", SelectorLabels(pool)},
           {"ports", json::array({{
                         {"name", "pgbouncer"},
                         {"port", pool.spec.pooler.port},
                         {"targetPort", "pgbouncer"},
                         {"protocol", "TCP"},
                     }})},
       }},
  };
}

// With one instance a PDB would either block node drains forever (maxUnavailable 0) or protect
// nothing; from two on, voluntary disruptions take one pooler at a time.
json PodDisruptionBudget(const api::ConnectionPool& pool) {
  if (pool.spec.pooler.instances <= 1) return nullptr;
  return {
      {"apiVersion", "policy/v1"},
      {"kind", "PodDisruptionBudget"},
      {"metadata", Metadata(pool, pool.metadata.name)},
      {"spec",
       {
           {"maxUnavailable", 1},
           {"selector", {{"matchLabels", SelectorLabels(pool)}}},
       }},
  };
}

}  // namespace

Result<OwnedObjects> BuildObjects(const api::ConnectionPool& pool, const budget::PoolPlan& plan,
                                  const Passwords& passwords,
                                  const std::string& credentials_revision) {
  auto userlist = RenderUserlist(pool, passwords);
  if (!userlist) return std::unexpected(userlist.error());
  std::string ini = RenderIni(pool, plan);
  OwnedObjects objects;
  objects.config_hash = ConfigHash(ini, credentials_revision);
  objects.config_map = ConfigMap(pool, ini);
  objects.secret = Secret(pool, *userlist);
  objects.deployment = internal::BuildDeployment(pool, objects.config_hash);
  // The ledger keeps charging this figure while a later spec of the pool is refused (its pods keep
  // running this configuration), read back from the Deployment in the operator's cache.
  objects.deployment["metadata"]["annotations"][kPlannedConnectionsAnnotation] =
      std::to_string(plan.worst_case);
  objects.service = Service(pool);
  objects.pod_disruption_budget = PodDisruptionBudget(pool);
  return objects;
}

}  // namespace poolkeeper::render
