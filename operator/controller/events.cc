#include "controller/events.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/log.h"
#include "common/thread.h"

namespace poolkeeper::controller {

using nlohmann::json;

json MakeEvent(const json& pool, const EventRecord& event, const std::string& name,
               const std::string& instance, const std::string& now) {
  const json metadata = pool.value("metadata", json::object());
  // Event messages are capped at 1 KiB by the API server's validation.
  std::string message = event.message.substr(0, 1024);
  return {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", name}, {"namespace", metadata.value("namespace", "")}}},
      {"involvedObject",
       {{"apiVersion", pool.value("apiVersion", "")},
        {"kind", pool.value("kind", "")},
        {"name", metadata.value("name", "")},
        {"namespace", metadata.value("namespace", "")},
        {"uid", metadata.value("uid", "")},
        {"resourceVersion", metadata.value("resourceVersion", "")}}},
      {"type", event.type},
      {"reason", event.reason},
      {"message", message},
      {"source", {{"component", "poolkeeper"}}},
      {"reportingComponent", "poolkeeper.io/operator"},
      {"reportingInstance", instance},
      {"action", event.reason},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1},
  };
}

EventRecorder::EventRecorder(kube::Client& client, const Clock& clock, std::string instance,
                             EventRecorderOptions options)
    : client_(client), clock_(clock), instance_(std::move(instance)), options_(options) {}

EventRecorder::~EventRecorder() { Stop(); }

bool EventRecorder::TakeToken(const std::string& uid, Clock::TimePoint now) {
  auto [it, added] =
      buckets_.try_emplace(uid, Bucket{static_cast<double>(options_.burst), now, {}});
  Bucket& bucket = it->second;
  const bool refills = options_.refill.count() > 0;
  if (refills) {
    if (!added) buckets_by_full_.erase({bucket.full_at, uid});
    bucket.tokens = std::min<double>(
        options_.burst, bucket.tokens + std::chrono::duration<double>(now - bucket.at) /
                                            std::chrono::duration<double>(options_.refill));
  }
  bucket.at = now;
  const bool taken = bucket.tokens >= 1;
  if (taken) bucket.tokens -= 1;
  if (refills) {
    // Rounded up, so it is never forgotten before the refill arithmetic says it is full.
    bucket.full_at =
        now + std::chrono::ceil<Clock::Duration>(
                  (options_.burst - bucket.tokens) *
                  std::chrono::duration<double, Clock::Duration::period>(options_.refill));
    buckets_by_full_.emplace(bucket.full_at, uid);
  }
  return taken;
}

void EventRecorder::Prune(Clock::TimePoint now) {
  // Entries past the window decide nothing any more: without this the map grows with every
  // distinct message (budget arithmetic changes with every plan) for the life of the process.
  while (!last_by_time_.empty() && now - last_by_time_.begin()->first >= options_.dedupe_window) {
    last_.erase(last_by_time_.begin()->second);
    last_by_time_.erase(last_by_time_.begin());
  }
  // A bucket that would be full again by now is the same as none.
  while (!buckets_by_full_.empty() && buckets_by_full_.begin()->first <= now) {
    buckets_.erase(buckets_by_full_.begin()->second);
    buckets_by_full_.erase(buckets_by_full_.begin());
  }
}

void EventRecorder::Record(const json& pool, const EventRecord& event, const std::string& now) {
  const json metadata = pool.value("metadata", json::object());
  std::string uid = metadata.value("uid", "");
  {
    std::lock_guard guard(mutex_);
    EventKey key = std::make_tuple(uid, event.type, event.reason, event.message);
    const Clock::TimePoint now_steady = clock_.Now();
    auto it = last_.find(key);
    if (it != last_.end() && now_steady - it->second < options_.dedupe_window) return;
    Prune(now_steady);
    if (queue_.size() >= options_.capacity || !TakeToken(uid, now_steady)) {
      ++dropped_;
      return;
    }
    // Not in last_ any more: it was not found, or past its window and pruned just now.
    auto [remembered, inserted] = last_.insert_or_assign(std::move(key), now_steady);
    if (inserted) last_by_time_.emplace(now_steady, remembered);
    // As client-go names them: the object's name and a unique suffix.
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    char suffix[40];
    std::snprintf(suffix, sizeof suffix, ".%llx",
                  static_cast<unsigned long long>(nanos + sequence_++));
    queue_.push_back(
        MakeEvent(pool, event, metadata.value("name", "pool") + suffix, instance_, now));
  }
  changed_.notify_all();
}

bool EventRecorder::WriteOne(std::unique_lock<std::mutex>& lock) {
  if (queue_.empty()) return false;
  json event = std::move(queue_.front());
  queue_.pop_front();
  ++in_flight_;
  lock.unlock();
  auto created = client_.Create(kube::resources::kCoreEvent, event, kube::Reply::kStatusOnly);
  if (!created) {
    Log(LogLevel::kWarn, "event not recorded",
        {{"pool", event.value("/involvedObject/namespace"_json_pointer, "") + "/" +
                      event.value("/involvedObject/name"_json_pointer, "")},
         {"reason", event.value("reason", "")},
         {"error", created.error().message}});
  }
  lock.lock();
  --in_flight_;
  if (created) ++written_;
  changed_.notify_all();
  return true;
}

size_t EventRecorder::WriteQueued() {
  std::unique_lock lock(mutex_);
  size_t taken = 0;
  while (WriteOne(lock)) ++taken;
  return taken;
}

void EventRecorder::Run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    changed_.wait(lock, stop, [this] { return !queue_.empty(); });
    while (!stop.stop_requested() && WriteOne(lock)) {
    }
  }
}

Status EventRecorder::Start() {
  if (writer_.joinable()) return {};
  auto started = StartJThread("events", [this](std::stop_token stop) { Run(std::move(stop)); });
  if (!started) return std::unexpected(started.error());
  writer_ = std::move(*started);
  return {};
}

void EventRecorder::Stop() {
  if (!writer_.joinable()) return;
  writer_.request_stop();
  changed_.notify_all();
  writer_.join();
}

bool EventRecorder::WaitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] { return queue_.empty() && in_flight_ == 0; });
}

size_t EventRecorder::Remembered() const {
  std::lock_guard guard(mutex_);
  return last_.size();
}

uint64_t EventRecorder::Written() const {
  std::lock_guard guard(mutex_);
  return written_;
}

uint64_t EventRecorder::Dropped() const {
  std::lock_guard guard(mutex_);
  return dropped_;
}

size_t EventRecorder::Queued() const {
  std::lock_guard guard(mutex_);
  return queue_.size();
}

}  // namespace poolkeeper::controller
