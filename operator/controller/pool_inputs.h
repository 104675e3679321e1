// Gathering what one reconcile reads (PoolInputs, reconciler.h) from the operator's caches: the
// pool as stored, every valid pool of its budget, what exists on that budget's servers, the pool's
// pods, its password Secrets and its owned objects (or, when a name is taken by someone else's
// object, the conflict). In two steps, because a pass that can raise what the budget holds takes
// its budget's lock between them (NeedsBudgetLock, pool_writer.h): Locate says which budget the
// pool is in, Gather reads the rest, under the lock for such a pass, so each of them sees the pods
// the one before it created.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "budget/servers.h"
#include "controller/holdings.h"
#include "controller/pool_index.h"
#include "controller/reconciler.h"
#include "controller/server_registry.h"
#include "kube/informer.h"

namespace poolkeeper::controller {

// The caches a reconcile reads; the Manager owns them.
struct PoolCaches {
  const kube::InformerGroup& pools;
  const std::map<std::string, std::unique_ptr<kube::InformerGroup>>& owned;  // by kind
  const PoolIndex& index;
  const HoldingsIndex& holdings;
  const ServerRegistry& registry;
  const secrets::SecretSource& secrets;
  const secrets::SecretSource& config_maps;     // labelled ConfigMaps (secrets::ParseConfigMap)
  const secrets::SecretSource& server_secrets;  // PostgresServers' CA Secrets (ServerCaSecrets)
};

// A pass's pool and the budget it is planned in.
struct PassTarget {
  std::string key;         // namespace/name
  kube::ObjectPtr object;  // the pool as stored
  std::optional<IndexedPool> entry;
  // One directory snapshot for the whole pass, whatever changes meanwhile.
  std::shared_ptr<const budget::ServerDirectory> directory;
  std::string budget_key;  // "" for a pool that is not planned (invalid, deleting)
};

// nullopt when the pool is gone (the garbage collector removes what it owned).
std::optional<PassTarget> Locate(const PoolCaches& caches, const std::string& key);

// The inputs of the pass. `in.directory` points into `target`, which must outlive them.
PoolInputs Gather(const PoolCaches& caches, const PassTarget& target,
                  const api::ParseDefaults& defaults);

}  // namespace poolkeeper::controller
