// The Manager's wiring and lifecycle: which informers exist and where their events go, starting
// and stopping, and the worker loop around one reconcile pass (gather, reconcile, write, record).
#include "controller/manager.h"

#include "common/log.h"
#include "common/thread.h"
#include "controller/cache_trim.h"
#include "controller/pool_inputs.h"
#include "controller/pool_writer.h"
#include "controller/reconciler.h"
#include "controller/resources.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {
// How long a PostgresServer's CA Secret, once read, serves the pools of that server.
constexpr std::chrono::seconds kServerCaTtl{10};
}  // namespace

Manager::Manager(kube::Client& client, const Clock& clock, ManagerOptions options)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      queue_(clock),
      events_(client, clock, options_.instance),
      index_(options_.defaults, options_.policy, options_.operator_namespace),
      holdings_(clock),
      fan_out_({.pools = index_,
                .holdings = holdings_,
                .registry = registry_,
                .enqueue = [this](const std::string& key) { Enqueue(key); },
                .observe_server =
                    [this](const std::string& name) {
                      if (server_observer_) server_observer_->Poke(name);
                    },
                .watch_server_cas =
                    [this](const std::set<std::string>& keys) { server_ca_watch_.Track(keys); }}),
      informer_loop_(clock),
      secrets_(client, clock, options_.watch_timeout, options_.namespaces,
               [this](const std::string& secret_key) { fan_out_.OnSecret(secret_key); }),
      config_maps_(
          client, clock, options_.watch_timeout, options_.namespaces,
          [this](const std::string& config_map_key) { fan_out_.OnConfigMap(config_map_key); },
          kube::resources::kConfigMap),
      server_ca_secrets_(client, clock, kServerCaTtl),
      server_ca_watch_(client, clock, options_.watch_timeout,
                       [this](const std::string& key) {
                         const size_t slash = key.find('/');
                         server_ca_secrets_.Forget(key.substr(0, slash), key.substr(slash + 1));
                         fan_out_.OnServerCaSecret(key);
                       }),
      foreign_(client, clock, options_.watch_timeout, options_.namespaces) {
  // The pools' and owned objects' caches are read by key, once per reconcile: packed, they take
  // a fifth of the heap (docs/performance.md). Pods are listed whole by the agent poller.
  kube::InformerOptions pool_options{.type = kConnectionPoolType,
                                     .watch_timeout = options_.watch_timeout,
                                     .trim = TrimFor(kConnectionPoolType.kind),
                                     .pack = true};
  pools_ =
      std::make_unique<kube::InformerGroup>(client_, clock_, pool_options, options_.namespaces);
  pools_->AddHandlers({
      .on_add = [this](const kube::ObjectPtr& o) { fan_out_.OnPool(nullptr, o); },
      .on_update = [this](const kube::ObjectPtr& b,
                          const kube::ObjectPtr& a) { fan_out_.OnPool(b, a); },
      .on_delete = [this](const kube::ObjectPtr& o) { fan_out_.OnPool(o, nullptr); },
  });
  for (const auto& kind : render::kOwnedKinds) {
    auto group = LabelSelectedInformer(ResourceTypeOf(kind), /*pack=*/true);
    const bool admits = kind.kind == "ConfigMap";  // carries what the pool was admitted with
    group->AddHandlers({
        .on_add = [this,
                   admits](const kube::ObjectPtr& o) { fan_out_.OnOwned(admits, nullptr, o); },
        .on_update = [this, admits](const kube::ObjectPtr& b,
                                    const kube::ObjectPtr& a) { fan_out_.OnOwned(admits, b, a); },
        .on_delete = [this,
                      admits](const kube::ObjectPtr& o) { fan_out_.OnOwned(admits, o, nullptr); },
    });
    owned_[std::string(kind.kind)] = std::move(group);
  }
  servers_ = std::make_unique<kube::Informer>(
      client_, clock_,
      kube::InformerOptions{.type = kPostgresServerType,
                            .watch_timeout = options_.watch_timeout,
                            .trim = TrimFor(kPostgresServerType.kind)});
  servers_->AddHandlers({
      .on_add = [this](const kube::ObjectPtr& o) { fan_out_.OnServer(nullptr, o); },
      .on_update = [this](const kube::ObjectPtr& b,
                          const kube::ObjectPtr& a) { fan_out_.OnServer(b, a); },
      .on_delete = [this](const kube::ObjectPtr& o) { fan_out_.OnServer(o, nullptr); },
  });
  if (options_.database) {
    server_observer_ = std::make_unique<ServerObserver>(
        ServerObserverDeps{client_, clock_, *options_.database, *servers_, registry_, index_,
                           holdings_, options_.ca_dir, options_.operator_namespace});
  }
  pods_ = LabelSelectedInformer(kube::resources::kPod, /*pack=*/false);
  pods_->AddHandlers({
      .on_add = [this](const kube::ObjectPtr& o) { fan_out_.OnPod(nullptr, o); },
      .on_update = [this](const kube::ObjectPtr& b,
                          const kube::ObjectPtr& a) { fan_out_.OnPod(b, a); },
      .on_delete = [this](const kube::ObjectPtr& o) { fan_out_.OnPod(o, nullptr); },
  });
  if (options_.agent_status && !options_.defaults.agent_image.empty()) {
    agent_poller_ = std::make_unique<AgentPoller>(
        AgentPollerDeps{.source = *options_.agent_status,
                        .clock = clock_,
                        .pods = [this] { return pods_->List(); },
                        .enqueue = [this](const std::string& key) { Enqueue(key); }},
        AgentPollerOptions{.interval = options_.agent_poll_interval});
  }
}

std::unique_ptr<kube::InformerGroup> Manager::LabelSelectedInformer(const kube::ResourceType& type,
                                                                    bool pack) {
  kube::InformerOptions options{.type = type,
                                .label_selector = ManagedBySelector(),
                                .watch_timeout = options_.watch_timeout,
                                .trim = TrimFor(type.kind),
                                .pack = pack};
  return std::make_unique<kube::InformerGroup>(client_, clock_, options, options_.namespaces);
}

Manager::~Manager() {
  queue_.ShutDown();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  helpers_.Stop();
  if (server_observer_) server_observer_->Stop();
  if (agent_poller_) agent_poller_->Stop();
  // Before the members the handlers use go.
  StopInformers();
}

void Manager::StopInformers() {
  pools_->Stop();
  for (auto& [kind, group] : owned_) group->Stop();
  pods_->Stop();
  servers_->Stop();
  secrets_.Stop();
  config_maps_.Stop();
  server_ca_watch_.Stop();
  foreign_.Stop();
  informer_loop_.Stop();
}

void Manager::SetObserver(ReconcileObserver observer) { observer_ = std::move(observer); }

Status Manager::StartInformers() {
  if (auto started = informer_loop_.Start(); !started) return started;
  for (auto& [kind, group] : owned_) group->Start(informer_loop_);
  pods_->Start(informer_loop_);
  servers_->Start(informer_loop_);
  secrets_.Start(informer_loop_);
  config_maps_.Start(informer_loop_);
  server_ca_watch_.Start(informer_loop_);
  foreign_.Start(informer_loop_);
  pools_->Start(informer_loop_);
  return {};
}

void Manager::StepCaches() {
  (void)servers_->Step();
  for (auto& [kind, group] : owned_) {
    for (const auto& informer : group->informers()) (void)informer->Step();
  }
  for (const auto& informer : pods_->informers()) (void)informer->Step();
  secrets_.Step();
  config_maps_.Step();
  server_ca_watch_.Step();
  for (const auto& informer : pools_->informers()) (void)informer->Step();
  foreign_.Step();
}

bool Manager::Synced() const {
  if (!pools_->HasSynced() || !pods_->HasSynced() || !ServersSynced() || !secrets_.HasSynced() ||
      !config_maps_.HasSynced()) {
    return false;
  }
  for (const auto& [kind, group] : owned_) {
    if (!group->HasSynced()) return false;
  }
  return true;
}

// An operator upgraded before its PostgresServer CRD (Helm installs new CRDs only on install)
// still reconciles: with the resource not served there are no PostgresServers, and the informer
// keeps retrying until it is.
bool Manager::ServersSynced() const {
  if (servers_->HasSynced()) return true;
  if (servers_->LastFailure() != ErrorCode::kNotFound) return false;
  if (!warned_no_server_crd_.exchange(true)) {
    Log(LogLevel::kWarn,
        "PostgresServers are not served (CRD postgresservers.poolkeeper.io "
        "missing): pools are planned without them until it is installed");
  }
  return true;
}

Status Manager::StartWorkers() {
  for (int i = static_cast<int>(workers_.size()); i < std::max(1, options_.workers); ++i) {
    auto worker = StartThread("worker-" + std::to_string(i), [this] { Work(); });
    if (!worker) return std::unexpected(worker.error());
    workers_.push_back(std::move(*worker));
  }
  if (auto started = helpers_.Start(options_.write_helpers); !started) return started;
  if (auto started = events_.Start(); !started) return started;
  if (agent_poller_) {
    if (auto started = agent_poller_->Start(); !started) return started;
  }
  if (server_observer_) return server_observer_->Start();
  return {};
}

bool Manager::Stop(std::chrono::milliseconds drain) {
  queue_.ShutDown();
  if (server_observer_) server_observer_->Stop();
  if (agent_poller_) agent_poller_->Stop();
  auto deadline = std::chrono::steady_clock::now() + drain;
  while (busy_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a bounded drain, not a sync
  }
  bool drained = busy_ == 0;
  if (drained) {
    for (auto& worker : workers_) worker.join();
    workers_.clear();
    helpers_.Stop();
  }
  // What the last reconciles queued gets the rest of the drain to be written.
  events_.WaitIdle(std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
      deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration{})));
  events_.Stop();
  return drained;
}

void Manager::Enqueue(const std::string& key) {
  ++adds_;
  queue_.Add(key);
}

void Manager::Work() {
  while (auto key = queue_.Get()) Process(*key);
}

bool Manager::RunOne() {
  auto key = queue_.TryGet();
  if (!key) return false;
  Process(*key);
  events_.WriteQueued();  // no writer thread when a test drives the manager
  return true;
}

int Manager::PollAgents() { return agent_poller_ ? agent_poller_->RunDue() : 0; }

void Manager::Process(const std::string& key) {
  ++busy_;
  auto started = std::chrono::steady_clock::now();
  auto outcome = ReconcileGuarded(key);
  std::string result = "success";
  if (!outcome) {
    result = "error";
    const Error& error = outcome.error();
    Log(LogLevel::kWarn, "reconcile failed", {{"pool", key}, {"error", error.message}});
    if (queue_.Retry(key, error, options_.resync)) ++retries_;
  } else {
    queue_.Forget(key);
    if (outcome->requeue_after.count() > 0) {
      result = "requeue";
      queue_.AddAfter(key, outcome->requeue_after);
    } else {
      queue_.AddAfter(key, options_.resync);
    }
  }
  queue_.Done(key);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (observer_) observer_(key, seconds, result);
  if (--busy_ == 0) MaybeIdle();
}

void Manager::MaybeIdle() {
  if (!options_.on_idle) return;
  if (auto next = queue_.NextReadyTime(); next && *next <= clock_.Now()) return;
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t last = last_idle_.load();
  const int64_t interval =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.idle_interval)
          .count();
  if (last != 0 && now - last < interval) return;
  if (!last_idle_.compare_exchange_strong(last, now)) return;  // another worker took it
  options_.on_idle();
}

// The catch boundary of a worker: an exception from a library (a JSON value of an unexpected type
// in an object someone wrote, an allocation failure) fails this one reconcile, which is retried
// with backoff, instead of ending the process.
Result<Manager::Outcome> Manager::ReconcileGuarded(const std::string& key) {
  try {
    return ReconcileKey(key);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, std::string("reconcile threw: ") + e.what());
  }
}

Result<Manager::Outcome> Manager::ReconcileKey(const std::string& key) {
  const PoolCaches caches{*pools_,   owned_,   index_,       holdings_,
                          registry_, secrets_, config_maps_, server_ca_secrets_};
  auto target = Locate(caches, key);
  if (!target) return Outcome{};  // gone: the garbage collector removes what it owned
  // The Secret cache has not listed yet: wait for it rather than report the Secret missing.
  if (target->entry && ((!target->entry->secrets.empty() && !secrets_.HasSynced()) ||
                        (!target->entry->config_maps.empty() && !config_maps_.HasSynced()))) {
    return Outcome{.requeue_after = std::chrono::milliseconds(200)};
  }
  PoolWriter writer(client_, holdings_, {.foreign = &foreign_, .helpers = &helpers_});
  // Most passes cannot raise what the budget's servers hold (a status, a new pool's objects, pods
  // removed): they run beside the other pools of the budget. A pass that would (pods made, the
  // admitted configuration changed under running pods) runs again under the budget's lock, so
  // each such plan sees the pods the one before it made.
  std::unique_lock<std::mutex> budget_lock;
  auto pass = Plan(caches, *target, writer);
  if (pass && NeedsBudgetLock(pass->in, pass->result)) {
    budget_lock = std::unique_lock(ServerMutex(target->budget_key));
    pass = Plan(caches, *target, writer);
  }
  if (!pass) return std::unexpected(pass.error());
  const PoolInputs& in = pass->in;
  const ReconcileResult& result = pass->result;
  if (auto written = writer.WriteObjects(in, result); !written) {
    return std::unexpected(written.error());
  }
  // What remains tells, and holds nothing: the next plan need not wait for it.
  if (budget_lock.owns_lock()) budget_lock.unlock();
  if (auto written = writer.WriteStatus(in, result); !written) {
    return std::unexpected(written.error());
  }
  if (agent_poller_) agent_poller_->Decided(key, result.agents_awaited_within, pass->agents);
  for (const auto& event : result.events) events_.Record(*target->object, event, in.now);
  if (!result.apply.empty() || result.status || !result.delete_kinds.empty() ||
      !result.create_pods.empty() || !result.delete_pods.empty() ||
      result.finalizer != FinalizerChange::kNone) {
    Log(LogLevel::kInfo, "reconciled",
        {{"pool", key},
         {"applied", std::to_string(result.apply.size())},
         {"deleted", std::to_string(result.delete_kinds.size())},
         {"pods_created", std::to_string(result.create_pods.size())},
         {"pods_deleted", std::to_string(result.delete_pods.size())},
         {"status", result.status ? "updated" : "unchanged"},
         {"blocked", result.blocked_reason.empty() ? "no" : "yes"}});
  }
  return Outcome{.requeue_after = result.requeue_after};
}

Result<Manager::Pass> Manager::Plan(const PoolCaches& caches, const PassTarget& target,
                                    PoolWriter& writer) {
  Pass pass{.in = Gather(caches, target, options_.defaults)};
  PoolInputs& in = pass.in;
  in.policy = options_.policy;
  in.auth_secret_namespace = options_.operator_namespace;
  if (agent_poller_) {  // what the agents last reported: no request on the worker
    pass.agents = agent_poller_->Snapshot(in.pods);
    in.agents_asked = true;
    in.agent_reports = pass.agents.reports;
    in.live = pass.agents.live;
  }
  pass.result = Reconcile(in);
  auto names = writer.CheckNamesFree(in, pass.result);
  if (!names) return std::unexpected(names.error());
  if (*names) pass.result = Reconcile(in);
  return pass;
}

std::mutex& Manager::ServerMutex(const std::string& server) {
  std::lock_guard guard(server_mutexes_mutex_);
  return server_mutexes_[server];  // std::map never moves its values
}

}  // namespace poolkeeper::controller
