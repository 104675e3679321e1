// The Kubernetes objects the operator owns for one pool, as JSON: ConfigMap (pgbouncer.ini),
// Secret (userlist), Service, with more than one instance a PodDisruptionBudget, and the template
// of its pods (pod.cc). nlohmann::json objects keep their keys sorted and nothing null is added, so
// the output is stable byte for byte.
#include "api/postgres_server.h"
#include "common/base64.h"
#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace internal {

using nlohmann::json;

json Labels(const api::ConnectionPool& pool) {
  return {
      {"app.kubernetes.io/name", "pgbouncer"},   {"app.kubernetes.io/instance", pool.metadata.name},
      {"app.kubernetes.io/component", "pooler"}, {"app.kubernetes.io/part-of", "poolkeeper"},
      {kManagedByLabel, kManagedByValue},        {kPoolLabel, pool.metadata.name},
  };
}

json SelectorLabels(const api::ConnectionPool& pool) {
  return {{"app.kubernetes.io/name", "pgbouncer"}, {kPoolLabel, pool.metadata.name}};
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
      {"data", {{kUserlistFile, EncodeBase64(userlist)}}},
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

// With one instance a PDB would either block node drains forever or protect nothing; from two on,
// voluntary disruptions take one pooler at a time. minAvailable, not maxUnavailable: the pods'
// controller is the ConnectionPool, and an integer minAvailable needs no scale lookup.
json PodDisruptionBudget(const api::ConnectionPool& pool) {
  if (pool.spec.pooler.instances <= 1) return nullptr;
  return {
      {"apiVersion", "policy/v1"},
      {"kind", "PodDisruptionBudget"},
      {"metadata", Metadata(pool, pool.metadata.name)},
      {"spec",
       {
           {"minAvailable", pool.spec.pooler.instances - 1},
           {"selector", {{"matchLabels", SelectorLabels(pool)}}},
       }},
  };
}

}  // namespace

Result<OwnedObjects> BuildObjects(const api::ConnectionPool& pool, const budget::PoolPlan& plan,
                                  const Passwords& passwords,
                                  const std::string& credentials_revision,
                                  const std::string& server_ca,
                                  const std::string& restart_revision) {
  auto userlist = RenderUserlist(pool, passwords);
  if (!userlist) return std::unexpected(userlist.error());
  const bool copies_ca = pool.spec.tls.server && pool.spec.tls.server->ca_from_server;
  if (copies_ca && server_ca.empty()) {
    return FieldFail(ErrorCode::kNotFound, "spec.tls.server.caRef",
                     "no CA certificate from the pool's PostgresServer to verify it with");
  }
  std::string ini = RenderIni(pool, plan);
  OwnedObjects objects;
  objects.pod_template = internal::BuildPodTemplate(pool);
  objects.config_hash =
      ConfigHash(ini, objects.pod_template["spec"],
                 copies_ca ? credentials_revision + ",server-ca=" + Sha256Hex(server_ca)
                           : credentials_revision);
  objects.config_map = ConfigMap(pool, ini);
  if (copies_ca) objects.config_map["data"][api::kServerCaKey] = server_ca;
  objects.secret = Secret(pool, *userlist);
  if (!pool.spec.pooler.agent_image.empty()) {
    // The agent reports this hash once PgBouncer runs what it names (a RELOAD, no restart).
    objects.config_map["data"][kConfigHashKey] = objects.config_hash;
    // The agent PAUSEs or RESUMEs on a change of this key alone. It is in neither hash: pausing
    // rolls no pod, and the configuration the agents report loaded stays the same.
    objects.config_map["data"][kPausedKey] = pool.spec.paused ? "true" : "false";
    // RenderUserlist has checked that the password is there.
    objects.secret["data"][kAgentPasswordKey] = EncodeBase64(passwords.at(api::kAgentUser));
  }
  // The ledger keeps charging the admitted figure while a later spec of the pool is refused, read
  // back from the ConfigMap in the operator's cache; and each pod, draining or not, is charged what
  // its own configuration can open on its own server.
  const std::string endpoint = api::EndpointKey(pool.spec.server.host, pool.spec.server.port);
  json& annotations = objects.config_map["metadata"]["annotations"];
  annotations[kPlannedConnectionsAnnotation] = std::to_string(plan.worst_case);
  annotations[kServerAnnotation] = endpoint;
  annotations[kPodConnectionsAnnotation] = std::to_string(plan.per_instance);
  annotations[kInstancesAnnotation] = std::to_string(pool.spec.pooler.instances);
  annotations[kMaxSurgeAnnotation] = std::to_string(pool.spec.pooler.max_surge);
  objects.pod_hash = objects.config_hash;
  if (!pool.spec.pooler.agent_image.empty()) {
    objects.pod_hash = RestartHash(
        ini, pool.spec.pooler.pgbouncer_version, objects.pod_template["spec"],
        copies_ca ? restart_revision + ",server-ca=" + Sha256Hex(server_ca) : restart_revision);
  }
  if (objects.pod_hash != objects.config_hash) annotations[kPodHashAnnotation] = objects.pod_hash;
  json& pod_annotations = objects.pod_template["metadata"]["annotations"];
  pod_annotations[kConfigHashAnnotation] = objects.pod_hash;
  pod_annotations[kServerAnnotation] = endpoint;
  pod_annotations[kPodConnectionsAnnotation] = std::to_string(plan.per_instance);
  objects.service = Service(pool);
  objects.pod_disruption_budget = PodDisruptionBudget(pool);
  return objects;
}

std::string PodName(const std::string& pool_name, int slot) {
  return pool_name + "-" + std::to_string(slot);
}

json PodInSlot(const json& pod_template, const std::string& pool_name, int slot) {
  json pod = pod_template;
  pod["metadata"]["name"] = PodName(pool_name, slot);
  return pod;
}

const OwnedKind* FindOwnedKind(std::string_view kind) {
  for (const auto& owned : kOwnedKinds) {
    if (owned.kind == kind) return &owned;
  }
  return nullptr;
}

}  // namespace poolkeeper::render
