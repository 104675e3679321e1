// The name-selected Secret watches and the lookups reconciles make through them.
#include "controller/secret_watches.h"

#include <thread>
#include <vector>

#include "controller/object_key.h"

namespace poolkeeper::controller {
SecretWatches::SecretWatches(kube::Client& client, const Clock& clock,
                             std::chrono::seconds watch_timeout, OnChange on_change)
    : client_(client),
      clock_(clock),
      watch_timeout_(watch_timeout),
      on_change_(std::move(on_change)) {}

SecretWatches::~SecretWatches() { Stop(); }

void SecretWatches::Start() {
  std::lock_guard guard(mutex_);
  started_ = true;
  for (auto& [key, informer] : watches_) informer->Start();
}

void SecretWatches::Stop() {
  std::map<std::string, std::shared_ptr<kube::Informer>> watches;
  {
    std::lock_guard guard(mutex_);
    started_ = false;
    watches = watches_;
  }
  // Outside the lock: a watch's handler may call into the caller's code, which may call Watch().
  for (auto& [key, informer] : watches) informer->Stop();
}

void SecretWatches::Watch(const std::set<std::string>& wanted) {
  std::lock_guard guard(mutex_);
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    // Stop() waits for the watch to end (its next event at the latest): not on this thread, which
    // delivers the pool events.
    std::thread([retired = std::move(it->second)] { retired->Stop(); }).detach();
    it = watches_.erase(it);
  }
  for (const auto& secret_key : wanted) {
    if (watches_.contains(secret_key)) continue;
    auto [ns, name] = SplitObjectKey(secret_key);
    kube::InformerOptions options{.type = kube::resources::kSecret,
                                  .ns = ns,
                                  .field_selector = "metadata.name=" + name,
                                  .watch_timeout = watch_timeout_};
    auto informer = std::make_shared<kube::Informer>(client_, clock_, options);
    auto changed = [this, secret_key] {
      if (on_change_) on_change_(secret_key);
    };
    informer->AddHandlers({
        .on_add = [changed](const kube::ObjectPtr&) { changed(); },
        .on_update = [changed](const kube::ObjectPtr&, const kube::ObjectPtr&) { changed(); },
        .on_delete = [changed](const kube::ObjectPtr&) { changed(); },
    });
    if (started_) informer->Start();
    watches_[secret_key] = std::move(informer);
  }
}

void SecretWatches::Step() {
  std::vector<std::shared_ptr<kube::Informer>> watches;
  {
    std::lock_guard guard(mutex_);
    for (const auto& [key, informer] : watches_) watches.push_back(informer);
  }
  for (const auto& informer : watches) (void)informer->Step();
}

bool SecretWatches::Synced(const std::set<std::string>& keys) const {
  std::lock_guard guard(mutex_);
  for (const auto& key : keys) {
    auto it = watches_.find(key);
    if (it == watches_.end() || !it->second->HasSynced()) return false;
  }
  return true;
}

std::optional<secrets::Secret> SecretWatches::Find(const std::string& namespace_,
                                                   const std::string& name) const {
  kube::ObjectPtr stored;
  {
    std::lock_guard guard(mutex_);
    auto it = watches_.find(ObjectKey(namespace_, name));
    if (it == watches_.end()) return std::nullopt;
    stored = it->second->Get(namespace_, name);
  }
  if (!stored) return std::nullopt;
  auto secret = secrets::ParseSecret(*stored);
  if (!secret) return std::nullopt;  // as good as missing: the pool reports it
  return std::move(*secret);
}

std::set<std::string> SecretWatches::Watched() const {
  std::lock_guard guard(mutex_);
  std::set<std::string> keys;
  for (const auto& [key, informer] : watches_) keys.insert(key);
  return keys;
}

uint64_t SecretWatches::Relists() const {
  std::lock_guard guard(mutex_);
  uint64_t relists = 0;
  for (const auto& [key, informer] : watches_) {
    if (informer->Relists() > 1) relists += informer->Relists() - 1;
  }
  return relists;
}

}  // namespace poolkeeper::controller
