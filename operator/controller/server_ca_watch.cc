// ServerCaWatch: one metadata-only, field-selected watch per PostgresServer CA Secret.
#include "controller/server_ca_watch.h"

#include "common/log.h"

namespace poolkeeper::controller {
using nlohmann::json;

// What the cache keeps of the Secret's metadata (the API server sends no data: metadata_only):
// enough to key it and to tell a change.
void KeepSecretIdentity(json& object) {
  json metadata = object.value("metadata", json::object());
  json kept = json::object();
  for (const char* key : {"name", "namespace", "uid", "resourceVersion"}) {
    if (metadata.contains(key)) kept[key] = metadata[key];
  }
  object = {{"metadata", std::move(kept)}};
}

std::set<std::string> ServerCaSecretKeys(const std::vector<api::PostgresServer>& servers) {
  std::set<std::string> keys;
  for (const auto& server : servers) {
    if (server.spec.ca_secret_ref) {
      keys.insert(server.spec.ca_secret_ref->namespace_ + "/" + server.spec.ca_secret_ref->name);
    }
  }
  return keys;
}

ServerCaWatch::ServerCaWatch(kube::Client& client, const Clock& clock,
                             std::chrono::seconds watch_timeout, OnChange on_change)
    : client_(client),
      clock_(clock),
      watch_timeout_(watch_timeout),
      on_change_(std::move(on_change)) {}

ServerCaWatch::~ServerCaWatch() { Stop(); }

std::unique_ptr<kube::Informer> ServerCaWatch::MakeWatch(const std::string& secret_key) const {
  const size_t slash = secret_key.find('/');
  auto informer = std::make_unique<kube::Informer>(
      client_, clock_,
      kube::InformerOptions{.type = kube::resources::kSecret,
                            .ns = secret_key.substr(0, slash),
                            .field_selector = "metadata.name=" + secret_key.substr(slash + 1),
                            .watch_timeout = watch_timeout_,
                            .metadata_only = true,
                            .trim = KeepSecretIdentity});
  auto changed = [this, secret_key](const kube::ObjectPtr&) {
    if (on_change_) on_change_(secret_key);
  };
  informer->AddHandlers({
      .on_add = changed,
      .on_update = [changed](const kube::ObjectPtr&,
                             const kube::ObjectPtr& after) { changed(after); },
      .on_delete = changed,
  });
  return informer;
}

void ServerCaWatch::Track(const std::set<std::string>& secret_keys) {
  std::lock_guard guard(mutex_);
  std::erase_if(retired_, [](const auto& watch) { return watch->Stopped(); });
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (secret_keys.contains(it->first)) {
      ++it;
    } else {
      it->second->RequestStop();
      retired_.push_back(std::move(it->second));
      it = watches_.erase(it);
    }
  }
  for (const auto& key : secret_keys) {
    if (watches_.contains(key) || key.find('/') == std::string::npos) continue;
    auto watch = MakeWatch(key);
    if (loop_ != nullptr) watch->Start(*loop_);
    watches_.emplace(key, std::move(watch));
  }
}

void ServerCaWatch::Start(kube::InformerLoop& loop) {
  std::lock_guard guard(mutex_);
  loop_ = &loop;
  for (auto& [key, watch] : watches_) watch->Start(loop);
}

void ServerCaWatch::Stop() {
  std::map<std::string, std::unique_ptr<kube::Informer>> watches;
  std::vector<std::unique_ptr<kube::Informer>> retired;
  {
    std::lock_guard guard(mutex_);
    loop_ = nullptr;
    watches.swap(watches_);
    retired.swap(retired_);
  }
  for (auto& [key, watch] : watches) watch->RequestStop();
  for (auto& [key, watch] : watches) watch->Stop();
  for (auto& watch : retired) watch->Stop();
}

void ServerCaWatch::Step() {
  std::vector<kube::Informer*> watches;
  {
    std::lock_guard guard(mutex_);
    for (auto& [key, watch] : watches_) watches.push_back(watch.get());
  }
  for (auto* watch : watches) (void)watch->Step();
}

std::set<std::string> ServerCaWatch::Watched() const {
  std::lock_guard guard(mutex_);
  std::set<std::string> keys;
  for (const auto& [key, watch] : watches_) keys.insert(key);
  return keys;
}

}  // namespace poolkeeper::controller
