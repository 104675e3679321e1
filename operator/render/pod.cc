// The pooler pods: pgbouncer as non-root on a read-only root filesystem, reading its config from a
// ConfigMap and a Secret mounted as directories (never subPath, so updates reach running pods),
// draining clients on stop in the way the image's pgbouncer version understands. The operator
// creates each pod itself (controller/pods.h), in a named slot, only when its connections fit.
#include <algorithm>
#include <cstdlib>

#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace internal {

using nlohmann::json;

bool SigtermDrains(api::PgBouncerVersion version) {
  return version >= api::PgBouncerVersion{1, 23};
}

// The grace period is how long a stopping pod may drain before SIGKILL. Rule:
//   10 s + the longest bound poolkeeper knows a transaction has (query_timeout,
//   idle_transaction_timeout, and transaction_timeout when set as a parameter), when any is set;
//   60 s when none is (Kubernetes' default 30 s is short for a pooler in front of real work);
//   never more than an hour, whatever the timeouts say.
int TerminationGracePeriodSeconds(const api::ConnectionPool& pool) {
  constexpr int kSlack = 10;
  constexpr int kDefault = 60;
  constexpr int kMax = 3600;
  const auto& pooler = pool.spec.pooler;
  int longest = 0;
  for (const auto& timeout :
       {pooler.timeouts.query_timeout, pooler.timeouts.idle_transaction_timeout}) {
    if (timeout && *timeout > 0) longest = std::max(longest, *timeout);
  }
  if (auto it = pooler.parameters.find("transaction_timeout"); it != pooler.parameters.end()) {
    // Validated as a decimal integer of at most 2^31 - 1.
    long long value = std::atoll(it->second.c_str());
    if (value > 0) longest = std::max(longest, static_cast<int>(std::min<long long>(value, kMax)));
  }
  if (longest == 0) return kDefault;
  return std::min(kSlack + longest, kMax);
}

namespace {

// The probes, a TCP connect to pgbouncer's port (it listens once it has read its config):
// - readiness every second, 5 failures: the kubelet runs it at container start and again when the
//   pod's status syncs, so a pod is Ready about when pgbouncer listens; every second bounds the
//   case where the first try came too early (a 5 s period made that case 5 s late). A pooler that
//   stops answering leaves its Service after ~5 s.
// - liveness every 10 s, 6 failures: a restart drops every client, so only after a minute of
//   silence, which also covers a slow start. No startup probe: it holds readiness back until it
//   succeeds, and at its 1 s minimum period that added a second to every start (bench/ready.sh).
json TcpProbe(int period_seconds, int failure_threshold) {
  return {
      {"tcpSocket", {{"port", "pgbouncer"}}},
      {"periodSeconds", period_seconds},
      {"failureThreshold", failure_threshold},
  };
}

json Resources(const api::PoolerSpec& pooler) {
  if (pooler.resources.is_object() && !pooler.resources.empty()) return pooler.resources;
  return {
      {"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}},
      {"limits", {{"memory", "256Mi"}}},
  };
}

// spec.tls volumes: only the keys pgbouncer reads, each projected to its fixed name (ini.cc
// points at them). The key is 0440 like the userlist: the owner and fsGroup 70 (the uid pgbouncer
// runs as) read it, nobody else. A missing key would keep the pod from starting; the operator
// checks the keys before it renders (secrets::ResolveTls).
void AddTlsVolumes(const api::TlsSpec& tls, json& volumes) {
  if (const auto& client = tls.client) {
    json items = json::array({{{"key", kTlsCertFile}, {"path", kTlsCertFile}},
                              {{"key", kTlsKeyFile}, {"path", kTlsKeyFile}}});
    if (api::SslModeVerifies(client->ssl_mode)) {
      items.push_back({{"key", kCaFile}, {"path", kCaFile}});
    }
    volumes.push_back({{"name", "client-tls"},
                       {"secret",
                        {{"secretName", client->certificate_secret_name},
                         {"defaultMode", 0440},
                         {"items", std::move(items)}}}});
  }
  if (tls.server && tls.server->ca_ref) {
    const api::CaRef& ca = *tls.server->ca_ref;
    json items = json::array({{{"key", ca.key}, {"path", kCaFile}}});
    if (!ca.secret_name.empty()) {
      volumes.push_back(
          {{"name", "server-ca"},
           {"secret",
            {{"secretName", ca.secret_name}, {"defaultMode", 0440}, {"items", std::move(items)}}}});
    } else {
      volumes.push_back(
          {{"name", "server-ca"},
           {"configMap",
            {{"name", ca.config_map_name}, {"defaultMode", 0444}, {"items", std::move(items)}}}});
    }
  }
}

void AddTlsMounts(const api::TlsSpec& tls, json& mounts) {
  if (tls.client) {
    mounts.push_back({{"name", "client-tls"}, {"mountPath", kClientTlsDir}, {"readOnly", true}});
  }
  if (tls.server && tls.server->ca_ref) {
    mounts.push_back({{"name", "server-ca"}, {"mountPath", kServerCaDir}, {"readOnly", true}});
  }
}

json Container(const api::ConnectionPool& pool) {
  const auto& pooler = pool.spec.pooler;
  json container = {
      {"name", "pgbouncer"},
      {"image", pooler.image},
      {"command", {"pgbouncer", std::string(kConfigDir) + "/" + kIniFile}},
      {"ports", json::array({{
                    {"name", "pgbouncer"},
                    {"containerPort", pooler.port},
                    {"protocol", "TCP"},
                }})},
      {"readinessProbe", TcpProbe(1, 5)},
      {"livenessProbe", TcpProbe(10, 6)},
      {"resources", Resources(pooler)},
      {"securityContext",
       {
           {"allowPrivilegeEscalation", false},
           {"readOnlyRootFilesystem", true},
           {"capabilities", {{"drop", {"ALL"}}}},
       }},
      {"volumeMounts", json::array({
                           {{"name", "config"}, {"mountPath", kConfigDir}, {"readOnly", true}},
                           {{"name", "auth"}, {"mountPath", kAuthDir}, {"readOnly", true}},
                       })},
  };
  AddTlsMounts(pool.spec.tls, container["volumeMounts"]);
  if (!SigtermDrains(pooler.pgbouncer_version)) {
    // Before 1.23 the kubelet's SIGTERM would drop every client at once. SIGINT is pgbouncer's
    // safe shutdown (PAUSE, then exit once server connections are released); the hook waits for
    // it so SIGTERM only arrives after the drain (or at the end of the grace period).
    container["lifecycle"] = {
        {"preStop",
         {{"exec",
           {{"command",
             {"/bin/sh", "-c", "kill -INT 1; while kill -0 1 2>/dev/null; do sleep 1; done"}}}}}}};
  }
  return container;
}

// The pooler agent (`poolkeeper agent`, operator/agent): the operator's image beside pgbouncer. It
// reads the ConfigMap's mount (pgbouncer.ini, config-hash, paused), only its own password and the
// pod's budget figures (kPodInfoDir), reaches the console over the socket in the shared emptyDir,
// and serves /metrics, /status and /readyz on kAgentPort. Its readiness is the pod's: not ready
// until PgBouncer runs the mounted configuration, and not ready from the moment it is told to stop.
json AgentContainer(const api::ConnectionPool& pool) {
  const std::string port_name = "metrics";
  return {
      {"name", "agent"},
      {"image", pool.spec.pooler.agent_image},
      {"args",
       {"agent", std::string("--config-dir=") + kConfigDir,
        std::string("--password-file=") + kAgentPasswordDir + "/password",
        std::string("--pod-info-dir=") + kPodInfoDir,
        "--http-address=0.0.0.0:" + std::to_string(kAgentPort)}},
      {"ports", json::array({{
                    {"name", port_name},
                    {"containerPort", kAgentPort},
                    {"protocol", "TCP"},
                }})},
      {"readinessProbe",
       {{"httpGet", {{"path", "/readyz"}, {"port", port_name}}},
        {"periodSeconds", 2},
        {"failureThreshold", 1}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", port_name}}},
        {"periodSeconds", 10},
        {"failureThreshold", 6}}},
      {"resources",
       {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}, {"limits", {{"memory", "64Mi"}}}}},
      {"securityContext",
       {
           {"allowPrivilegeEscalation", false},
           {"readOnlyRootFilesystem", true},
           {"capabilities", {{"drop", {"ALL"}}}},
       }},
      {"volumeMounts",
       json::array({
           {{"name", "config"}, {"mountPath", kConfigDir}, {"readOnly", true}},
           {{"name", "agent-password"}, {"mountPath", kAgentPasswordDir}, {"readOnly", true}},
           {{"name", "run"}, {"mountPath", kSocketDir}},
           {{"name", "pod-info"}, {"mountPath", kPodInfoDir}, {"readOnly", true}},
       })},
  };
}

// The pod's budget figures for the agent's metrics: annotations the operator may change on a
// running pod, which a downward API volume (unlike an env var) follows. Only fields of the pod's
// own metadata; apiVersion spelled out as the API server would default it.
json PodInfoVolume() {
  auto item = [](const char* path, const std::string& field) {
    return json{{"path", path}, {"fieldRef", {{"apiVersion", "v1"}, {"fieldPath", field}}}};
  };
  auto annotation = [](const char* key) {
    return "metadata.annotations['" + std::string(key) + "']";
  };
  return {
      {"name", "pod-info"},
      {"downwardAPI",
       {{"defaultMode", 0444},
        {"items", json::array({
                      item(kPodInfoConnectionsFile, annotation(kPodConnectionsAnnotation)),
                      item(kPodInfoServerFile, annotation(kServerAnnotation)),
                      item(kPodInfoPoolFile, "metadata.labels['" + std::string(kPoolLabel) + "']"),
                  })}}}};
}

// The agent's volumes: the socket's emptyDir, its password alone out of the auth Secret, and the
// pod's budget figures.
void AddAgent(const api::ConnectionPool& pool, json& spec) {
  if (pool.spec.pooler.agent_image.empty()) return;
  spec["containers"][0]["volumeMounts"].push_back({{"name", "run"}, {"mountPath", kSocketDir}});
  spec["containers"].push_back(AgentContainer(pool));
  spec["volumes"].push_back(
      {{"name", "run"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "1Mi"}}}});
  spec["volumes"].push_back(
      {{"name", "agent-password"},
       {"secret",
        {{"secretName", pool.metadata.name + "-auth"},
         {"defaultMode", 0440},
         {"items", json::array({{{"key", kAgentPasswordKey}, {"path", "password"}}})}}}});
  spec["volumes"].push_back(PodInfoVolume());
}

json PodSpec(const api::ConnectionPool& pool) {
  const auto& pooler = pool.spec.pooler;
  const std::string name = pool.metadata.name;
  json spec = {
      {"containers", json::array({Container(pool)})},
      {"terminationGracePeriodSeconds", TerminationGracePeriodSeconds(pool)},
      // pgbouncer needs no API access.
      {"automountServiceAccountToken", false},
      {"securityContext",
       {
           // uid/gid 70 is postgres in the Alpine-based PgBouncer images; a numeric user lets
           // the kubelet verify runAsNonRoot for images whose USER is a name. pgbouncer writes
           // nothing but, with the agent, its Unix socket in the shared emptyDir (stderr logs,
           // no pidfile), so any uid works.
           {"runAsNonRoot", true},
           {"runAsUser", 70},
           {"runAsGroup", 70},
           {"fsGroup", 70},
           {"seccompProfile", {{"type", "RuntimeDefault"}}},
       }},
      {"volumes",
       json::array({
           {{"name", "config"}, {"configMap", {{"name", name + "-config"}, {"defaultMode", 0444}}}},
           // 0440: the owner and fsGroup read the passwords, nobody else.
           {{"name", "auth"}, {"secret", {{"secretName", name + "-auth"}, {"defaultMode", 0440}}}},
       })},
  };
  AddTlsVolumes(pool.spec.tls, spec["volumes"]);
  AddAgent(pool, spec);
  if (pooler.topology_spread_constraints.is_array()) {
    spec["topologySpreadConstraints"] = pooler.topology_spread_constraints;
  } else {
    // Spread replicas over nodes when possible, so one node going away does not take the pool.
    spec["topologySpreadConstraints"] = json::array({{
        {"maxSkew", 1},
        {"topologyKey", "kubernetes.io/hostname"},
        {"whenUnsatisfiable", "ScheduleAnyway"},
        {"labelSelector", {{"matchLabels", SelectorLabels(pool)}}},
    }});
  }
  if (pooler.affinity.is_object() && !pooler.affinity.empty()) spec["affinity"] = pooler.affinity;
  if (pooler.tolerations.is_array() && !pooler.tolerations.empty()) {
    spec["tolerations"] = pooler.tolerations;
  }
  if (pooler.node_selector.is_object() && !pooler.node_selector.empty()) {
    spec["nodeSelector"] = pooler.node_selector;
  }
  if (!pooler.priority_class_name.empty()) spec["priorityClassName"] = pooler.priority_class_name;
  return spec;
}

}  // namespace

json BuildPodTemplate(const api::ConnectionPool& pool) {
  json metadata = Metadata(pool, "");
  metadata.erase("name");
  metadata["annotations"] = json::object();
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", std::move(metadata)},
      {"spec", PodSpec(pool)},
  };
}

}  // namespace internal
}  // namespace poolkeeper::render
