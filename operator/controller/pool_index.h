// The pools the operator knows, parsed once per change rather than once per reconcile: by key, by
// the server reference they name (budget::ServerDirectory::ReferenceKey: a PostgresServer, or an
// inline host:port; the directory says which references are one budget) and by the password
// Secrets they reference. The
// informer handlers keep it current; reconciles read it. Thread-safe.
//
// A parsed pool is shared, never copied, with the readers: a reconcile plans every pool of its
// budget, and a budget has hundreds. Each server's pools are kept in ledger order, so a read
// neither copies nor sorts them.
#pragma once

#include <compare>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "api/connection_pool.h"
#include "api/parse.h"
#include "api/pod_policy.h"
#include "budget/planner.h"

namespace poolkeeper::controller {

struct IndexedPool {
  std::string key;     // namespace/name
  std::string server;  // reference key, empty when the spec does not parse or it is being deleted
  int64_t generation = 0;
  // Absent when the spec does not parse, the pod policy refuses it, or it is being deleted: such a
  // pool is in no ledger and its Secrets are not read. Immutable: an update stores a new one.
  budget::SharedPool pool;
  std::set<std::string> secrets;  // namespace/name of referenced password Secrets
  // namespace/name of referenced ConfigMaps (a server CA: spec.tls.server.caRef.configMapName)
  std::set<std::string> config_maps;
};

// Where a pool stands in its budget's ledger: creationTimestamp, then namespace/name.
struct LedgerPosition {
  std::string creation_timestamp;
  std::string namespace_;
  std::string name;
  static LedgerPosition Of(const api::ConnectionPool& pool) {
    return {pool.metadata.creation_timestamp, pool.metadata.namespace_, pool.metadata.name};
  }
  auto operator<=>(const LedgerPosition&) const = default;
};

// Whether pool `a` comes before `b` in a ledger: LedgerPosition's order, without copying it out.
inline bool LedgerBefore(const api::ConnectionPool& a, const api::ConnectionPool& b) {
  return std::tie(a.metadata.creation_timestamp, a.metadata.namespace_, a.metadata.name) <
         std::tie(b.metadata.creation_timestamp, b.metadata.namespace_, b.metadata.name);
}

class PoolIndex {
 public:
  // `auth_secret_namespace`: where the auth role's Secret of each PostgresServer is
  // (auth_query.h); an authQuery pool references that Secret, so its change reaches the pool.
  explicit PoolIndex(api::ParseDefaults defaults = {}, api::PodPolicy policy = {},
                     std::string auth_secret_namespace = {})
      : defaults_(std::move(defaults)),
        policy_(std::move(policy)),
        auth_secret_namespace_(std::move(auth_secret_namespace)) {}
  // Parses and stores the pool; returns what was stored before (if anything).
  std::optional<IndexedPool> Upsert(const nlohmann::json& object);
  std::optional<IndexedPool> Remove(const std::string& key);

  // Every valid pool naming one of `references`, in ledger order.
  std::vector<budget::SharedPool> OnServers(const std::set<std::string>& references) const;
  std::vector<std::string> KeysOnServers(const std::set<std::string>& references) const;
  std::vector<std::string> KeysReferencing(const std::string& secret_key) const;
  std::vector<std::string> KeysReferencingConfigMap(const std::string& config_map_key) const;
  std::set<std::string> ReferencedSecrets() const;
  std::optional<IndexedPool> Find(const std::string& key) const;
  size_t Size() const;

 private:
  const api::ParseDefaults defaults_;
  const api::PodPolicy policy_;
  const std::string auth_secret_namespace_;
  mutable std::mutex mutex_;
  std::map<std::string, IndexedPool> pools_;
  // By reference key, each server's valid pools in ledger order.
  std::map<std::string, std::map<LedgerPosition, budget::SharedPool>> by_server_;
  std::map<std::string, std::set<std::string>> by_secret_;
  std::map<std::string, std::set<std::string>> by_config_map_;
};

}  // namespace poolkeeper::controller
