// A reconcile's inputs, read from the caches.
#include "controller/pool_inputs.h"

#include "common/digest.h"
#include "controller/object_key.h"
#include "controller/pool_writer.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

// The PostgresServer's CA, for a pool that verifies its server with it ("" for any other pool).
Result<std::string> ServerCa(const PoolCaches& caches, const budget::ServerDirectory& directory,
                             const IndexedPool& entry) {
  if (!entry.pool) return std::string();
  const budget::LazyPlacement placement = directory.PlaceLazily(*entry.pool);
  const api::ConnectionPool& placed = placement.Of(*entry.pool);
  const auto& tls = placed.spec.tls.server;
  if (!tls || !tls->ca_from_server) return std::string();
  const api::PostgresServer* server = directory.Find(placed.spec.server_ref);
  if (!server || !server->spec.ca_secret_ref) return std::string();  // placement refused it
  const api::NamespacedSecretRef& ref = *server->spec.ca_secret_ref;
  return secrets::ResolveServerCa(server->name, ref.namespace_, ref.name, caches.server_secrets);
}

}  // namespace

std::optional<PassTarget> Locate(const PoolCaches& caches, const std::string& key) {
  auto [ns, name] = SplitObjectKey(key);
  PassTarget target{.key = key, .object = caches.pools.Get(ns, name)};
  if (!target.object) return std::nullopt;
  target.entry = caches.index.Find(key);
  target.directory = caches.registry.Directory();
  if (target.entry && target.entry->pool) {
    target.budget_key = target.directory->BudgetKeyOf(target.entry->server);
  }
  return target;
}

PoolInputs Gather(const PoolCaches& caches, const PassTarget& target,
                  const api::ParseDefaults& defaults) {
  auto [ns, name] = SplitObjectKey(target.key);
  PoolInputs in;
  in.pool = *target.object;
  in.directory = target.directory.get();
  if (target.entry && target.entry->pool) {
    const std::set<std::string> references = target.directory->ReferencesOf(target.budget_key);
    in.server_pools = caches.index.OnServers(references);
    in.holdings = caches.holdings.OnServers(references);
  }
  for (const auto& pod : caches.holdings.PodsOf(target.key)) in.pods.push_back(*pod);
  if (target.entry) {
    for (const auto& secret_key : target.entry->secrets) {
      auto [secret_ns, secret_name] = SplitObjectKey(secret_key);
      if (auto secret = caches.secrets.Find(secret_ns, secret_name)) in.secrets.Put(*secret);
    }
    for (const auto& map_key : target.entry->config_maps) {
      auto [map_ns, map_name] = SplitObjectKey(map_key);
      if (auto map = caches.config_maps.Find(map_ns, map_name)) in.config_maps.Put(*map);
    }
    in.server_ca = ServerCa(caches, *target.directory, *target.entry);
  }
  const std::string uid = PoolUid(*target.object);
  for (const auto& kind : render::kOwnedKinds) {
    auto stored =
        caches.owned.at(std::string(kind.kind))->GetValue(ns, name + std::string(kind.suffix));
    if (!stored) continue;
    if (OwnedBy(*stored, uid)) {
      in.owned[std::string(kind.kind)] = std::move(*stored);
    } else {
      in.conflicts[std::string(kind.kind)] = DescribeForeign(kind.kind, *stored);
    }
  }
  in.now = Rfc3339Now();
  in.defaults = defaults;
  if (!defaults.agent_image.empty() && !StoredAgentPassword(in.owned)) {
    // RAND_bytes does not fail once OpenSSL is up; if it did, the reconciler says so.
    in.new_agent_password = RandomHex(24).value_or("");
  }
  return in;
}

}  // namespace poolkeeper::controller
