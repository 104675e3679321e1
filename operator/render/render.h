// Renderers: pure, deterministic functions from a validated ConnectionPool and its PoolPlan to the
// files PgBouncer reads and the Kubernetes objects the operator owns. Same input, same bytes: keys
// are sorted so the config hash only changes when the content does. The operator and
// `poolkeeper render` call exactly these.
#pragma once

#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/connection_pool.h"
#include "budget/plan.h"
#include "common/error.h"

namespace poolkeeper::render {

// Where the pod finds its files; auth_file in pgbouncer.ini points into kAuthDir.
inline constexpr char kConfigDir[] = "/etc/pgbouncer";
inline constexpr char kAuthDir[] = "/etc/pgbouncer-auth";
inline constexpr char kIniFile[] = "pgbouncer.ini";
inline constexpr char kUserlistFile[] = "userlist.txt";
// spec.tls: the client certificate Secret's keys and the server CA, each projected to a fixed file
// name, so no name from a resource reaches pgbouncer.ini.
inline constexpr char kClientTlsDir[] = "/etc/pgbouncer-tls/client";
inline constexpr char kServerCaDir[] = "/etc/pgbouncer-tls/server-ca";
inline constexpr char kTlsCertFile[] = "tls.crt";
inline constexpr char kTlsKeyFile[] = "tls.key";
inline constexpr char kCaFile[] = "ca.crt";

// The pooler agent (operator/agent), when the pool has an agent image: PgBouncer's Unix socket in
// an emptyDir both containers mount, the agent's password projected alone from the auth Secret,
// the ConfigMap keys with the config hash the agent reports once loaded and with spec.paused
// ("true" or "false", agent::kPausedFile), and its HTTP port (pgbouncer_exporter's).
inline constexpr char kSocketDir[] = "/var/run/pgbouncer";
inline constexpr char kAgentPasswordDir[] = "/etc/poolkeeper-agent";
inline constexpr char kAgentPasswordKey[] = "agent-password";
inline constexpr char kConfigHashKey[] = "config-hash";
inline constexpr char kPausedKey[] = "paused";
inline constexpr int kAgentPort = 9127;
// The agent's downward API volume (agent::PodBudget): the pod's kPodConnectionsAnnotation,
// kServerAnnotation and kPoolLabel, one file each (the agent's file names), read at each scrape
// for its budget metrics. The kubelet rewrites the files when the operator lowers the figure.
inline constexpr char kPodInfoDir[] = "/etc/poolkeeper-pod";
inline constexpr char kPodInfoConnectionsFile[] = "connections-per-pod";
inline constexpr char kPodInfoServerFile[] = "server";
inline constexpr char kPodInfoPoolFile[] = "pool";

// user name -> password, resolved from the users' passwordSecretRefs. Never logged.
using Passwords = std::map<std::string, std::string>;

// pgbouncer.ini for the pool's pgbouncer version, with the plan's (declared or derived) caps.
std::string RenderIni(const api::ConnectionPool& pool, const budget::PoolPlan& plan);

// userlist.txt: one `"user" "password"` line per user, `"` doubled; in authQuery mode only the
// line of api::kAuthUser, from passwords[kAuthUser] (failing on spec.authentication without it).
// Fails (kNotFound, naming spec.users[i].passwordSecretRef) when a password is missing, and
// (kInvalid) when a password holds a character the file cannot carry (newline, NUL) or is longer
// than PgBouncer reads (kMaxUserlistPassword bytes or more once quotes are doubled).
inline constexpr size_t kMaxUserlistPassword = 2048;
Result<std::string> RenderUserlist(const api::ConnectionPool& pool, const Passwords& passwords);

// The objects the operator applies for one pool, as Kubernetes JSON (apiVersion, kind, metadata
// with labels and owner reference when the pool has a uid, spec/data).
struct OwnedObjects {
  nlohmann::json config_map;  // <pool>-config: pgbouncer.ini, no secrets
  nlohmann::json secret;      // <pool>-auth: userlist.txt
  // A pgbouncer pod of this configuration without its name; the operator creates the pods itself
  // (PodInSlot), so that a pod starts only when its connections fit beside every pod that exists.
  nlohmann::json pod_template;
  nlohmann::json service;                // <pool>: clients connect to <pool>.<namespace>.svc
  nlohmann::json pod_disruption_budget;  // null when instances <= 1
  std::string config_hash;  // sha256 hex of what the pods run (the agent reports it loaded)
  // The pods' poolkeeper.io/config-hash: what only a new PgBouncer process applies. Without the
  // agent every change needs one, so it is config_hash; with it, RestartHash (a change of
  // anything else is RELOADed in place by the agent, and the pods stay).
  std::string pod_hash;
};

// The kinds of OwnedObjects that are applied as they are rendered, in order; pods come after them
// (they mount the ConfigMap and Secret). One table for the renderer, the reconciler, the operator's
// caches and the CLI.
struct OwnedKind {
  std::string_view kind;     // "Deployment"
  std::string_view group;    // "apps"; "" for the core group
  std::string_view version;  // "v1"
  std::string_view plural;   // "deployments"
  std::string_view suffix;   // the object's name is the pool's name + suffix
  nlohmann::json OwnedObjects::*member;
};
inline const std::array<OwnedKind, 4> kOwnedKinds = {{
    {"ConfigMap", "", "v1", "configmaps", "-config", &OwnedObjects::config_map},
    {"Secret", "", "v1", "secrets", "-auth", &OwnedObjects::secret},
    {"Service", "", "v1", "services", "", &OwnedObjects::service},
    {"PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", "",
     &OwnedObjects::pod_disruption_budget},
}};
const OwnedKind* FindOwnedKind(std::string_view kind);

// The name of a pool's pod in slot `slot`: "<pool>-<slot>". A name is free again only when the
// pod that had it is gone (draining included), so at most as many pods exist as there are slots,
// whatever happens to the operator or its requests.
std::string PodName(const std::string& pool_name, int slot);
// The pod of `pod_template` in slot `slot` (PodName).
nlohmann::json PodInSlot(const nlohmann::json& pod_template, const std::string& pool_name,
                         int slot);

// sha256 hex of `ini`, the pod's spec and `credentials_revision`: what the pod template's
// poolkeeper.io/config-hash annotation carries (without the agent). The spec is in it because a
// running pod cannot take a new one (image, resources, probes): a change of the image alone must
// reach the pods too. Deliberately not a hash of the userlist: a hash of a password in a readable
// annotation would be a guessing oracle.
std::string ConfigHash(std::string_view ini, const nlohmann::json& pod_spec,
                       std::string_view credentials_revision);

// With the agent: sha256 hex of what a running PgBouncer cannot take on RELOAD: the [pgbouncer]
// keys of `ini` for which api::NeedsRestart(key, version) (listen port, socket dir, ...), the pod's
// spec (image, ports, volumes, resources, grace period: a pod cannot change them), and
// `restart_revision` (the TLS files' revision: PgBouncer keeps them until it restarts).
std::string RestartHash(std::string_view ini, api::PgBouncerVersion version,
                        const nlohmann::json& pod_spec, std::string_view restart_revision);

// sha256 hex of an object's JSON; the operator stamps it on what it applies
// (kAppliedHashAnnotation) and skips the write while the stored object carries the same hash.
inline constexpr char kAppliedHashAnnotation[] = "poolkeeper.io/applied-hash";
// On the Deployment: the worst case (server connections) of the configuration it runs.
inline constexpr char kPlannedConnectionsAnnotation[] = "poolkeeper.io/planned-connections";
// On the ConfigMap and every pod: the endpoint ("host:port", api::EndpointKey) the configuration
// connects to, and on every pod the most server connections its pgbouncer can open. The ledger
// charges each pod that exists (draining ones too) this figure on the budget that endpoint belongs
// to (budget::ServerDirectory::BudgetKeyOf), whoever owns the pod by then.
inline constexpr char kServerAnnotation[] = "poolkeeper.io/server";
inline constexpr char kPodConnectionsAnnotation[] = "poolkeeper.io/connections-per-pod";
// On the ConfigMap: the pods of the admitted configuration (instances, and maxSurge beside them),
// so that while a newer spec is refused the operator keeps that many running.
inline constexpr char kInstancesAnnotation[] = "poolkeeper.io/instances";
inline constexpr char kMaxSurgeAnnotation[] = "poolkeeper.io/max-surge";
// The label every pooler pod carries: the name of its pool.
inline constexpr char kPoolLabel[] = "poolkeeper.io/pool";
// On every object the operator owns; the operator watches owned kinds with this label selected.
inline constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
inline constexpr char kManagedByValue[] = "poolkeeper";
inline constexpr char kConfigHashAnnotation[] = "poolkeeper.io/config-hash";
// On the ConfigMap: the pod hash (OwnedObjects::pod_hash) of the admitted configuration, which
// the pods that run it carry as kConfigHashAnnotation.
inline constexpr char kPodHashAnnotation[] = "poolkeeper.io/pod-config-hash";
std::string AppliedHash(const nlohmann::json& object);
// "key=value,..." of the labels that select the pool's pods (for the scale subresource).
std::string PodSelector(const api::ConnectionPool& pool);

// With an agent image, passwords[api::kAgentUser] is the agent's password (the operator keeps the
// one its Secret holds, else generates one): kInvalid without it.
// `credentials_revision` changes whenever a password changes (the operator passes the referenced
// Secrets' resourceVersions) so pods roll on rotation without putting a hash of a password
// anywhere readable.
// `server_ca` is the PEM of the pool's PostgresServer's CA when placement gave the pool that CA
// (spec.tls.server.ca_from_server): it goes into the ConfigMap under api::kServerCaKey, and its
// SHA-256 into the config hash, so a new CA rolls the pods. Fails (kNotFound, naming
// spec.tls.server.caRef) when the pool needs it and it is empty.
// `restart_revision` is the part of the credentials revision a RELOAD does not apply (the TLS
// files'): with the agent it joins the pod hash, so a renewed certificate still rolls the pods,
// while a password rotation only changes the Secret and the ConfigMap's config hash.
Result<OwnedObjects> BuildObjects(const api::ConnectionPool& pool, const budget::PoolPlan& plan,
                                  const Passwords& passwords,
                                  const std::string& credentials_revision,
                                  const std::string& server_ca = {},
                                  const std::string& restart_revision = {});

}  // namespace poolkeeper::render
