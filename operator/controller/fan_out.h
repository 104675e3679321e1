// What the informers' events mean for the work queue: each handler keeps the operator's indexes
// current (pools, holdings, PostgresServers) and then names every pool that
// must be reconciled again. A server's budget is shared, so a change that frees or moves budget
// (a pool deleted or its spec changed, a pod gone or finished, a smaller admitted figure, a
// PostgresServer's figures) queues every pool of that budget, not only the one it concerns.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "controller/holdings.h"
#include "controller/pool_index.h"
#include "controller/server_registry.h"
#include "kube/informer.h"

namespace poolkeeper::controller {

struct FanOutDeps {
  PoolIndex& pools;
  HoldingsIndex& holdings;
  ServerRegistry& registry;
  std::function<void(const std::string& pool_key)> enqueue;
  // Observe this PostgresServer now (created, or its spec changed); empty: nothing observes them.
  std::function<void(const std::string& server_name)> observe_server;
  // The PostgresServers changed: the CA Secrets they now name ("namespace/name",
  // ServerCaSecretKeys), to be watched (ServerCaWatch::Track); empty: nothing watches them.
  std::function<void(const std::set<std::string>& ca_secret_keys)> watch_server_cas;
};

class FanOut {
 public:
  explicit FanOut(FanOutDeps deps) : deps_(std::move(deps)) {}

  // `before` is null for an add, `after` null for a delete.
  void OnPool(const kube::ObjectPtr& before, const kube::ObjectPtr& after);
  void OnServer(const kube::ObjectPtr& before, const kube::ObjectPtr& after);
  // An owned object (render::kOwnedKinds); `admits` for the ConfigMap, which carries what its pool
  // was admitted with.
  void OnOwned(bool admits, const kube::ObjectPtr& before, const kube::ObjectPtr& after);
  void OnPod(const kube::ObjectPtr& before, const kube::ObjectPtr& after);
  // A labelled Secret ("namespace/name") was listed, changed or deleted, or gained or lost the
  // label: the pools referencing it.
  void OnSecret(const std::string& secret_key);
  // A labelled ConfigMap likewise (a server CA): the pools whose caRef names it.
  void OnConfigMap(const std::string& config_map_key);
  // A PostgresServer's CA Secret (spec.caSecretRef, "namespace/name") changed or is gone: the
  // pools placed on the servers that name it.
  void OnServerCaSecret(const std::string& secret_key);

 private:
  // Every pool of the budget `reference` (a pool's or pod's server reference) belongs to, but
  // `except`.
  void EnqueueServer(const std::string& reference, const std::string& except);

  FanOutDeps deps_;
};

}  // namespace poolkeeper::controller
