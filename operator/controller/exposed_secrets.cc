// The label-selected Secret cache and the metadata-only look-up of an unlabelled Secret.
#include "controller/exposed_secrets.h"

#include "controller/cache_trim.h"

namespace poolkeeper::controller {

ExposedSecrets::ExposedSecrets(kube::Client& client, const Clock& clock,
                               std::chrono::seconds watch_timeout,
                               const std::vector<std::string>& namespaces, OnChange on_change,
                               const kube::ResourceType& type)
    : client_(client),
      type_(type),
      on_change_(std::move(on_change)),
      informers_(client, clock,
                 kube::InformerOptions{.type = type,
                                       .label_selector = secrets::ExposeSelector(),
                                       .watch_timeout = watch_timeout,
                                       .trim = DropLastApplied},
                 namespaces) {
  auto changed = [this](const kube::ObjectPtr& object) {
    if (on_change_) on_change_(kube::ObjectKey(*object));
  };
  informers_.AddHandlers({
      .on_add = changed,
      .on_update = [changed](const kube::ObjectPtr&,
                             const kube::ObjectPtr& after) { changed(after); },
      .on_delete = changed,
  });
}

void ExposedSecrets::Start(kube::InformerLoop& loop) { informers_.Start(loop); }

void ExposedSecrets::Stop() { informers_.Stop(); }

void ExposedSecrets::Step() {
  for (const auto& informer : informers_.informers()) (void)informer->Step();
}

bool ExposedSecrets::HasSynced() const { return informers_.HasSynced(); }

std::optional<secrets::Secret> ExposedSecrets::Find(const std::string& namespace_,
                                                    const std::string& name) const {
  if (kube::ObjectPtr stored = informers_.Get(namespace_, name)) {
    auto secret = Parse(*stored);
    if (!secret) return std::nullopt;  // as good as missing: the pool reports it
    return std::move(*secret);
  }
  // Not labelled, or not there. Only the metadata is asked for: an unlabelled Secret's data must
  // not reach the operator. Any failure (404, RBAC, network) reads as missing; the pool's next
  // pass asks again.
  auto metadata = client_.GetMetadata(type_, namespace_, name);
  if (!metadata) return std::nullopt;
  auto secret = Parse(*metadata);
  if (!secret) return std::nullopt;
  secret->data.clear();  // a server that ignored the metadata-only Accept header
  // Labelled after all (added since the cache last heard): the cache's event follows and
  // reconciles the pool again; until then its data is not known, so it reads as missing.
  if (secrets::Exposed(*secret)) return std::nullopt;
  return std::move(*secret);
}

Result<secrets::Secret> ExposedSecrets::Parse(const nlohmann::json& object) const {
  return type_.kind == kube::resources::kConfigMap.kind ? secrets::ParseConfigMap(object)
                                                        : secrets::ParseSecret(object);
}

size_t ExposedSecrets::Size() const {
  size_t size = 0;
  for (const auto& informer : informers_.informers()) size += informer->Size();
  return size;
}

uint64_t ExposedSecrets::Relists() const { return informers_.Relists(); }

}  // namespace poolkeeper::controller
