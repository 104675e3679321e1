// Records Kubernetes Events about ConnectionPools (core/v1, as `kubectl describe` shows them), off
// the reconcile path: Record decides and queues, a background writer POSTs.
//
// - De-duplication: each distinct (pool, type, reason, message) is written once per
//   `dedupe_window`: a pool that stays blocked is reconciled again on every resync, and
//   re-announcing the same refusal each time would make the steady state cost writes.
// - Rate limit per pool, as client-go's EventSourceObjectSpamFilter: a token bucket of `burst`
//   events refilled one per `refill` (25, one per 5 minutes, client-go's defaults), so a pool
//   flapping between messages cannot flood the API server.
// - A bounded queue: Record never waits for the API server. When `capacity` events are waiting,
//   the new one is dropped and counted (Dropped(), the metric poolkeeper_events_dropped_total).
//
// Record is called by the workers; the writer is one thread (Start) or, in tests, WriteQueued on
// the caller's thread. Failing to write an event is logged, never fatal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "common/clock.h"
#include "common/error.h"
#include "controller/reconciler.h"
#include "kube/client.h"

namespace poolkeeper::controller {

struct EventRecorderOptions {
  Clock::Duration dedupe_window = std::chrono::hours(1);
  size_t capacity = 1000;  // events waiting to be written
  int burst = 25;          // per pool
  Clock::Duration refill = std::chrono::minutes(5);
};

class EventRecorder {
 public:
  EventRecorder(kube::Client& client, const Clock& clock, std::string instance,
                EventRecorderOptions options = {});
  ~EventRecorder();  // stops the writer; events still queued are not written
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // `pool` is the ConnectionPool as stored (its uid, namespace and name are referenced). Returns
  // at once: the event is queued, or dropped (a duplicate, over the pool's rate, queue full).
  void Record(const nlohmann::json& pool, const EventRecord& event, const std::string& now_rfc3339);

  // Starts the background writer (kUnavailable when the thread cannot be created).
  Status Start();
  void Stop();
  // Writes every queued event on the caller's thread (tests, and a manager driven by RunOne);
  // returns how many it took.
  size_t WriteQueued();
  // Waits (real time) until the queue is empty and no write is in flight; false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout) const;

  uint64_t Written() const;
  uint64_t Dropped() const;   // queue full or over a pool's rate
  size_t Queued() const;      // waiting to be written
  size_t Remembered() const;  // events still inside the de-duplication window

 private:
  using EventKey = std::tuple<std::string, std::string, std::string, std::string>;
  struct Bucket {
    double tokens;
    Clock::TimePoint at;
    Clock::TimePoint full_at;  // its place in buckets_by_full_ (unused when refill is 0)
  };
  bool TakeToken(const std::string& uid, Clock::TimePoint now);  // under mutex_
  // Forgets what decides nothing any more. Under mutex_.
  void Prune(Clock::TimePoint now);
  bool WriteOne(std::unique_lock<std::mutex>& lock);  // pops one; false when empty
  void Run(std::stop_token stop);

  kube::Client& client_;
  const Clock& clock_;
  const std::string instance_;
  const EventRecorderOptions options_;
  mutable std::mutex mutex_;
  mutable std::condition_variable_any changed_;  // waits with the writer's stop token
  std::map<EventKey, Clock::TimePoint> last_;
  // last_ by the time each event was written, and buckets_ by when each is full again: pruning
  // takes only what has expired instead of scanning every pool's entries on each event.
  std::multimap<Clock::TimePoint, std::map<EventKey, Clock::TimePoint>::iterator> last_by_time_;
  std::map<std::string, Bucket> buckets_;  // by pool uid; full ones are forgotten
  std::set<std::pair<Clock::TimePoint, std::string>> buckets_by_full_;
  std::deque<nlohmann::json> queue_;
  int in_flight_ = 0;
  uint64_t sequence_ = 0;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  std::jthread writer_;
};

// The Event object (exposed for tests).
nlohmann::json MakeEvent(const nlohmann::json& pool, const EventRecord& event,
                         const std::string& name, const std::string& instance,
                         const std::string& now_rfc3339);

}  // namespace poolkeeper::controller
