// The password Secrets the pools reference, each watched on its own (a name-selected informer in
// its namespace), so the operator never caches the cluster's other Secrets. It is the operator's
// secrets::SecretSource: reconciles read the passwords from these caches. The watches follow the
// pools: Watch() opens those newly referenced and stops those no pool references any more, and a
// Secret's change is reported by key (namespace/name) so the pools using it are reconciled again.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/clock.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "secrets/secrets.h"

namespace poolkeeper::controller {

class SecretWatches : public secrets::SecretSource {
 public:
  // Called on a watch's thread when its Secret is listed, changes or is deleted.
  using OnChange = std::function<void(const std::string& secret_key)>;

  SecretWatches(kube::Client& client, const Clock& clock, std::chrono::seconds watch_timeout,
                OnChange on_change);
  ~SecretWatches() override;  // stops and joins every watch
  SecretWatches(const SecretWatches&) = delete;
  SecretWatches& operator=(const SecretWatches&) = delete;

  // Watches run on threads of their own from now on, those already open and those opened later.
  // Until then they only move when Step() is called (tests).
  void Start();
  // Stops every watch (they end at their next data; see kube::Informer::Stop).
  void Stop();
  // Watches exactly `wanted` ("namespace/name" keys).
  void Watch(const std::set<std::string>& wanted);
  // One attempt of every watch, on the calling thread: tests drive the watches with it.
  void Step();

  // Whether every one of `keys` is watched and its watch has listed: until then a missing Secret
  // may only be one the cache has not seen yet.
  bool Synced(const std::set<std::string>& keys) const;
  std::optional<secrets::Secret> Find(const std::string& namespace_,
                                      const std::string& name) const override;
  std::set<std::string> Watched() const;
  // LISTs the watches made after their first (a watch expired or broke).
  uint64_t Relists() const;

 private:
  kube::Client& client_;
  const Clock& clock_;
  const std::chrono::seconds watch_timeout_;
  const OnChange on_change_;
  mutable std::mutex mutex_;
  bool started_ = false;
  // Shared so that one being retired can be stopped off the caller's thread.
  std::map<std::string, std::shared_ptr<kube::Informer>> watches_;  // by namespace/name
};

}  // namespace poolkeeper::controller
