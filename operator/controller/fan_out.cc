// The informers' handlers: index updates, then the keys to reconcile.
#include "controller/fan_out.h"

#include "controller/pods.h"
#include "controller/reconciler.h"
#include "controller/server_ca_watch.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

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

// An authQuery pool came, went or changed: its PostgresServer sets the lookup up for its
// databases (or removes it) now rather than at the next observation.
void ObserveAuthQueryServer(const FanOutDeps& deps, const std::optional<IndexedPool>& entry) {
  if (entry && entry->pool && entry->pool->spec.auth_mode == api::AuthMode::kAuthQuery &&
      deps.observe_server) {
    deps.observe_server(entry->pool->spec.server_ref);
  }
}

}  // namespace

void FanOut::EnqueueServer(const std::string& reference, const std::string& except) {
  if (reference.empty()) return;
  auto directory = deps_.registry.Directory();
  for (const auto& key : deps_.pools.KeysOnServers(directory->SharingBudgetWith(reference))) {
    if (key != except) deps_.enqueue(key);
  }
}

// A server's figures, names or rules changed: every pool of the budgets it was and is part of is
// planned again.
void FanOut::OnServer(const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  std::set<std::string> touched = deps_.registry.Update(before.get(), after.get());
  for (const auto& key : deps_.pools.KeysOnServers(touched)) deps_.enqueue(key);
  // New, or a spec to act on: observe it now rather than at the next interval.
  if (after && deps_.observe_server && (!before || Generation(before) != Generation(after))) {
    deps_.observe_server(after->value("/metadata/name"_json_pointer, ""));
  }
  if (deps_.watch_server_cas) {
    deps_.watch_server_cas(ServerCaSecretKeys(deps_.registry.Directory()->servers()));
  }
}

void FanOut::OnPool(const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  const kube::ObjectPtr& current = after ? after : before;
  std::string key = kube::ObjectKey(*current);
  if (!after) {
    auto removed = deps_.pools.Remove(key);
    // Its budget is free: the pools on its server may now be admitted.
    if (removed) EnqueueServer(removed->server, key);
    ObserveAuthQueryServer(deps_, removed);
    return;
  }
  auto previous = deps_.pools.Upsert(*after);
  deps_.enqueue(key);
  // A changed spec changes what the pools after it on the same server can have.
  if (!before || Generation(before) != Generation(after)) {
    ObserveAuthQueryServer(deps_, previous);
    ObserveAuthQueryServer(deps_, deps_.pools.Find(key));
  }
  if (before && Generation(before) != Generation(after)) {
    auto now = deps_.pools.Find(key);
    if (previous) EnqueueServer(previous->server, key);
    if (now && (!previous || now->server != previous->server)) EnqueueServer(now->server, key);
  }
}

void FanOut::OnOwned(bool admits, const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  const kube::ObjectPtr& object = after ? after : before;
  if (admits) {
    // Less admitted frees budget for the other pools of the server.
    if (after) deps_.holdings.UpsertAdmitted(*after);
    if (!after) deps_.holdings.RemoveAdmitted(*before);
    if (!after || (before && PlannedConnections(*before) != PlannedConnections(*after))) {
      EnqueueServer(HoldingsIndex::ServerOf(*object), "");
    }
  }
  std::string owner = OwnerKey(*object);
  if (!owner.empty()) deps_.enqueue(owner);
}

// A pod's pool hears of it (readiness, a deletion waiting for it); when a pod is gone or has
// finished, what it held is free, so every pool on its server may now be admitted.
void FanOut::OnPod(const kube::ObjectPtr& before, const kube::ObjectPtr& after) {
  const kube::ObjectPtr& pod = after ? after : before;
  // The index first: a worker may take the key the moment it is queued, and reconciles read pods
  // from the index.
  if (after) {
    deps_.holdings.UpsertPod(after);
  } else {
    deps_.holdings.RemovePod(*before);
  }
  if (auto pool = PoolLabelKey(*pod)) deps_.enqueue(*pool);
  if (!after || (PodFinished(*after) && !(before && PodFinished(*before)))) {
    EnqueueServer(HoldingsIndex::ServerOf(*pod), "");
  }
}

// A password changed (or appeared, or is gone): the pools using it render their userlist again.
void FanOut::OnSecret(const std::string& secret_key) {
  for (const auto& key : deps_.pools.KeysReferencing(secret_key)) deps_.enqueue(key);
}

void FanOut::OnConfigMap(const std::string& config_map_key) {
  for (const auto& key : deps_.pools.KeysReferencingConfigMap(config_map_key)) deps_.enqueue(key);
}

// Only the pools placed on a server that names the Secret: other servers sharing its budget
// (aliases, one system identifier) verify with their own CA.
void FanOut::OnServerCaSecret(const std::string& secret_key) {
  std::set<std::string> references;
  for (const auto& server : deps_.registry.Directory()->servers()) {
    const auto& ref = server.spec.ca_secret_ref;
    if (ref && ref->namespace_ + "/" + ref->name == secret_key) {
      references.insert(api::ServerRefKey(server.name));
    }
  }
  if (references.empty()) return;
  for (const auto& key : deps_.pools.KeysOnServers(references)) deps_.enqueue(key);
}

}  // namespace poolkeeper::controller
