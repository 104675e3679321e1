#include "controller/manager.h"

#include "api/secrets.h"
#include "common/log.h"
#include "controller/pods.h"
#include "controller/pool_writer.h"
#include "controller/reconciler.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

std::pair<std::string, std::string> SplitKey(const std::string& key) {
  auto slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

// The ConnectionPool that owns `object` (namespace/name), or "" when none does.
std::string OwnerKey(const json& object) {
  const json metadata = object.value("metadata", json::object());
  for (const auto& ref : metadata.value("ownerReferences", json::array())) {
    if (ref.value("kind", "") == "ConnectionPool" &&
        ref.value("apiVersion", "").starts_with("poolkeeper.io/")) {
      return metadata.value("namespace", "") + "/" + ref.value("name", "");
    }
  }
  return "";
}

int64_t Generation(const kube::ObjectPtr& object) {
  return object ? object->value("/metadata/generation"_json_pointer, int64_t{0}) : 0;
}

}  // namespace

Manager::Manager(kube::Client& client, const Clock& clock, ManagerOptions options)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      queue_(clock),
      events_(client, clock, options_.instance),
      index_(options_.defaults),
      holdings_(clock) {
  kube::InformerOptions pool_options{.type = kube::resources::kConnectionPool,
                                     .watch_timeout = options_.watch_timeout};
  pools_ =
      std::make_unique<kube::InformerGroup>(client_, clock_, pool_options, options_.namespaces);
  pools_->AddHandlers({
      .on_add = [this](const kube::ObjectPtr& o) { OnPool(nullptr, o); },
      .on_update = [this](const kube::ObjectPtr& b, const kube::ObjectPtr& a) { OnPool(b, a); },
      .on_delete = [this](const kube::ObjectPtr& o) { OnPool(o, nullptr); },
  });
  for (const auto& kind : render::kOwnedKinds) {
    auto group = LabelSelectedInformer(ResourceTypeOf(kind));
    const bool admits = kind.kind == "ConfigMap";  // carries what the pool was admitted with
    group->AddHandlers({
        .on_add = [this, admits](const kube::ObjectPtr& o) { OnOwned(admits, nullptr, o); },
        .on_update = [this, admits](const kube::ObjectPtr& b,
                                    const kube::ObjectPtr& a) { OnOwned(admits, b, a); },
        .on_delete = [this, admits](const kube::ObjectPtr& o) { OnOwned(admits, o, nullptr); },
    });
    owned_[std::string(kind.kind)] = std::move(group);
  }
  servers_ = std::make_unique<kube::Informer>(
      client_, clock_,
      kube::InformerOptions{.type = kPostgresServerType, .watch_timeout = options_.watch_timeout});
  servers_->AddHandlers({
      .on_add = [this](const kube::ObjectPtr& o) { OnServer(nullptr, o); },
      .on_update = [this](const kube::ObjectPtr& b, const kube::ObjectPtr& a) { OnServer(b, a); },
      .on_delete = [this](const kube::ObjectPtr& o) { OnServer(o, nullptr); },
  });
  if (options_.database) {
    server_observer_ = std::make_unique<ServerObserver>(
        ServerObserverDeps{client_, clock_, *options_.database, *servers_, registry_, index_,
                           holdings_, options_.ca_dir});
  }
  pods_ = LabelSelectedInformer(kube::resources::kPod);
  pods_->AddHandlers({
      .on_add = [this](const kube::ObjectPtr& o) { OnPod(nullptr, o); },
      .on_update = [this](const kube::ObjectPtr& b, const kube::ObjectPtr& a) { OnPod(b, a); },
      .on_delete = [this](const kube::ObjectPtr& o) { OnPod(o, nullptr); },
  });
}

std::unique_ptr<kube::InformerGroup> Manager::LabelSelectedInformer(
    const kube::ResourceType& type) {
  kube::InformerOptions options{.type = type,
                                .label_selector = std::string(kube::kManagedBySelector),
                                .watch_timeout = options_.watch_timeout};
  return std::make_unique<kube::InformerGroup>(client_, clock_, options, options_.namespaces);
}

Manager::~Manager() {
  queue_.ShutDown();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void Manager::SetObserver(ReconcileObserver observer) { observer_ = std::move(observer); }

void Manager::StartInformers() {
  for (auto& [kind, group] : owned_) group->Start();
  pods_->Start();
  servers_->Start();
  pools_->Start();
}

bool Manager::Synced() const {
  if (!pools_->HasSynced() || !pods_->HasSynced() || !ServersSynced()) return false;
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

void Manager::StartWorkers() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
  if (server_observer_) server_observer_->Start();
}

bool Manager::Stop(std::chrono::milliseconds drain) {
  queue_.ShutDown();
  if (server_observer_) server_observer_->Stop();
  auto deadline = std::chrono::steady_clock::now() + drain;
  while (busy_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a bounded drain, not a sync
  }
  bool drained = busy_ == 0;
  if (drained) {
    for (auto& worker : workers_) worker.join();
    workers_.clear();
  }
  return drained;
}

void Manager::Enqueue(const std::string& key) {
  ++adds_;
  queue_.Add(key);
}

void Manager::EnqueueServer(const std::string& reference, const std::string& except) {
  if (reference.empty()) return;
  auto directory = registry_.Directory();
  for (const auto& key : index_.KeysOnServers(directory->SharingBudgetWith(reference))) {
    if (key != except) Enqueue(key);
  }
}

// A server's figures, names or rules changed: every pool of the budgets it was and is part of is
// planned again.
void Manager::OnServer(const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  std::set<std::string> touched = registry_.Update(before.get(), after.get());
  for (const auto& key : index_.KeysOnServers(touched)) Enqueue(key);
  // New, or a spec to act on: observe it now rather than at the next interval.
  if (after && server_observer_ && (!before || Generation(before) != Generation(after))) {
    server_observer_->Poke(after->value("/metadata/name"_json_pointer, ""));
  }
}

void Manager::OnPool(const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  const kube::ObjectPtr& current = after ? after : before;
  std::string key = kube::ObjectKey(*current);
  if (!after) {
    auto removed = index_.Remove(key);
    // Its budget is free: the pools on its server may now be admitted.
    if (removed) EnqueueServer(removed->server, key);
    return;
  }
  auto previous = index_.Upsert(*after);
  EnsureSecretWatches();
  Enqueue(key);
  // A changed spec changes what the pools after it on the same server can have.
  if (before && Generation(before) != Generation(after)) {
    auto now = index_.Find(key);
    if (previous) EnqueueServer(previous->server, key);
    if (now && (!previous || now->server != previous->server)) EnqueueServer(now->server, key);
  }
}

void Manager::OnOwned(bool admits, const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  const kube::ObjectPtr& object = after ? after : before;
  if (admits) {
    // Less admitted frees budget for the other pools of the server.
    if (after) holdings_.UpsertAdmitted(*after);
    if (!after) holdings_.RemoveAdmitted(*before);
    if (!after || (before && PlannedConnections(*before) != PlannedConnections(*after))) {
      EnqueueServer(HoldingsIndex::ServerOf(*object), "");
    }
  }
  std::string owner = OwnerKey(*object);
  if (!owner.empty()) Enqueue(owner);
}

// A pod's pool hears of it (readiness, a deletion waiting for it); when a pod is gone or has
// finished, what it held is free, so every pool on its server may now be admitted.
void Manager::OnPod(const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  const kube::ObjectPtr& pod = after ? after : before;
  // The index first: a worker may take the key the moment it is queued, and reconciles read pods
  // from the index.
  if (after) {
    holdings_.UpsertPod(after);
  } else {
    holdings_.RemovePod(*before);
  }
  if (auto pool = PoolLabelKey(*pod)) Enqueue(*pool);
  if (!after || (PodFinished(*after) && !(before && PodFinished(*before)))) {
    EnqueueServer(HoldingsIndex::ServerOf(*pod), "");
  }
}

void Manager::EnsureSecretWatches() {
  std::set<std::string> wanted = index_.ReferencedSecrets();
  std::lock_guard guard(secrets_mutex_);
  for (auto it = secrets_.begin(); it != secrets_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    // Stop() waits for the watch to end (its next event at the latest): not on this thread, which
    // delivers the pool events.
    std::thread([retired = std::shared_ptr<kube::Informer>(std::move(it->second))] {
      retired->Stop();
    }).detach();
    it = secrets_.erase(it);
  }
  for (const auto& secret_key : wanted) {
    if (secrets_.contains(secret_key)) continue;
    auto [ns, name] = SplitKey(secret_key);
    kube::InformerOptions secret_options{.type = kube::resources::kSecret,
                                         .ns = ns,
                                         .field_selector = "metadata.name=" + name,
                                         .watch_timeout = options_.watch_timeout};
    auto informer = std::make_unique<kube::Informer>(client_, clock_, secret_options);
    auto requeue = [this, secret_key] {
      for (const auto& key : index_.KeysReferencing(secret_key)) Enqueue(key);
    };
    informer->AddHandlers({
        .on_add = [requeue](const kube::ObjectPtr&) { requeue(); },
        .on_update = [requeue](const kube::ObjectPtr&, const kube::ObjectPtr&) { requeue(); },
        .on_delete = [requeue](const kube::ObjectPtr&) { requeue(); },
    });
    informer->Start();
    secrets_[secret_key] = std::move(informer);
  }
}

void Manager::Work() {
  while (auto key = queue_.Get()) {
    ++busy_;
    auto started = std::chrono::steady_clock::now();
    auto outcome = ReconcileGuarded(*key);
    std::string result = "success";
    if (!outcome) {
      result = "error";
      const Error& error = outcome.error();
      Log(LogLevel::kWarn, "reconcile failed", {{"pool", *key}, {"error", error.message}});
      if (queue_.Retry(*key, error, options_.resync)) ++retries_;
    } else {
      queue_.Forget(*key);
      if (outcome->requeue_after.count() > 0) {
        result = "requeue";
        queue_.AddAfter(*key, outcome->requeue_after);
      } else {
        queue_.AddAfter(*key, options_.resync);
      }
    }
    queue_.Done(*key);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (observer_) observer_(*key, seconds, result);
    --busy_;
  }
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
  auto [ns, name] = SplitKey(key);
  kube::ObjectPtr object = pools_->Get(ns, name);
  if (!object) return Outcome{};  // gone: the garbage collector removes what it owned
  const std::string uid = PoolUid(*object);
  auto entry = index_.Find(key);

  // Pools of one budget are planned and their pods created one at a time: each plan must see
  // the pods the one before it created. One directory snapshot for the whole pass.
  auto directory = registry_.Directory();
  const std::string budget_key = entry && entry->pool ? directory->BudgetKeyOf(entry->server) : "";
  std::unique_lock server_lock(ServerMutex(budget_key));
  PoolInputs in;
  in.pool = *object;
  in.directory = directory.get();
  if (entry && entry->pool) {
    const std::set<std::string> references = directory->ReferencesOf(budget_key);
    in.server_pools = index_.OnServers(references);
    in.holdings = holdings_.OnServers(references);
  }
  for (const auto& pod : holdings_.PodsOf(key)) in.pods.push_back(*pod);
  if (entry) {
    std::lock_guard guard(secrets_mutex_);
    for (const auto& secret_key : entry->secrets) {
      auto it = secrets_.find(secret_key);
      // A watch just opened: wait for its first list rather than report the Secret missing.
      if (it == secrets_.end() || !it->second->HasSynced()) {
        return Outcome{.requeue_after = std::chrono::milliseconds(200)};
      }
      auto [secret_ns, secret_name] = SplitKey(secret_key);
      if (auto stored = it->second->Get(secret_ns, secret_name)) {
        if (auto secret = api::ParseSecret(*stored)) {
          in.secrets.Put(std::move(*secret));
        }
      }
    }
  }
  for (const auto& kind : render::kOwnedKinds) {
    auto stored = owned_.at(std::string(kind.kind))->Get(ns, name + std::string(kind.suffix));
    if (!stored) continue;
    if (OwnedBy(*stored, uid)) {
      in.owned[std::string(kind.kind)] = *stored;
    } else {
      in.conflicts[std::string(kind.kind)] = DescribeForeign(kind.kind, *stored);
    }
  }
  in.now = Rfc3339Now();
  in.defaults = options_.defaults;

  ReconcileResult result = Reconcile(in);
  PoolWriter writer(client_, holdings_);
  auto names = writer.CheckNamesFree(in, result);
  if (!names) return std::unexpected(names.error());
  if (*names) result = Reconcile(in);
  if (auto written = writer.Write(in, result); !written) return std::unexpected(written.error());
  for (const auto& event : result.events) events_.Record(*object, event, in.now);
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
  return Outcome{};
}

std::mutex& Manager::ServerMutex(const std::string& server) {
  std::lock_guard guard(server_mutexes_mutex_);
  return server_mutexes_[server];  // std::map never moves its values
}

}  // namespace poolkeeper::controller
