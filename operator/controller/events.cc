#include "controller/events.h"

#include <chrono>
#include <cstdio>

#include "common/log.h"

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
                             Clock::Duration dedupe_window)
    : client_(client), clock_(clock), instance_(std::move(instance)), window_(dedupe_window) {}

void EventRecorder::Record(const json& pool, const EventRecord& event, const std::string& now) {
  const json metadata = pool.value("metadata", json::object());
  std::string uid = metadata.value("uid", "");
  std::string name;
  {
    std::lock_guard guard(mutex_);
    auto key = std::make_tuple(uid, event.type, event.reason, event.message);
    const Clock::TimePoint now_steady = clock_.Now();
    auto it = last_.find(key);
    if (it != last_.end() && now_steady - it->second < window_) return;
    // Entries past the window decide nothing any more: without this the map grows with every
    // distinct message (budget arithmetic changes with every plan) for the life of the process.
    std::erase_if(last_, [&](const auto& entry) { return now_steady - entry.second >= window_; });
    last_[key] = now_steady;
    // As client-go names them: the object's name and a unique suffix.
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    char suffix[40];
    std::snprintf(suffix, sizeof suffix, ".%llx",
                  static_cast<unsigned long long>(nanos + sequence_++));
    name = metadata.value("name", "pool") + suffix;
  }
  auto created =
      client_.Create(kube::resources::kCoreEvent, MakeEvent(pool, event, name, instance_, now));
  if (!created) {
    Log(LogLevel::kWarn, "event not recorded",
        {{"pool", kube::ObjectKey(pool)},
         {"reason", event.reason},
         {"error", created.error().message}});
    return;
  }
  std::lock_guard guard(mutex_);
  ++written_;
}

size_t EventRecorder::Remembered() const {
  std::lock_guard guard(mutex_);
  return last_.size();
}

uint64_t EventRecorder::Written() const {
  std::lock_guard guard(mutex_);
  return written_;
}

}  // namespace poolkeeper::controller
