// The operator's control loop, wired: caches (informers) of ConnectionPools, of the objects
// poolkeeper owns (label-selected, never the cluster's other Deployments or Secrets), of pooler
// pods, PostgresServers and the Secrets labelled for pools to read (exposed_secrets.h); the
// handlers that turn changes into keys on the work queue (fan_out.h); workers that gather a key's
// inputs (pool_inputs.h), reconcile it (reconciler.h) and write only what changed (pool_writer.h,
// events.h); with the agent, the poller of the pooler agents (agent_poller.h). Its read-only
// answers for the webhook and the metrics are in manager_queries.cc.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "controller/agent_poller.h"
#include "controller/agent_status.h"
#include "controller/events.h"
#include "controller/exposed_secrets.h"
#include "controller/fan_out.h"
#include "controller/foreign_names.h"
#include "controller/holdings.h"
#include "controller/parallel.h"
#include "controller/pool_index.h"
#include "controller/pool_inputs.h"
#include "controller/pool_writer.h"
#include "controller/reconciler.h"
#include "controller/server_ca_secrets.h"
#include "controller/server_ca_watch.h"
#include "controller/server_observer.h"
#include "controller/server_registry.h"
#include "controller/work_queue.h"
#include "kube/client.h"
#include "kube/informer.h"

namespace poolkeeper::controller {

struct ManagerOptions {
  std::vector<std::string> namespaces;  // empty: all namespaces
  int workers = 4;
  std::chrono::seconds resync{600};  // every pool is reconciled again this often
  std::chrono::seconds watch_timeout{300};
  std::string instance = "poolkeeper";  // reported on events (the pod name)
  api::ParseDefaults defaults;          // what an unset spec.pooler.image means
  api::PodPolicy policy;                // what pooler pods may run, and where
  // Reads PostgresServers' own figures (libpq); nullptr: PostgresServers are planned on their
  // declared figures only.
  postgres::ServerClient* database = nullptr;
  std::string ca_dir = "/tmp/poolkeeper-ca";  // CA bundles for libpq, from caSecretRef
  // Where the auth role's Secret of each PostgresServer is kept (authQuery mode); empty: the
  // operator does not set authQuery up, and authQuery pools wait.
  std::string operator_namespace;
  // Helper threads the writing reconciles share (parallel.h): the workers take the rest.
  size_t write_helpers = 3;
  // Called on a worker's thread when the queue goes idle (the last reconcile in flight ended and
  // no key is ready), at most once per `idle_interval`: the process gives freed heap back to the
  // kernel there (common/memory.h). Must be quick and must not call into the Manager.
  std::function<void()> on_idle;
  std::chrono::milliseconds idle_interval{1000};
  // Asks the pooler agents which configuration their PgBouncer runs (agent_status.h); nullptr:
  // pods keep the figure they were created with (the ConfigMap's, when higher, is charged too).
  AgentStatusSource* agent_status = nullptr;
  // How often every agent is asked (--agent-poll-seconds); the pods of pools that wait on their
  // agents every second.
  std::chrono::seconds agent_poll_interval{10};
};

// One finished reconcile: outcome is "success", "requeue" or "error".
using ReconcileObserver =
    std::function<void(const std::string& key, double seconds, const std::string& outcome)>;

struct PoolBudgetFigures {
  std::string ns;
  std::string name;
  int64_t usable = 0;
  int64_t allocated = 0;
  int64_t headroom = 0;
};

// A PostgresServer's figures as its status records them (metrics).
struct ServerFigures {
  std::string name;
  int64_t max_connections = 0;
  int64_t in_use_by_others = 0;
  int64_t usable = 0;
  int64_t allocated = 0;
  int64_t headroom = 0;
  bool reachable = false;
  std::optional<int64_t> observation_age_seconds;  // absent when never observed
};

struct QueueFigures {
  size_t depth = 0;
  uint64_t adds = 0;
  uint64_t retries = 0;
};

class Manager {
 public:
  Manager(kube::Client& client, const Clock& clock, ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  void SetObserver(ReconcileObserver observer);  // before StartWorkers
  // kUnavailable when a thread cannot be created (a pids limit): the caller ends the process with
  // that message rather than run with a cache that never fills.
  Status StartInformers();
  bool Synced() const;
  // Workers start once this replica leads; caches fill before, so a new leader starts warm.
  // kUnavailable as StartInformers; the workers that did start keep running.
  Status StartWorkers();  // and the PostgresServer observer
  // Takes no new keys, waits up to `drain` for reconciles in flight. Informers keep running until
  // the manager is destroyed, which stops each watch at once through its stop token.
  bool Stop(std::chrono::milliseconds drain);

  // The admission webhook's verdict on a ConnectionPool as submitted (admission.h): why it is
  // refused, or nullopt. Until the caches are synced nothing is refused (the reconciler still
  // enforces the budget). Thread-safe; any replica answers.
  std::optional<std::string> Admit(const nlohmann::json& pool) const;

  // For tests, which drive the manager on their own thread instead of StartInformers and
  // StartWorkers: one attempt of every cache (kube::Informer::Step), and one reconcile of the next
  // ready key as a worker does it (false when no key is ready).
  void StepCaches();
  bool RunOne();
  // One turn of the agent poller (agent_poller.h), its polls on the caller's thread; 0 without it.
  int PollAgents();

  std::vector<PoolBudgetFigures> Budgets() const;
  std::vector<ServerFigures> Servers() const;
  QueueFigures Queue() const;
  uint64_t EventsWritten() const { return events_.Written(); }
  uint64_t EventsDropped() const { return events_.Dropped(); }
  // LISTs the caches made after their first (a watch expired or broke), over every informer.
  uint64_t Relists() const;

 private:
  struct Outcome {
    bool ok = true;
    Clock::Duration requeue_after{};
  };
  // One pass's inputs and decision, before anything is written.
  struct Pass {
    PoolInputs in;
    ReconcileResult result;
    AgentSnapshot agents;
  };
  void Enqueue(const std::string& key);
  std::unique_ptr<kube::InformerGroup> LabelSelectedInformer(const kube::ResourceType& type,
                                                             bool pack);
  std::mutex& ServerMutex(const std::string& server);
  bool ServersSynced() const;
  void StopInformers();
  void Work();
  void Process(const std::string& key);
  void MaybeIdle();
  Result<Outcome> ReconcileGuarded(const std::string& key);
  Result<Outcome> ReconcileKey(const std::string& key);
  Result<Pass> Plan(const PoolCaches& caches, const PassTarget& target, PoolWriter& writer);

  kube::Client& client_;
  const Clock& clock_;
  ManagerOptions options_;
  WorkQueue queue_;
  EventRecorder events_;
  ReconcileObserver observer_;
  // The indexes and the handlers that keep them, before the informers that call the handlers.
  PoolIndex index_;
  HoldingsIndex holdings_;
  ServerRegistry registry_;
  FanOut fan_out_;
  // Where every informer below runs (its LISTs and waits; watches on the transport's loop).
  kube::InformerLoop informer_loop_;
  ExposedSecrets secrets_;
  ExposedSecrets config_maps_;  // the labelled ConfigMaps (server CAs), same label as Secrets
  ServerCaSecrets server_ca_secrets_;  // PostgresServers' CA Secrets, read by name
  ServerCaWatch server_ca_watch_;      // ... and watched, metadata only, to know when to read
  ForeignNames foreign_;  // names of the owned kinds held by objects poolkeeper does not manage
  TaskPool helpers_;      // the write helpers of every worker (parallel.h)
  std::mutex server_mutexes_mutex_;
  std::map<std::string, std::mutex> server_mutexes_;  // by budget key ("" for unplanned pools)
  std::unique_ptr<kube::InformerGroup> pools_;
  std::map<std::string, std::unique_ptr<kube::InformerGroup>> owned_;  // by kind
  std::unique_ptr<kube::InformerGroup> pods_;  // pooler pods (label-selected), for holdings_
  // With options_.agent_status and an agent image: polls the agents of pods_, started on the
  // leader.
  std::unique_ptr<AgentPoller> agent_poller_;
  std::unique_ptr<kube::Informer> servers_;  // PostgresServers (cluster-scoped)
  // With options_.database: created with the manager, started on the leader.
  std::unique_ptr<ServerObserver> server_observer_;
  mutable std::atomic<bool> warned_no_server_crd_{false};

  std::vector<std::thread> workers_;
  std::atomic<int> busy_{0};
  std::atomic<int64_t> last_idle_{0};  // steady_clock ticks of the last on_idle call
  std::atomic<uint64_t> adds_{0};
  std::atomic<uint64_t> retries_{0};
};

}  // namespace poolkeeper::controller
