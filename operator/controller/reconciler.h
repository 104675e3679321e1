// Reconciling one ConnectionPool, as a pure function: from what the caches hold (the pool, every
// pool on its server, what exists on the server now, the password Secrets, the owned objects as
// stored) to what must be written (the owned objects whose content changed or drifted, the
// finalizer, the status only when it differs) and the events to record. Level-based: every call
// computes the whole desired state, so running it twice on the same input gives the same answer
// and a steady state costs no writes.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "api/parse.h"
#include "api/pod_policy.h"
#include "api/status.h"
#include "budget/planner.h"
#include "budget/servers.h"
#include "common/error.h"
#include "controller/agent_status.h"
#include "secrets/secrets.h"

namespace poolkeeper::controller {

struct PoolInputs {
  nlohmann::json pool;  // the ConnectionPool as stored (metadata, spec, status)
  // Every valid pool that targets the same budget (the same server, by any of its names), this one
  // included, in ledger order (creationTimestamp, then namespace/name): a pool never takes from
  // those before it. Unplaced: the directory places them. Shared with the pool index.
  std::vector<budget::SharedPool> server_pools;
  // The PostgresServers: which budget a pool is in, with which limits and policy. nullptr: none.
  const budget::ServerDirectory* directory = nullptr;
  // What exists on the servers now, by reference key (pods' server annotations): every pod
  // (draining ones too) and admitted configuration, so a pool is never planned into connections
  // that pods can still open.
  budget::Holdings holdings;
  // The password Secrets the pool references, as the caches hold them (a missing one is absent).
  secrets::SecretMap secrets;
  // The ConfigMaps it references (a server CA), likewise (secrets::ParseConfigMap's values).
  secrets::SecretMap config_maps;
  // Its PostgresServer's CA certificate (PEM) when it verifies the server with it
  // (api::ServerTlsSpec::ca_from_server), or why it could not be read; "" for other pools.
  Result<std::string> server_ca = std::string();
  // Owned objects as stored, by kind (render::kOwnedKinds); absent when not created yet.
  std::map<std::string, nlohmann::json> owned;
  // Kinds whose object name is taken by an object this pool does not own, with a description of
  // it: such an object is never written (taken over, then garbage-collected with the pool).
  std::map<std::string, std::string> conflicts;
  // Pods labelled as this pool's, as stored (any owner, draining ones included).
  std::vector<nlohmann::json> pods;
  std::string now;              // RFC 3339, for condition transition times
  api::ParseDefaults defaults;  // what an unset image means
  api::PodPolicy policy;        // what the pods may run and where (the operator's flags)
  // authQuery: where the auth role's Secret of the pool's PostgresServer is (auth_query.h); the
  // Secret itself is in `secrets` once the operator created it.
  std::string auth_secret_namespace;
  // A fresh random password for the pooler agent, used only when the pool's auth Secret does not
  // hold one yet (Gather makes it; the reconciler stays free of randomness).
  std::string new_agent_password;
  // With the agent: pod name -> what its agent last reported (agent_status.h: the config hash
  // loaded, the server connections held; agent_poller.h); a pod whose agent never answered is
  // absent. `agents_asked` false (no AgentStatusSource): the pods keep their figures and nothing
  // waits for the agents.
  bool agents_asked = false;
  std::map<std::string, AgentReport> agent_reports;
  // With the agent: the live figures for status.live (absent: the status carries none).
  std::optional<api::LiveStatus> live;
};

// Held on deletion until the pool's pods are gone, so the budget they hold is not handed out while
// they drain.
inline constexpr char kFinalizer[] = "poolkeeper.io/pods-drained";

enum class FinalizerChange { kNone, kAdd, kRemove };
struct EventRecord {
  std::string type;    // Normal, Warning
  std::string reason;  // CamelCase
  std::string message;
  bool operator==(const EventRecord&) const = default;
};

struct ReconcileResult {
  std::vector<nlohmann::json> apply;      // owned objects to server-side apply, in order
  std::vector<std::string> delete_kinds;  // owned objects no longer wanted (e.g. the PDB)
  FinalizerChange finalizer = FinalizerChange::kNone;  // written before anything else
  std::vector<nlohmann::json> create_pods;             // after the owned objects (they mount them)
  // Deleted only as observed (uid and resourceVersion preconditions): a pod that changed since,
  // e.g. orphaned by the garbage collector while the cache still showed it owned, is not deleted;
  // the conflict retries the pass on the newer object.
  struct PodToDelete {
    std::string name, uid, resource_version;
  };
  std::vector<PodToDelete> delete_pods;
  // With the agent: pods whose agent reports the current configuration loaded, and whose
  // poolkeeper.io/connections-per-pod is to become `connections` (a JSON merge patch, uid checked).
  struct PodFigure {
    std::string name, uid;
    int64_t connections = 0;
  };
  std::vector<PodFigure> pod_figures;
  // Reconcile again after this long: an agent has not reported the configuration loaded yet.
  std::chrono::milliseconds requeue_after{0};
  // Set while the pass waits on the agents (a reload not confirmed): the server-connection figure
  // their pods must come within. The poller asks those agents often meanwhile, and queues the pool
  // as soon as a report decides otherwise (agent_poller.h).
  std::optional<int64_t> agents_awaited_within;
  std::optional<nlohmann::json> status;  // the new status, when it differs from the stored one
  std::vector<EventRecord> events;
  // Why the configuration was not rolled out (budget, spec, missing Secret); empty when it was.
  std::string blocked_reason;
};

// Orders pools as the ledger does: creationTimestamp, then namespace/name (LedgerBefore).
void SortLedger(std::vector<budget::SharedPool>& pools);

// A string annotation of an object, "" when it has none (or not a string).
std::string StringAnnotation(const nlohmann::json& object, const char* name);
// A non-negative integer annotation of an object (e.g. render::kPlannedConnectionsAnnotation on a
// ConfigMap, render::kPodConnectionsAnnotation on a pod), if it has one.
std::optional<int64_t> IntAnnotation(const nlohmann::json& object, const char* name);
std::optional<int64_t> PlannedConnections(const nlohmann::json& config_map);

// Whether every field `desired` sets has the same value in `stored`, which may hold more (fields
// the API server defaulted, status); lists must match element by element. An edit of a field the
// operator sets (kubectl scale, kubectl edit) makes it false.
bool Contains(const nlohmann::json& stored, const nlohmann::json& desired);

// The pooler agent's password the pool's auth Secret (`owned`'s "Secret") holds, if any: a
// running agent keeps it, so a fresh one is made only when this has none.
std::optional<std::string> StoredAgentPassword(const std::map<std::string, nlohmann::json>& owned);

ReconcileResult Reconcile(const PoolInputs& inputs);

}  // namespace poolkeeper::controller
