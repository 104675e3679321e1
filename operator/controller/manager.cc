#include "controller/manager.h"

#include <ctime>

#include "api/manifests.h"
#include "common/log.h"
#include "controller/reconciler.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

struct OwnedKind {
  const char* kind;
  const kube::ResourceType* type;
  const char* suffix;  // object name = pool name + suffix
};
constexpr OwnedKind kOwnedKinds[] = {
    {"ConfigMap", &kube::resources::kConfigMap, "-config"},
    {"Secret", &kube::resources::kSecret, "-auth"},
    {"Service", &kube::resources::kService, ""},
    {"PodDisruptionBudget", &kube::resources::kPodDisruptionBudget, ""},
    {"Deployment", &kube::resources::kDeployment, ""},
};

const OwnedKind* FindKind(const std::string& kind) {
  for (const auto& k : kOwnedKinds) {
    if (kind == k.kind) return &k;
  }
  return nullptr;
}

std::pair<std::string, std::string> SplitKey(const std::string& key) {
  auto slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

std::string Rfc3339Now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
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

bool OwnedBy(const json& object, const std::string& uid) {
  for (const auto& ref : object.value("/metadata/ownerReferences"_json_pointer, json::array())) {
    if (ref.value("uid", "") == uid) return true;
  }
  return false;
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
      index_(options_.defaults) {
  kube::InformerOptions pool_options{.type = kube::resources::kConnectionPool,
                                     .watch_timeout = options_.watch_timeout};
  pools_ =
      std::make_unique<kube::InformerGroup>(client_, clock_, pool_options, options_.namespaces);
  pools_->AddHandlers({
      .on_add = [this](const kube::ObjectPtr& o) { OnPool(nullptr, o); },
      .on_update = [this](const kube::ObjectPtr& b, const kube::ObjectPtr& a) { OnPool(b, a); },
      .on_delete = [this](const kube::ObjectPtr& o) { OnPool(o, nullptr); },
  });
  for (const auto& kind : kOwnedKinds) {
    kube::InformerOptions owned_options{.type = *kind.type,
                                        .label_selector = std::string(kube::kManagedBySelector),
                                        .watch_timeout = options_.watch_timeout};
    auto group =
        std::make_unique<kube::InformerGroup>(client_, clock_, owned_options, options_.namespaces);
    auto handler = [this](const kube::ObjectPtr& o) { OnOwned(o); };
    group->AddHandlers({
        .on_add = handler,
        .on_update = [this](const kube::ObjectPtr&, const kube::ObjectPtr& a) { OnOwned(a); },
        .on_delete = handler,
    });
    owned_[kind.kind] = std::move(group);
  }
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
  pools_->Start();
}

bool Manager::Synced() const {
  if (!pools_->HasSynced()) return false;
  for (const auto& [kind, group] : owned_) {
    if (!group->HasSynced()) return false;
  }
  return true;
}

bool Manager::WaitForSync(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!pools_->WaitForSync(timeout)) return false;
  for (const auto& [kind, group] : owned_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !group->WaitForSync(left)) return false;
  }
  return true;
}

void Manager::StartWorkers() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
}

bool Manager::Stop(std::chrono::milliseconds drain) {
  queue_.ShutDown();
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

void Manager::EnqueueServer(const std::string& server, const std::string& except) {
  if (server.empty()) return;
  for (const auto& key : index_.KeysOnServer(server)) {
    if (key != except) Enqueue(key);
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

void Manager::OnOwned(const kube::ObjectPtr& object) {
  std::string owner = OwnerKey(*object);
  if (!owner.empty()) Enqueue(owner);
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
    auto outcome = ReconcileKey(*key);
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

Result<Manager::Outcome> Manager::ReconcileKey(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  kube::ObjectPtr object = pools_->Get(ns, name);
  if (!object) return Outcome{};  // deleted: the garbage collector removes what it owned
  const std::string uid = object->value("/metadata/uid"_json_pointer, "");
  auto entry = index_.Find(key);

  PoolInputs in;
  in.pool = *object;
  if (entry && entry->pool) {
    in.server_pools = index_.OnServer(entry->server);
    auto& deployments = *owned_.at("Deployment");
    for (const auto& pool : in.server_pools) {
      auto deployment = deployments.Get(pool.metadata.namespace_, pool.metadata.name);
      if (!deployment || !OwnedBy(*deployment, pool.metadata.uid)) continue;
      if (auto planned = PlannedConnections(*deployment)) {
        in.running[pool.metadata.namespace_ + "/" + pool.metadata.name] = *planned;
      }
    }
  }
  api::Manifests secrets;
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
          secrets.secrets[{secret_ns, secret_name}] = std::move(*secret);
        }
      }
    }
  }
  in.secrets = &secrets;
  for (const auto& kind : kOwnedKinds) {
    auto stored = owned_.at(kind.kind)->Get(ns, name + kind.suffix);
    if (stored && OwnedBy(*stored, uid)) in.owned[kind.kind] = *stored;
  }
  in.now = Rfc3339Now();
  in.defaults = options_.defaults;

  ReconcileResult result = Reconcile(in);
  for (const json& desired : result.apply) {
    const OwnedKind* kind = FindKind(desired.value("kind", ""));
    if (!kind) return Fail(ErrorCode::kInternal, "no resource type for " + desired.dump());
    auto applied = client_.Apply(*kind->type, desired);
    if (!applied) return std::unexpected(applied.error());
  }
  for (const auto& kind_name : result.delete_kinds) {
    const OwnedKind* kind = FindKind(kind_name);
    auto deleted = client_.Delete(
        *kind->type, ns, name + kind->suffix,
        {.precondition_uid = in.owned[kind_name].value("/metadata/uid"_json_pointer, "")});
    if (!deleted && deleted.error().code != ErrorCode::kNotFound) {
      return std::unexpected(deleted.error());
    }
  }
  if (result.status) {
    auto patched = client_.MergePatch(kube::resources::kConnectionPool, ns, name,
                                      {{"status", *result.status}}, "status");
    if (!patched && patched.error().code != ErrorCode::kNotFound) {
      return std::unexpected(patched.error());
    }
  }
  for (const auto& event : result.events) events_.Record(*object, event, in.now);
  if (!result.apply.empty() || result.status) {
    Log(LogLevel::kInfo, "reconciled",
        {{"pool", key},
         {"applied", std::to_string(result.apply.size())},
         {"status", result.status ? "updated" : "unchanged"},
         {"blocked", result.blocked_reason.empty() ? "no" : "yes"}});
  }
  return Outcome{};
}

std::vector<PoolBudgetFigures> Manager::Budgets() const {
  std::vector<PoolBudgetFigures> figures;
  for (const auto& object : pools_->List()) {
    const json budget = object->value("/status/budget"_json_pointer, json::object());
    if (budget.empty()) continue;
    figures.push_back({object->value("/metadata/namespace"_json_pointer, ""),
                       object->value("/metadata/name"_json_pointer, ""),
                       budget.value("usable", int64_t{0}), budget.value("allocated", int64_t{0}),
                       budget.value("headroom", int64_t{0})});
  }
  return figures;
}

uint64_t Manager::Relists() const {
  uint64_t relists = 0;
  auto count = [&relists](const kube::Informer& informer) {
    if (informer.Relists() > 1) relists += informer.Relists() - 1;
  };
  for (const auto& informer : pools_->informers()) count(*informer);
  for (const auto& [kind, group] : owned_) {
    for (const auto& informer : group->informers()) count(*informer);
  }
  std::lock_guard guard(secrets_mutex_);
  for (const auto& [key, informer] : secrets_) count(*informer);
  return relists;
}

QueueFigures Manager::Queue() const { return {queue_.Depth(), adds_.load(), retries_.load()}; }

}  // namespace poolkeeper::controller
