// The reconcile work queue, as controller-runtime's: keys (namespace/name) are deduplicated, a key
// is handed to one worker at a time (added again while in flight, it is processed once more after),
// failures back off per key exponentially up to a cap, and a key can be scheduled for later
// (requeue-after). Time comes from a Clock; TryGet never blocks, so tests step it with FakeClock,
// and Get blocks for the workers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "common/clock.h"
#include "common/error.h"

namespace poolkeeper::controller {

struct WorkQueueOptions {
  std::chrono::milliseconds base_delay{5};
  std::chrono::milliseconds max_delay{std::chrono::minutes(5)};
  // The overall limit on retries, across keys (a token bucket, as client-go's default): when many
  // keys fail at once (the API server is down), their retries are spread out instead of all
  // hammering it at each backoff step. 0 disables it.
  double retries_per_second = 10;
  int retry_burst = 100;
};

class WorkQueue {
 public:
  explicit WorkQueue(const Clock& clock, WorkQueueOptions options = {});

  // Ready now. A key already waiting stays once in the queue; a delayed one is brought forward.
  void Add(const std::string& key);
  // Ready after `delay` (or sooner, if added otherwise).
  void AddAfter(const std::string& key, Clock::Duration delay);
  // Ready after this key's next backoff step (base_delay x 2^failures, capped at max_delay) or
  // the overall retry limit's next free slot, whichever is later.
  void AddRateLimited(const std::string& key);
  // After a failed reconcile, as the error's code says: a write conflict is retried at once (the
  // next attempt reads the newer object from the cache), but only once in a row: a conflict that
  // comes back is backed off like server trouble. Server trouble backs off (or waits the
  // server's Retry-After), and what only the user can fix (RBAC, a rejected object) is tried again
  // after `wait_for_user`. Returns true when the retry counts as a backoff retry.
  bool Retry(const std::string& key, const Error& error, Clock::Duration wait_for_user);
  // Resets the key's backoff after a success.
  void Forget(const std::string& key);
  // The worker finished `key`; if it was added meanwhile, it becomes ready again.
  void Done(const std::string& key);

  // A ready key not in flight, marked in flight; nullopt when none is ready now.
  std::optional<std::string> TryGet();
  // Blocks until a key is ready (returned in flight) or ShutDown() (nullopt).
  std::optional<std::string> Get();
  void ShutDown();

  size_t Depth() const;  // keys waiting (ready or delayed), not counting in flight
  int Failures(const std::string& key) const;
  std::optional<Clock::TimePoint> NextReadyTime() const;

 private:
  static constexpr int kImmediateRetries = 1;  // consecutive conflicts retried without delay

  void ScheduleLocked(const std::string& key, Clock::TimePoint when);
  std::optional<std::string> TakeReadyLocked();
  std::optional<Clock::TimePoint> NextDueLocked() const;

  const Clock& clock_;
  WorkQueueOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Clock::TimePoint, std::less<>> waiting_;  // key -> when it is ready
  // waiting_ ordered by (ready time, key), so the next key is found without walking every waiting
  // key (each pool sits here until its resync). The views point at waiting_'s keys: an entry
  // leaves this set before its waiting_ node is erased or its time changes.
  std::set<std::pair<Clock::TimePoint, std::string_view>> by_due_;
  std::set<std::string> in_flight_;
  std::map<std::string, Clock::TimePoint> dirty_;  // added while in flight: ready time
  std::map<std::string, int> failures_;
  Clock::TimePoint bucket_full_at_{};  // when the retry bucket is full again (0: full)
  bool shut_down_ = false;
};

}  // namespace poolkeeper::controller
