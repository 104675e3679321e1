// Watches the CA Secrets PostgresServers name (spec.caSecretRef) so that a renewed or replaced CA
// reaches the pools that verify their server with it (api::ServerTlsSpec::ca_from_server: the
// reconciler copies ca.crt into the pool's ConfigMap) within a watch event, not at their next
// resync. ServerCaSecrets still does the reading; this only says when.
//
// Such a Secret may be in any namespace and carries no opt-in label, so the label-selected
// Secret cache (exposed_secrets.h) does not see it, and a cert-manager CA issuer's Secret also
// holds the CA's private key. So each named Secret gets one watch of its own, field-selected on
// its name in its namespace, and its cache keeps metadata only (the trim drops everything else as
// it is decoded): the operator learns that the Secret changed, never what is in it. The number of
// watches is the number of distinct Secrets PostgresServers name, which only cluster
// administrators create: a handful, not one per pool. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "api/postgres_server.h"
#include "common/clock.h"
#include "common/error.h"
#include "kube/client.h"
#include "kube/informer.h"

namespace poolkeeper::controller {

// "namespace/name" of every caSecretRef among `servers`.
std::set<std::string> ServerCaSecretKeys(const std::vector<api::PostgresServer>& servers);
// The watches' trim: a Secret cut to metadata.name, namespace, uid and resourceVersion.
void KeepSecretIdentity(nlohmann::json& object);

class ServerCaWatch {
 public:
  // Called on the thread of a watch's informer (kube::Informer: keep it short) with
  // "namespace/name" when that Secret is first listed, changes (a new resourceVersion) or is
  // deleted.
  using OnChange = std::function<void(const std::string& secret_key)>;

  ServerCaWatch(kube::Client& client, const Clock& clock, std::chrono::seconds watch_timeout,
                OnChange on_change);
  ~ServerCaWatch();
  ServerCaWatch(const ServerCaWatch&) = delete;
  ServerCaWatch& operator=(const ServerCaWatch&) = delete;

  // The Secrets to watch now: a watch for each new key (running at once once Start was called),
  // and the watches of keys no longer named stopped. Waits for nothing (it runs in the
  // PostgresServers' handler): a stopped watch is dropped by a later Track once its attempt in
  // flight has ended. Never call it from this class's OnChange.
  void Track(const std::set<std::string>& secret_keys);
  // Runs the tracked watches on `loop`, and from now on every one Track adds.
  void Start(kube::InformerLoop& loop);
  void Stop();  // ends and forgets every watch, waiting for their attempts in flight
  // One attempt of every watch on the calling thread (tests; not concurrently with Track).
  void Step();
  std::set<std::string> Watched() const;

 private:
  std::unique_ptr<kube::Informer> MakeWatch(const std::string& secret_key) const;

  kube::Client& client_;
  const Clock& clock_;
  const std::chrono::seconds watch_timeout_;
  const OnChange on_change_;
  mutable std::mutex mutex_;
  kube::InformerLoop* loop_ = nullptr;                              // set by Start
  std::map<std::string, std::unique_ptr<kube::Informer>> watches_;  // by "namespace/name"
  std::vector<std::unique_ptr<kube::Informer>> retired_;  // stop requested, maybe in flight
};

}  // namespace poolkeeper::controller
