// The password Secrets pools may read: one informer that lists and watches only Secrets labelled
// secrets::kExposeLabel=true (cluster-wide, or one per watched namespace), whatever the number of
// pools or Secrets. The API server sends the operator no other Secret, so their data is never in
// its memory, and the operator holds a constant number of threads and watch connections (one
// watch per Secret made 1,100 pools 1,152 threads, and a pids limit ended the process).
//
// It is the operator's secrets::SecretSource. Find answers from the cache; for a Secret the cache
// does not hold it asks the API server for the Secret's metadata only (never its data), so a pool
// that references an existing but unlabelled Secret is told to add the label rather than that the
// Secret is missing. A labelled Secret's add, change or delete, and a label added or removed (the
// watch reports it as an add or a delete), is reported by key so the pools using it reconcile.
// Thread-safe.
//
// The same class, given kube::resources::kConfigMap, is the cache of the ConfigMaps pools may read
// (a server CA in spec.tls.server.caRef.configMapName), with the same label: a ConfigMap is not
// secret, but only a selector keeps the operator from holding every ConfigMap of the cluster, and
// a CA that is not watched would not roll the pods when it changes. Its values are
// secrets::ParseConfigMap's.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "secrets/secrets.h"

namespace poolkeeper::controller {

class ExposedSecrets : public secrets::SecretSource {
 public:
  // Called on an informer's thread with "namespace/name" of a Secret that was listed, changed,
  // deleted, or gained or lost the label.
  using OnChange = std::function<void(const std::string& secret_key)>;

  // `namespaces` as ManagerOptions: empty for all namespaces. `type`: kSecret or kConfigMap.
  ExposedSecrets(kube::Client& client, const Clock& clock, std::chrono::seconds watch_timeout,
                 const std::vector<std::string>& namespaces, OnChange on_change,
                 const kube::ResourceType& type = kube::resources::kSecret);

  void Start(kube::InformerLoop& loop);
  void Stop();
  void Step();  // one attempt of every informer on the calling thread (tests)

  // Whether every informer has listed: until then a missing Secret may only be one the cache has
  // not seen yet.
  bool HasSynced() const;
  // The labelled Secret from the cache; else, when it exists without the label, the Secret with
  // its labels and no data (ResolvePasswords refuses it, naming the label); else nullopt.
  std::optional<secrets::Secret> Find(const std::string& namespace_,
                                      const std::string& name) const override;
  size_t Size() const;       // labelled Secrets cached
  uint64_t Relists() const;  // LISTs after each informer's first (a watch expired or broke)
  const kube::InformerGroup& informers() const { return informers_; }

 private:
  // Parses what the cache or a metadata read holds, by the type given.
  Result<secrets::Secret> Parse(const nlohmann::json& object) const;

  kube::Client& client_;
  const kube::ResourceType type_;
  const OnChange on_change_;
  kube::InformerGroup informers_;
};

}  // namespace poolkeeper::controller
