// Time as a dependency: the operator reads "now" through a Clock, so the work queue, backoff and
// leader election are tested with FakeClock, which only moves when a test advances it.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace poolkeeper {

class Clock {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

class FakeClock : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard guard(mutex_);
    return now_;
  }
  void Advance(Duration by) {
    std::lock_guard guard(mutex_);
    now_ += by;
  }

 private:
  mutable std::mutex mutex_;
  TimePoint now_{std::chrono::hours(1)};
};

// A wall-clock time as RFC 3339 in UTC: to the second ("2026-11-30T06:00:00Z"), what Kubernetes
// conditions and status timestamps carry; or to the microsecond ("2026-11-30T06:00:00.000123Z"),
// Kubernetes' MicroTime, which a Lease's renew and acquire times carry.
enum class TimePrecision { kSeconds, kMicroseconds };
std::string FormatRfc3339(std::chrono::system_clock::time_point time,
                          TimePrecision precision = TimePrecision::kSeconds);
// The same for Unix seconds, to the second: for times a time_point cannot hold (system_clock counts
// nanoseconds, so it ends in 2262; an exec credential may say it expires in 2999).
std::string FormatRfc3339(int64_t unix_seconds);
// FormatRfc3339 of the wall clock now, to the second.
std::string Rfc3339Now();
// Seconds since the epoch of an RFC 3339 UTC time ("2026-11-30T06:00:00Z"), or nullopt.
std::optional<int64_t> ParseRfc3339(const std::string& text);
// Seconds since the epoch now (wall clock).
int64_t UnixNow();

}  // namespace poolkeeper
