// Records Kubernetes Events about ConnectionPools (core/v1, as `kubectl describe` shows them).
// Each distinct (pool, type, reason, message) is written once per `dedupe_window`: a pool that
// stays blocked is reconciled again on every resync, and re-announcing the same refusal each time
// would make the steady state cost writes. Failing to record an event is logged, never fatal.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "common/clock.h"
#include "controller/reconciler.h"
#include "kube/client.h"

namespace poolkeeper::controller {

class EventRecorder {
 public:
  EventRecorder(kube::Client& client, const Clock& clock, std::string instance,
                Clock::Duration dedupe_window = std::chrono::hours(1));

  // `pool` is the ConnectionPool as stored (its uid, namespace and name are referenced).
  void Record(const nlohmann::json& pool, const EventRecord& event, const std::string& now_rfc3339);
  uint64_t Written() const;
  size_t Remembered() const;  // events still inside the de-duplication window

 private:
  kube::Client& client_;
  const Clock& clock_;
  const std::string instance_;
  const Clock::Duration window_;
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, std::string, std::string>, Clock::TimePoint> last_;
  uint64_t sequence_ = 0;
  uint64_t written_ = 0;
};

// The Event object (exposed for tests).
nlohmann::json MakeEvent(const nlohmann::json& pool, const EventRecord& event,
                         const std::string& name, const std::string& instance,
                         const std::string& now_rfc3339);

}  // namespace poolkeeper::controller
