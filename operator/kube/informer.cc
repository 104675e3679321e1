#include "kube/informer.h"

#include <algorithm>
#include <future>
#include <set>
#include <utility>

#include "common/log.h"

namespace poolkeeper::kube {

using nlohmann::json;

namespace {

std::string ResourceVersionOf(const json& object) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto version = metadata->find("resourceVersion");
  return version != metadata->end() && version->is_string() ? version->get<std::string>() : "";
}

std::string KeyOf(std::string_view ns, std::string_view name) {
  return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

}  // namespace

ObjectPtr KeepForCache(json object, const InformerOptions& options) {
  if (options.strip_managed_fields) {
    if (auto metadata = object.find("metadata");
        metadata != object.end() && metadata->is_object()) {
      metadata->erase("managedFields");
    }
  }
  if (options.trim) options.trim(object);
  return std::make_shared<const json>(std::move(object));
}

StoredObject::StoredObject(ObjectPtr object, bool pack)
    : resource_version_(ResourceVersionOf(*object)) {
  if (!pack) {
    object_ = std::move(object);
    return;
  }
  // to_cbor grows its vector as it writes; the store keeps an exact-size copy.
  const std::vector<std::uint8_t> bytes = json::to_cbor(*object);
  auto packed = std::make_shared<std::uint8_t[]>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), packed.get());
  packed_ = std::move(packed);
  packed_size_ = bytes.size();
}

ObjectPtr StoredObject::Object() const {
  if (object_ || !packed_) return object_;
  auto object = Value();
  if (!object) return nullptr;
  return std::make_shared<const json>(std::move(*object));
}

std::optional<json> StoredObject::Value() const {
  if (object_) return *object_;
  if (!packed_) return std::nullopt;
  json object = json::from_cbor(packed_.get(), packed_.get() + packed_size_, true, false);
  if (object.is_discarded()) return std::nullopt;
  return object;
}

Informer::Informer(Client& client, const Clock& clock, InformerOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {
  if (!options_.type.namespaced) options_.ns.clear();
  next_attempt_ = clock_.Now();
}

Informer::~Informer() { Stop(); }

void Informer::AddHandlers(InformerHandlers handlers) { handlers_.push_back(std::move(handlers)); }

void Informer::Start(InformerLoop& loop) {
  std::lock_guard guard(mutex_);
  if (phase_ != Phase::kIdle) return;
  loop_ = &loop;
  stopping_ = false;
  stop_ = std::stop_source();
  ScheduleLocked();
}

void Informer::RequestStop() {
  std::lock_guard guard(mutex_);
  stopping_ = true;
  stop_.request_stop();
  if (phase_ == Phase::kScheduled && loop_->Cancel(task_)) phase_ = Phase::kIdle;
  changed_.notify_all();
}

void Informer::Stop() {
  RequestStop();
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return phase_ == Phase::kIdle; });
}

bool Informer::Stopped() const {
  std::lock_guard guard(mutex_);
  return stopping_ && phase_ == Phase::kIdle;
}

// The next attempt at NextAttempt(), or the run's end once a stop was asked for.
void Informer::ScheduleLocked() {
  if (stopping_) {
    phase_ = Phase::kIdle;
    changed_.notify_all();
    return;
  }
  phase_ = Phase::kScheduled;
  task_ = loop_->At(next_attempt_, [this] { Attempt(); });
}

void Informer::Attempt() {
  bool list;
  {
    std::lock_guard guard(mutex_);
    if (stopping_) return ScheduleLocked();  // which ends the run
    phase_ = Phase::kRunning;
    list = need_list_;
  }
  if (list) return Ended(ListAndReplace());
  StartWatch([this](const Status& status) { Ended(status); });
}

// The last thing an attempt does: after the lock is released here, the informer may be gone.
void Informer::Ended(const Status& status) {
  if (!status) {
    Log(LogLevel::kWarn, "informer attempt failed",
        {{"resource", std::string(options_.type.plural)},
         {"namespace", options_.ns},
         {"error", status.error().message}});
  }
  std::lock_guard guard(mutex_);
  ScheduleLocked();
}

Status Informer::Step() {
  bool list;
  {
    std::lock_guard guard(mutex_);
    list = need_list_;
  }
  return list ? ListAndReplace() : WatchOnce();
}

Status Informer::Failed(Error error, bool reset_count) {
  std::lock_guard guard(mutex_);
  if (reset_count) failures_ = 0;
  ++failures_;
  last_failure_ = error.code;
  Clock::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < failures_ && backoff < options_.max_backoff; ++i) backoff *= 2;
  backoff = std::min(backoff, options_.max_backoff);
  backoff = std::max<Clock::Duration>(backoff, std::chrono::seconds(error.retry_after_seconds));
  next_attempt_ = clock_.Now() + backoff;
  return std::unexpected(std::move(error));
}

Status Informer::ListAndReplace() {
  std::map<std::string, StoredObject> fresh;
  auto listed = client_.List(options_.type, options_.ns,
                             {.label_selector = options_.label_selector,
                              .field_selector = options_.field_selector,
                              .metadata_only = options_.metadata_only,
                              .on_item = [&](json&& item) {
                                ObjectPtr object = KeepForCache(std::move(item), options_);
                                std::string key = ObjectKey(*object);
                                fresh[std::move(key)] = {std::move(object), options_.pack};
                              }});
  if (!listed) return Failed(listed.error(), false);

  std::vector<Change> changes;
  {
    std::lock_guard guard(mutex_);
    for (const auto& [key, old] : store_) {
      if (!fresh.contains(key)) changes.push_back({Change::kDelete, old, {}});
    }
    for (const auto& [key, object] : fresh) {
      auto old = store_.find(key);
      if (old == store_.end()) {
        changes.push_back({Change::kAdd, {}, object});
      } else if (old->second.resource_version() != object.resource_version()) {
        changes.push_back({Change::kUpdate, old->second, object});
      }
    }
    store_ = std::move(fresh);
    resource_version_ = listed->resource_version;
    need_list_ = false;
    // The type was not served (a CRD not installed yet) and now is: those failures say nothing
    // about the server's health, so a watch failing while its cache warms up starts a fresh
    // backoff.
    if (last_failure_ == ErrorCode::kNotFound) failures_ = 0;
    last_failure_.reset();
    ++relists_;
    next_attempt_ = clock_.Now();
  }
  Dispatch(changes);
  {
    // Synced only now, so a controller that waits for sync finds every initial object queued.
    std::lock_guard guard(mutex_);
    synced_ = true;
  }
  changed_.notify_all();
  return {};
}

Status Informer::WatchOnce() {
  auto ended = std::make_shared<std::promise<Status>>();
  StartWatch([ended](const Status& status) { ended->set_value(status); });
  return ended->get_future().get();
}

void Informer::StartWatch(std::function<void(const Status&)> ended) {
  WatchOptions watch{.label_selector = options_.label_selector,
                     .field_selector = options_.field_selector,
                     .timeout = options_.watch_timeout,
                     .metadata_only = options_.metadata_only};
  {
    std::lock_guard guard(mutex_);
    watch.resource_version = resource_version_;
    watch.stop = stop_.get_token();
  }
  // Events and the end come one after another on one thread: no lock for `worked`.
  auto worked = std::make_shared<bool>(false);
  client_.WatchAsync(
      options_.type, options_.ns, watch,
      [this, worked](WatchEvent& event) {
        {
          std::lock_guard guard(mutex_);
          if (stopping_) return false;  // a stopped informer changes nothing more
        }
        *worked = true;
        if (auto change = Apply(event)) Dispatch({*change});
        return true;
      },
      [this, worked, ended = std::move(ended)](Status status) {
        ended(WatchEnded(std::move(status), *worked));
      });
}

Status Informer::WatchEnded(Status status, bool worked) {
  if (!status) {
    {
      // Events may have been missed (expired version, broken stream): only a LIST catches up.
      std::lock_guard guard(mutex_);
      need_list_ = true;
    }
    return Failed(status.error(), worked);
  }
  std::lock_guard guard(mutex_);
  failures_ = 0;
  last_failure_.reset();
  next_attempt_ = clock_.Now();
  return {};
}

std::optional<Informer::Change> Informer::Apply(WatchEvent& event) {
  std::string version = ResourceVersionOf(event.object);
  if (event.type == "BOOKMARK") {
    std::lock_guard guard(mutex_);
    if (!version.empty()) resource_version_ = version;
    return std::nullopt;
  }
  ObjectPtr object = KeepForCache(std::move(event.object), options_);
  std::string key = ObjectKey(*object);
  // The handlers get the tree at hand; only the store's copy is packed.
  StoredObject handed(object, false);
  std::lock_guard guard(mutex_);
  if (!version.empty()) resource_version_ = version;
  auto old = store_.find(key);
  if (event.type == "DELETED") {
    // The event carries the object's final state, which is what a handler wants to see.
    if (old != store_.end()) store_.erase(old);
    return Change{Change::kDelete, std::move(handed), {}};
  }
  StoredObject stored(std::move(object), options_.pack);
  Change change{Change::kAdd, {}, std::move(handed)};
  if (old != store_.end()) {
    change.kind = Change::kUpdate;
    change.before = std::exchange(old->second, std::move(stored));
  } else {
    store_.emplace(std::move(key), std::move(stored));
  }
  return change;
}

void Informer::Dispatch(const std::vector<Change>& changes) const {
  for (const Change& change : changes) {
    for (const InformerHandlers& handlers : handlers_) {
      switch (change.kind) {
        case Change::kAdd:
          if (handlers.on_add) handlers.on_add(change.after.Object());
          break;
        case Change::kUpdate:
          if (handlers.on_update) handlers.on_update(change.before.Object(), change.after.Object());
          break;
        case Change::kDelete:
          if (handlers.on_delete) handlers.on_delete(change.before.Object());
          break;
      }
    }
  }
}

Clock::TimePoint Informer::NextAttempt() const {
  std::lock_guard guard(mutex_);
  return next_attempt_;
}

std::optional<ErrorCode> Informer::LastFailure() const {
  std::lock_guard guard(mutex_);
  return last_failure_;
}

int Informer::Failures() const {
  std::lock_guard guard(mutex_);
  return failures_;
}

bool Informer::HasSynced() const {
  std::lock_guard guard(mutex_);
  return synced_;
}

bool Informer::WaitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return synced_ || stopping_; });
  return synced_;
}

// A copy shares the stored bytes or tree: a packed store decodes outside the lock.
std::optional<StoredObject> Informer::Find(const std::string& key) const {
  std::lock_guard guard(mutex_);
  auto it = store_.find(key);
  if (it == store_.end()) return std::nullopt;
  return it->second;
}

ObjectPtr Informer::Get(const std::string& key) const {
  auto found = Find(key);
  return found ? found->Object() : nullptr;
}

ObjectPtr Informer::Get(std::string_view ns, std::string_view name) const {
  return Get(KeyOf(options_.type.namespaced ? ns : "", name));
}

std::optional<json> Informer::GetValue(std::string_view ns, std::string_view name) const {
  auto found = Find(KeyOf(options_.type.namespaced ? ns : "", name));
  return found ? found->Value() : std::nullopt;
}

std::vector<StoredObject> Informer::Snapshot() const {
  std::lock_guard guard(mutex_);
  std::vector<StoredObject> found;
  found.reserve(store_.size());
  for (const auto& [key, object] : store_) found.push_back(object);
  return found;
}

void Informer::ForEach(const std::function<void(const json&)>& visit) const {
  for (const StoredObject& object : Snapshot()) {
    if (ObjectPtr decoded = object.Object()) visit(*decoded);
  }
}

std::vector<ObjectPtr> Informer::List() const {
  const std::vector<StoredObject> found = Snapshot();
  std::vector<ObjectPtr> objects;
  objects.reserve(found.size());
  for (const StoredObject& object : found) {
    if (ObjectPtr decoded = object.Object()) objects.push_back(std::move(decoded));
  }
  return objects;
}

size_t Informer::Size() const {
  std::lock_guard guard(mutex_);
  return store_.size();
}

std::string Informer::ResourceVersion() const {
  std::lock_guard guard(mutex_);
  return resource_version_;
}

uint64_t Informer::Relists() const {
  std::lock_guard guard(mutex_);
  return relists_;
}

InformerGroup::InformerGroup(Client& client, const Clock& clock, InformerOptions options,
                             const std::vector<std::string>& namespaces) {
  std::set<std::string> unique(namespaces.begin(), namespaces.end());
  if (unique.empty() || unique.contains("") || !options.type.namespaced) {
    options.ns.clear();
    informers_.push_back(std::make_unique<Informer>(client, clock, options));
    return;
  }
  for (const std::string& ns : unique) {
    options.ns = ns;
    informers_.push_back(std::make_unique<Informer>(client, clock, options));
  }
}

void InformerGroup::AddHandlers(const InformerHandlers& handlers) {
  for (auto& informer : informers_) informer->AddHandlers(handlers);
}

void InformerGroup::Start(InformerLoop& loop) {
  for (auto& informer : informers_) informer->Start(loop);
}

uint64_t InformerGroup::Relists() const {
  uint64_t relists = 0;
  for (const auto& informer : informers_) {
    if (informer->Relists() > 1) relists += informer->Relists() - 1;
  }
  return relists;
}

void InformerGroup::Stop() {
  for (auto& informer : informers_) informer->RequestStop();  // every watch ends at once
  for (auto& informer : informers_) informer->Stop();
}

bool InformerGroup::HasSynced() const {
  return std::all_of(informers_.begin(), informers_.end(),
                     [](const auto& informer) { return informer->HasSynced(); });
}

bool InformerGroup::WaitForSync(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& informer : informers_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!informer->WaitForSync(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

const Informer* InformerGroup::For(std::string_view ns) const {
  for (const auto& informer : informers_) {
    if (informer->options().ns.empty() || informer->options().ns == ns) return informer.get();
  }
  return nullptr;
}

ObjectPtr InformerGroup::Get(std::string_view ns, std::string_view name) const {
  const Informer* informer = For(ns);
  return informer == nullptr ? nullptr : informer->Get(ns, name);
}

std::optional<json> InformerGroup::GetValue(std::string_view ns, std::string_view name) const {
  const Informer* informer = For(ns);
  return informer == nullptr ? std::nullopt : informer->GetValue(ns, name);
}

void InformerGroup::ForEach(const std::function<void(const json&)>& visit) const {
  for (const auto& informer : informers_) informer->ForEach(visit);
}

std::vector<ObjectPtr> InformerGroup::List() const {
  std::vector<ObjectPtr> objects;
  for (const auto& informer : informers_) {
    auto some = informer->List();
    objects.insert(objects.end(), some.begin(), some.end());
  }
  return objects;
}

}  // namespace poolkeeper::kube
