// The names of the objects, of the kinds poolkeeper owns, that poolkeeper does not manage: one
// cache per owned kind, label-selected with `app.kubernetes.io/managed-by!=poolkeeper` (which also
// matches objects without the label), listed and watched as PartialObjectMetadata (so no Secret's
// data ever reaches the operator) and trimmed at decode to name, namespace and ownerReferences
// (cache_trim.h: TrimToOwnership). Before a pool's first write of an owned object the writer must
// know its name is free (a forced server-side apply would take over anyone else's object); with
// these caches that is a lookup instead of a GET per object (pool_writer.h). A cache that has not
// listed yet answers nothing, and the writer falls back to the GET.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "kube/client.h"
#include "kube/informer.h"

namespace poolkeeper::controller {

// The selector of the objects the operator does not own: the complement of ManagedBySelector().
std::string ForeignSelector();

// What a lookup says about a name.
enum class NameState {
  kUnknown,  // the kind's cache has not listed yet: ask the API server
  kFree,     // no object of that kind and name that poolkeeper does not manage
  kTaken,    // an object poolkeeper does not manage holds it (Find returns it)
};

class ForeignNames {
 public:
  ForeignNames(kube::Client& client, const Clock& clock, std::chrono::seconds watch_timeout,
               const std::vector<std::string>& namespaces);
  ForeignNames(const ForeignNames&) = delete;
  ForeignNames& operator=(const ForeignNames&) = delete;

  void Start(kube::InformerLoop& loop);
  void Stop();
  void Step();  // tests: one attempt of every cache (kube::Informer::Step)
  bool HasSynced() const;

  // `kind` is one of render's owned kinds; any other is kUnknown.
  NameState Lookup(std::string_view kind, std::string_view ns, std::string_view name) const;
  // The trimmed object holding the name, or null.
  kube::ObjectPtr Find(std::string_view kind, std::string_view ns, std::string_view name) const;
  size_t Size() const;  // objects cached, over every kind

 private:
  std::map<std::string, std::unique_ptr<kube::InformerGroup>, std::less<>> caches_;  // by kind
};

}  // namespace poolkeeper::controller
