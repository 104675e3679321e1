#include "controller/work_queue.h"

#include <algorithm>

namespace poolkeeper::controller {

WorkQueue::WorkQueue(const Clock& clock, WorkQueueOptions options)
    : clock_(clock), options_(options) {}

void WorkQueue::ScheduleLocked(const std::string& key, Clock::TimePoint when) {
  // While a worker holds the key, remember the request and replay it on Done(), so one key is
  // never processed by two workers at once.
  if (in_flight_.contains(key)) {
    auto [it, inserted] = dirty_.try_emplace(key, when);
    if (!inserted) it->second = std::min(it->second, when);
  } else if (auto [it, inserted] = waiting_.try_emplace(key, when); inserted) {
    by_due_.emplace(when, it->first);
  } else if (when < it->second) {
    by_due_.erase({it->second, it->first});
    it->second = when;
    by_due_.emplace(when, it->first);
  }
  changed_.notify_one();
}

void WorkQueue::Add(const std::string& key) { AddAfter(key, Clock::Duration::zero()); }

void WorkQueue::AddAfter(const std::string& key, Clock::Duration delay) {
  std::lock_guard guard(mutex_);
  if (shut_down_) return;
  ScheduleLocked(key, clock_.Now() + delay);
}

void WorkQueue::AddRateLimited(const std::string& key) {
  std::lock_guard guard(mutex_);
  if (shut_down_) return;
  int failures = failures_[key]++;
  auto delay = options_.base_delay;
  for (int i = 0; i < failures && delay < options_.max_delay; ++i) delay *= 2;
  delay = std::min(delay, options_.max_delay);
  Clock::TimePoint now = clock_.Now();
  Clock::TimePoint when = now + delay;
  if (options_.retries_per_second > 0) {
    // Token bucket kept as the time it is full again: each retry takes one token (1/rate of time);
    // a retry waits until the bucket holds a token, i.e. until it is at most burst-1 tokens short.
    auto token = std::chrono::duration_cast<Clock::Duration>(
        std::chrono::duration<double>(1.0 / options_.retries_per_second));
    bucket_full_at_ = std::max(bucket_full_at_, now) + token;
    Clock::TimePoint slot = bucket_full_at_ - token * options_.retry_burst;
    when = std::max(when, slot);
  }
  ScheduleLocked(key, when);
}

bool WorkQueue::Retry(const std::string& key, const Error& error, Clock::Duration wait_for_user) {
  switch (error.next_step()) {
    case NextStep::kRetryNow: {
      // A conflict is usually gone on the next read, so the first retry is immediate; one that
      // keeps coming back (another writer racing every pass) backs off like any failure instead of
      // spinning a worker against the API server.
      {
        std::lock_guard guard(mutex_);
        if (failures_[key] < kImmediateRetries) {
          ++failures_[key];
          if (!shut_down_) ScheduleLocked(key, clock_.Now());
          return false;
        }
      }
      AddRateLimited(key);
      return true;
    }
    case NextStep::kBackOff:
      if (error.retry_after_seconds > 0) {
        AddAfter(key, std::chrono::seconds(error.retry_after_seconds));
      } else {
        AddRateLimited(key);
      }
      return true;
    case NextStep::kWaitForUser:
      Forget(key);
      AddAfter(key, wait_for_user);
      return false;
    case NextStep::kStop:
      // Not leader: this process steps down and exits, and the next leader reconciles every key.
      Forget(key);
      return false;
  }
  return false;
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard guard(mutex_);
  failures_.erase(key);
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard guard(mutex_);
  in_flight_.erase(key);
  if (auto it = dirty_.find(key); it != dirty_.end()) {
    Clock::TimePoint when = it->second;
    dirty_.erase(it);
    ScheduleLocked(key, when);
  }
}

std::optional<std::string> WorkQueue::TakeReadyLocked() {
  // The earliest ready time first; among equal times, the smallest key.
  if (by_due_.empty() || by_due_.begin()->first > clock_.Now()) return std::nullopt;
  auto waiting = waiting_.find(by_due_.begin()->second);
  by_due_.erase(by_due_.begin());
  std::string key = std::move(waiting_.extract(waiting).key());
  in_flight_.insert(key);
  return key;
}

std::optional<Clock::TimePoint> WorkQueue::NextDueLocked() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first;
}

std::optional<std::string> WorkQueue::TryGet() {
  std::lock_guard guard(mutex_);
  return TakeReadyLocked();
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mutex_);
  while (!shut_down_) {
    if (auto key = TakeReadyLocked()) return key;
    // Sleep until the earliest delayed key is due, or until something changes.
    if (auto next = NextDueLocked()) {
      changed_.wait_for(lock, *next - clock_.Now());
    } else {
      changed_.wait(lock);
    }
  }
  return std::nullopt;
}

void WorkQueue::ShutDown() {
  std::lock_guard guard(mutex_);
  shut_down_ = true;
  changed_.notify_all();
}

size_t WorkQueue::Depth() const {
  std::lock_guard guard(mutex_);
  return waiting_.size() + dirty_.size();
}

int WorkQueue::Failures(const std::string& key) const {
  std::lock_guard guard(mutex_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

std::optional<Clock::TimePoint> WorkQueue::NextReadyTime() const {
  std::lock_guard guard(mutex_);
  return NextDueLocked();
}

}  // namespace poolkeeper::controller
