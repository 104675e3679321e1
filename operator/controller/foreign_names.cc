#include "controller/foreign_names.h"

#include "controller/cache_trim.h"
#include "controller/pool_writer.h"
#include "render/render.h"

namespace poolkeeper::controller {

std::string ForeignSelector() {
  return std::string(render::kManagedByLabel) + "!=" + render::kManagedByValue;
}

ForeignNames::ForeignNames(kube::Client& client, const Clock& clock,
                           std::chrono::seconds watch_timeout,
                           const std::vector<std::string>& namespaces) {
  for (const auto& kind : render::kOwnedKinds) {
    kube::InformerOptions options{.type = ResourceTypeOf(kind),
                                  .label_selector = ForeignSelector(),
                                  .watch_timeout = watch_timeout,
                                  .metadata_only = true,
                                  .trim = TrimToOwnership};
    caches_[std::string(kind.kind)] =
        std::make_unique<kube::InformerGroup>(client, clock, options, namespaces);
  }
}

void ForeignNames::Start(kube::InformerLoop& loop) {
  for (auto& [kind, cache] : caches_) cache->Start(loop);
}

void ForeignNames::Stop() {
  for (auto& [kind, cache] : caches_) cache->Stop();
}

void ForeignNames::Step() {
  for (auto& [kind, cache] : caches_) {
    for (const auto& informer : cache->informers()) (void)informer->Step();
  }
}

bool ForeignNames::HasSynced() const {
  for (const auto& [kind, cache] : caches_) {
    if (!cache->HasSynced()) return false;
  }
  return true;
}

kube::ObjectPtr ForeignNames::Find(std::string_view kind, std::string_view ns,
                                   std::string_view name) const {
  auto cache = caches_.find(kind);
  if (cache == caches_.end()) return nullptr;
  return cache->second->Get(ns, name);
}

NameState ForeignNames::Lookup(std::string_view kind, std::string_view ns,
                               std::string_view name) const {
  auto cache = caches_.find(kind);
  if (cache == caches_.end() || !cache->second->HasSynced()) return NameState::kUnknown;
  return cache->second->Get(ns, name) ? NameState::kTaken : NameState::kFree;
}

size_t ForeignNames::Size() const {
  size_t size = 0;
  for (const auto& [kind, cache] : caches_) size += cache->List().size();
  return size;
}

}  // namespace poolkeeper::controller
