#include "controller/pool_index.h"

#include <algorithm>

#include "api/parse.h"
#include "budget/servers.h"
#include "common/json_get.h"
#include "controller/auth_query.h"
#include "controller/object_key.h"
#include "controller/reconciler.h"

namespace poolkeeper::controller {

namespace {

template <typename Map, typename Key>
void Unlink(Map& index, const std::string& bucket, const Key& key) {
  auto it = index.find(bucket);
  if (it == index.end()) return;
  it->second.erase(key);
  if (it->second.empty()) index.erase(it);
}

}  // namespace

std::optional<IndexedPool> PoolIndex::Upsert(const nlohmann::json& object) {
  IndexedPool entry;
  const nlohmann::json metadata = object.value("metadata", nlohmann::json::object());
  entry.key = JsonGet<std::string>(metadata, "namespace", "") + "/" +
              JsonGet<std::string>(metadata, "name", "");
  entry.generation = JsonGet<int64_t>(metadata, "generation", int64_t{0});
  auto parsed = api::ParseConnectionPool(object, defaults_);
  // A pool being deleted demands nothing more: its pods are charged as holdings until gone.
  // Nor does one the pod policy refuses: its reconcile says why.
  if (parsed && !metadata.contains("deletionTimestamp") &&
      api::CheckPodPolicy(policy_, *parsed).empty()) {
    entry.server = budget::ServerDirectory::ReferenceKey(*parsed);
    if (parsed->spec.auth_mode == api::AuthMode::kAuthQuery) {
      // No application Secret is read; the auth role's Secret of the server is.
      if (!auth_secret_namespace_.empty()) {
        entry.secrets.insert(
            ObjectKey(auth_secret_namespace_, AuthSecretName(parsed->spec.server_ref)));
      }
    } else {
      for (const auto& user : parsed->spec.users) {
        entry.secrets.insert(ObjectKey(parsed->metadata.namespace_, user.password_secret_ref.name));
      }
    }
    // The TLS Secrets too: a renewed certificate must reach the pool's pods like a new password.
    const api::TlsSpec& tls = parsed->spec.tls;
    if (tls.client) {
      entry.secrets.insert(
          ObjectKey(parsed->metadata.namespace_, tls.client->certificate_secret_name));
    }
    if (tls.server && tls.server->ca_ref && !tls.server->ca_ref->secret_name.empty()) {
      entry.secrets.insert(ObjectKey(parsed->metadata.namespace_, tls.server->ca_ref->secret_name));
    } else if (tls.server && tls.server->ca_ref) {
      entry.config_maps.insert(
          ObjectKey(parsed->metadata.namespace_, tls.server->ca_ref->config_map_name));
    }
    entry.pool = std::make_shared<const api::ConnectionPool>(std::move(*parsed));
  }
  std::lock_guard guard(mutex_);
  std::optional<IndexedPool> before;
  if (auto it = pools_.find(entry.key); it != pools_.end()) {
    before = std::move(it->second);
    if (before->pool) Unlink(by_server_, before->server, LedgerPosition::Of(*before->pool));
    for (const auto& secret : before->secrets) Unlink(by_secret_, secret, entry.key);
    for (const auto& map : before->config_maps) Unlink(by_config_map_, map, entry.key);
  }
  if (entry.pool) by_server_[entry.server].emplace(LedgerPosition::Of(*entry.pool), entry.pool);
  for (const auto& secret : entry.secrets) by_secret_[secret].insert(entry.key);
  for (const auto& map : entry.config_maps) by_config_map_[map].insert(entry.key);
  pools_[entry.key] = std::move(entry);
  return before;
}

std::optional<IndexedPool> PoolIndex::Remove(const std::string& key) {
  std::lock_guard guard(mutex_);
  auto it = pools_.find(key);
  if (it == pools_.end()) return std::nullopt;
  IndexedPool removed = std::move(it->second);
  pools_.erase(it);
  if (removed.pool) Unlink(by_server_, removed.server, LedgerPosition::Of(*removed.pool));
  for (const auto& secret : removed.secrets) Unlink(by_secret_, secret, key);
  for (const auto& map : removed.config_maps) Unlink(by_config_map_, map, key);
  return removed;
}

std::vector<budget::SharedPool> PoolIndex::OnServers(
    const std::set<std::string>& references) const {
  std::vector<const std::map<LedgerPosition, budget::SharedPool>*> ledgers;
  size_t count = 0;
  std::lock_guard guard(mutex_);
  for (const auto& reference : references) {
    if (auto it = by_server_.find(reference); it != by_server_.end()) {
      ledgers.push_back(&it->second);
      count += it->second.size();
    }
  }
  std::vector<budget::SharedPool> pools;
  pools.reserve(count);
  // Nearly always one reference holds them all; a budget named several ways (a serverRef and an
  // inline endpoint) merges its ledgers, each already in order.
  for (const auto* ledger : ledgers) {
    const auto middle = static_cast<std::ptrdiff_t>(pools.size());
    for (const auto& [position, pool] : *ledger) pools.push_back(pool);
    std::ranges::inplace_merge(pools, pools.begin() + middle,
                               [](const budget::SharedPool& a, const budget::SharedPool& b) {
                                 return LedgerBefore(*a, *b);
                               });
  }
  return pools;
}

std::vector<std::string> PoolIndex::KeysOnServers(const std::set<std::string>& references) const {
  std::lock_guard guard(mutex_);
  std::set<std::string> keys;
  for (const auto& reference : references) {
    if (auto it = by_server_.find(reference); it != by_server_.end()) {
      for (const auto& [position, pool] : it->second) {
        keys.insert(ObjectKey(position.namespace_, position.name));
      }
    }
  }
  return {keys.begin(), keys.end()};
}

std::vector<std::string> PoolIndex::KeysReferencing(const std::string& secret_key) const {
  std::lock_guard guard(mutex_);
  auto it = by_secret_.find(secret_key);
  if (it == by_secret_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> PoolIndex::KeysReferencingConfigMap(
    const std::string& config_map_key) const {
  std::lock_guard guard(mutex_);
  auto it = by_config_map_.find(config_map_key);
  if (it == by_config_map_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::set<std::string> PoolIndex::ReferencedSecrets() const {
  std::lock_guard guard(mutex_);
  std::set<std::string> keys;
  for (const auto& [secret, pools] : by_secret_) keys.insert(secret);
  return keys;
}

std::optional<IndexedPool> PoolIndex::Find(const std::string& key) const {
  std::lock_guard guard(mutex_);
  auto it = pools_.find(key);
  if (it == pools_.end()) return std::nullopt;
  return it->second;
}

size_t PoolIndex::Size() const {
  std::lock_guard guard(mutex_);
  return pools_.size();
}

}  // namespace poolkeeper::controller
