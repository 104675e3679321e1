// The write side of a reconcile: what the pure Reconcile decided, carried out through the API in a
// safe order (the finalizer and the owned objects and deletions at once, the finalizer before any
// pod so no pod exists that a deletion would not wait for; the ConfigMap after them while pods
// mount them (its config-hash is what the pods' agents confirm, so it must not land before the
// userlist it covers; with no pod it goes with the rest); then the pods, the status), plus the one
// read a decision needs that the caches cannot answer: whether an owned object's name is free
// before its first write. The owned caches hold only objects labelled as poolkeeper's, and a forced
// server-side apply would take over anyone else's: the names held by everyone else are in
// ForeignNames, and a GET is made only for what those caches cannot answer.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "controller/foreign_names.h"
#include "controller/holdings.h"
#include "controller/parallel.h"
#include "controller/reconciler.h"
#include "kube/client.h"
#include "render/render.h"

namespace poolkeeper::controller {

// The API resource of one of render's owned kinds.
kube::ResourceType ResourceTypeOf(const render::OwnedKind& kind);
// The pool's uid, from the stored object.
std::string PoolUid(const nlohmann::json& pool);
// Whether `object` has an ownerReference to the object with `uid`.
bool OwnedBy(const nlohmann::json& object, const std::string& uid);
// "Deployment shop/app exists and is not owned by this ConnectionPool (...)".
std::string DescribeForeign(std::string_view kind, const nlohmann::json& object);

// Secret, Service and PodDisruptionBudget together (the ConfigMap follows them).
inline constexpr size_t kPoolParallelWrites = 4;

struct PoolWriterOptions {
  // Names held by objects poolkeeper does not manage; null: every check is a GET.
  const ForeignNames* foreign = nullptr;
  // Where the requests of a pass run at once (parallel.h); null: one after another.
  TaskPool* helpers = nullptr;
  size_t parallel = kPoolParallelWrites;  // at most this many of the pool's requests at once
};

// Whether carrying out `result` can raise what the budget's servers hold, so its plan must be
// made under the budget's lock (manager.cc): pods made, a pod's connection figure changed, or the
// admitted configuration (the ConfigMap) changed while pods mount it (their agents RELOAD it).
// Removing pods, a status, or the objects of a pool with no pod cannot: no connection comes of
// them.
bool NeedsBudgetLock(const PoolInputs& in, const ReconcileResult& result);

class PoolWriter {
 public:
  // Pods it creates enter `holdings` at once, before the informer sees them, so the next plan on
  // the same server counts them even if the cache is behind.
  using Options = PoolWriterOptions;
  PoolWriter(kube::Client& client, HoldingsIndex& holdings, Options options = {})
      : client_(client), holdings_(holdings), options_(options) {}

  // For every object `result` would apply that `in.owned` lacks, whether its name is free: a
  // lookup in ForeignNames when its cache has listed (a name held by someone else is a conflict
  // in in.conflicts; a free one needs nothing), else a GET. What a GET finds that the pool owns
  // (the cache is behind our own write, or the label was taken off) joins in.owned; anything else
  // is a conflict. Returns true when `in` changed, and the pool must be reconciled again with it.
  Result<bool> CheckNamesFree(PoolInputs& in, const ReconcileResult& result);

  // Writes what `result` decided for the pool `in.pool`. Stops at the first failure.
  Status Write(const PoolInputs& in, const ReconcileResult& result);
  // Write in two parts: what the budget counts (the finalizer added, owned objects, pods), then
  // what only tells or ends (the status, the finalizer removed), which no other plan waits for.
  Status WriteObjects(const PoolInputs& in, const ReconcileResult& result);
  Status WriteStatus(const PoolInputs& in, const ReconcileResult& result);

 private:
  Status WriteFinalizer(const nlohmann::json& pool, FinalizerChange change);
  kube::Client& client_;
  HoldingsIndex& holdings_;
  Options options_;
};

}  // namespace poolkeeper::controller
