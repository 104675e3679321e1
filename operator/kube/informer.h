// A cache of one kind of object, kept current the way client-go's reflector does it: a paged LIST,
// then a WATCH from the list's resourceVersion with bookmarks, resumed from the last version seen
// when the server ends it. An expired version (ERROR event or HTTP 410) or a broken stream means
// events may have been missed, so the informer lists again, after a capped exponential backoff
// read from a Clock. Objects are stored as JSON without metadata.managedFields (the largest part
// of most objects, and never read by the operator) and without what the options' trim drops,
// shared read-only with the readers, or (InformerOptions::pack) as their CBOR bytes, decoded again
// on each read.
//
// A relist replaces the store as client-go's Replace does: objects missing from the new list are
// reported deleted with the last state the cache had (the events that removed them were missed),
// new ones added, and ones whose resourceVersion changed updated. Unlike client-go, unchanged
// objects raise nothing: a relist is not a resync.
//
// Backoff: each failed attempt (LIST or WATCH) doubles the wait before the next, from
// initial_backoff up to max_backoff (or the server's Retry-After when longer). A successful LIST
// lets the watch start at once but keeps the count, so a LIST that works followed by a WATCH that
// fails at once still backs off; the count resets when a watch has worked (delivered an event or
// was ended by the server).
//
// Running: Start(loop) runs the informer's attempts on an InformerLoop (its LISTs and backoff
// waits) and its watches on the transport's event loop, so informers cost no thread each; tests
// drive it with Step() instead.
//
// Scope: one namespace, all namespaces (namespace ""), or several (InformerGroup: one informer per
// namespace). A label selector limits what is cached (the operator selects the objects it owns, so
// it never caches the cluster's other pods or Secrets).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "kube/client.h"
#include "kube/informer_loop.h"

namespace poolkeeper::kube {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;

struct InformerOptions {
  ResourceType type;
  std::string ns;  // "" = all namespaces (or a cluster-scoped type)
  std::string label_selector;
  std::string field_selector;
  std::chrono::seconds watch_timeout{300};  // jittered by the client
  Clock::Duration initial_backoff = std::chrono::milliseconds(500);
  Clock::Duration max_backoff = std::chrono::seconds(30);
  bool strip_managed_fields = true;
  // Lists and watches PartialObjectMetadata (Client: ListOptions::metadata_only): a cache of
  // names and owners, which never receives a Secret's data.
  bool metadata_only = false;
  // Drops what no reader of this cache needs, once per object as it is decoded (listed or
  // watched), before it is stored or handed to the handlers: the caches keep what the reconciler
  // reads, not whole objects. Runs on the informer's thread; must not throw.
  std::function<void(nlohmann::json&)> trim;
  // Keeps each object as its CBOR encoding (about a fifth of the tree's heap: a JSON tree spends a
  // map node and often an allocation on every member) and decodes it again for each Get, List and
  // handler call. For caches read a few objects at a time (by key, per reconcile), not for ones
  // listed whole on every reconcile: a decode costs about 5 us per KiB.
  bool pack = false;
};

// An object as an informer with `options` stores it: managedFields stripped (when asked), the trim
// run, shared read-only. Public so a benchmark measures exactly what the caches hold
// (bench/cache_bytes.cc).
ObjectPtr KeepForCache(nlohmann::json object, const InformerOptions& options);

// One object as an informer's store holds it: the shared tree, or (pack) its CBOR bytes. Copies
// share either, so a reader copies under the store's lock and decodes outside it. Public so a
// benchmark measures what the store holds.
class StoredObject {
 public:
  StoredObject() = default;
  StoredObject(ObjectPtr object, bool pack);
  // The tree, or a new one decoded from the bytes (null only if they do not decode, a bug).
  ObjectPtr Object() const;
  // A value of the caller's own: decoded straight into it, or a copy of the tree.
  std::optional<nlohmann::json> Value() const;
  const std::string& resource_version() const { return resource_version_; }

 private:
  ObjectPtr object_;
  std::shared_ptr<const std::uint8_t[]> packed_;
  size_t packed_size_ = 0;
  std::string resource_version_;
};

// Called after the store changed, outside its lock (a handler may read the store): a LIST's
// changes on a thread of the InformerLoop, a watch's on the transport's event loop, which carries
// every watch. Keep them short, enqueue a key and return; never wait there for another informer
// (Stop: RequestStop instead).
struct InformerHandlers {
  std::function<void(const ObjectPtr&)> on_add;
  std::function<void(const ObjectPtr& before, const ObjectPtr& after)> on_update;
  std::function<void(const ObjectPtr& last)> on_delete;
};

class Informer {
 public:
  Informer(Client& client, const Clock& clock, InformerOptions options);
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Before Start (handlers are not locked against a running informer).
  void AddHandlers(InformerHandlers handlers);
  // Makes the attempts Step() makes, on `loop` at NextAttempt() (the backoff waited out after a
  // failure), the watches on the transport's event loop, until Stop(). `loop` must outlive the
  // run. Does nothing while running or stopping; after Stop() it runs again.
  void Start(InformerLoop& loop);
  // Ends the run without waiting: no further attempt starts, and a watch in flight is stopped
  // through its stop token (the transport closes its connection at once, however quiet the
  // stream). For a handler, which must not wait.
  void RequestStop();
  // RequestStop, then waits until the attempt in flight has ended (never call it from a handler).
  void Stop();
  // Stop was requested and nothing of the run is left in flight: the informer may be destroyed
  // without waiting.
  bool Stopped() const;

  // One attempt, no waiting: a LIST when the cache needs one, else one WATCH until it ends.
  // Returns the attempt's failure (after which NextAttempt() is later by the backoff); any failed
  // watch makes the next attempt a LIST. Tests drive the informer with it instead of Start().
  Status Step();
  // When the loop makes its next attempt: now after a success, now + backoff after a failure.
  Clock::TimePoint NextAttempt() const;
  int Failures() const;  // consecutive failed attempts the backoff is counting
  // The code of the last attempt when it failed (e.g. kNotFound: the resource type is not served),
  // nullopt once one succeeds.
  std::optional<ErrorCode> LastFailure() const;

  // True once the first LIST has filled the store and its on_add calls have returned.
  bool HasSynced() const;
  // Waits (in real time) until synced or stopped; false on timeout or stop.
  bool WaitForSync(std::chrono::milliseconds timeout) const;

  // "namespace/name" (or "name" when cluster-scoped) → the object, or null.
  ObjectPtr Get(const std::string& key) const;
  ObjectPtr Get(std::string_view ns, std::string_view name) const;
  // The object as a value the caller keeps and changes: from a packed store without the shared
  // tree Get would decode first (and the caller then copy).
  std::optional<nlohmann::json> GetValue(std::string_view ns, std::string_view name) const;
  std::vector<ObjectPtr> List() const;
  // Each object in turn, decoded one at a time outside the lock: a packed store's List builds every
  // tree at once (12 MiB for 1,000 pools), which stays resident as fragments after it is freed.
  void ForEach(const std::function<void(const nlohmann::json&)>& visit) const;
  size_t Size() const;
  std::string ResourceVersion() const;  // the last list, event or bookmark seen
  uint64_t Relists() const;             // successful LISTs, the first included

  const InformerOptions& options() const { return options_; }

 private:
  // A store change to report to the handlers once the lock is released.
  struct Change {
    enum Kind { kAdd, kUpdate, kDelete } kind;
    StoredObject before;  // update and delete
    StoredObject after;   // add and update
  };

  enum class Phase { kIdle, kScheduled, kRunning };

  Status ListAndReplace();
  Status WatchOnce();
  // Starts a watch from the last version seen; `ended` gets its outcome, on the loop's thread.
  void StartWatch(std::function<void(const Status&)> ended);
  Status WatchEnded(Status status, bool worked);
  void Attempt();  // on the InformerLoop, when due
  void Ended(const Status& status);
  void ScheduleLocked();
  // Takes the event's object (the cache keeps it; nothing reads the event after).
  std::optional<Change> Apply(WatchEvent& event);
  Status Failed(Error error, bool reset_count);
  void Dispatch(const std::vector<Change>& changes) const;
  std::vector<StoredObject> Snapshot() const;
  std::optional<StoredObject> Find(const std::string& key) const;

  Client& client_;
  const Clock& clock_;
  InformerOptions options_;
  std::vector<InformerHandlers> handlers_;

  mutable std::mutex mutex_;  // guards everything below
  mutable std::condition_variable changed_;
  std::map<std::string, StoredObject> store_;
  std::string resource_version_;
  bool need_list_ = true;
  bool synced_ = false;
  int failures_ = 0;
  std::optional<ErrorCode> last_failure_;
  uint64_t relists_ = 0;
  Clock::TimePoint next_attempt_{};
  bool stopping_ = false;
  std::stop_source stop_;  // a new one per Start(); Stop() requests it to end the watch in flight
  InformerLoop* loop_ = nullptr;   // set by Start
  Phase phase_ = Phase::kIdle;     // of the run Start began
  InformerLoop::TaskId task_ = 0;  // the next attempt, while kScheduled
};

// Several namespaces (one informer each, as the API cannot watch a set of namespaces) seen as one
// cache. With namespaces empty (or containing "", or for a cluster-scoped type) it holds one
// informer for all namespaces. Duplicate namespaces are watched once.
class InformerGroup {
 public:
  InformerGroup(Client& client, const Clock& clock, InformerOptions options,
                const std::vector<std::string>& namespaces);
  void AddHandlers(const InformerHandlers& handlers);
  void Start(InformerLoop& loop);
  void Stop();
  bool HasSynced() const;
  bool WaitForSync(std::chrono::milliseconds timeout) const;
  ObjectPtr Get(std::string_view ns, std::string_view name) const;
  std::optional<nlohmann::json> GetValue(std::string_view ns, std::string_view name) const;
  std::vector<ObjectPtr> List() const;
  void ForEach(const std::function<void(const nlohmann::json&)>& visit) const;
  // The members, one per namespace (or one for all), e.g. to drive them with Step() in tests.
  const std::vector<std::unique_ptr<Informer>>& informers() const { return informers_; }
  // Relists() of the members, each less its first LIST (a watch expired or broke).
  uint64_t Relists() const;

 private:
  const Informer* For(std::string_view ns) const;
  std::vector<std::unique_ptr<Informer>> informers_;
};

}  // namespace poolkeeper::kube
