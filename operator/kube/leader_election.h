// Leader election over a coordination.k8s.io/v1 Lease, with client-go's semantics, so that of
// several operator replicas exactly one reconciles at a time and a standby takes over when the
// leader dies.
//
// A replica takes the lease when it is absent (Create), already ours, released (no holder), or
// expired. Expired is judged on our own clock only: the holder's record (holderIdentity,
// renewTime, ...) has not changed for its leaseDurationSeconds since we first saw that record.
// Remote wall-clock times are written for humans and never compared, since clocks of nodes
// disagree. Writes are Updates carrying the resourceVersion we read, so two replicas racing for
// the lease cannot both win: the loser gets kConflict and is not leader this round.
//
// The leader renews every retry_period; when no renew has succeeded for renew_deadline (shorter
// than lease_duration, so it stops before anyone can take over) it stops leading and the operator
// exits, as client-go's OnStoppedLeading does. A renew attempt counts from when it started, so a
// slow request cannot stretch leadership: give the elector a Client whose request_timeout is
// shorter than renew_deadline (a warning is logged otherwise).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>

#include "common/clock.h"
#include "common/error.h"
#include "kube/client.h"

namespace poolkeeper::kube {

struct LeaderElectionOptions {
  std::string ns;                   // of the Lease
  std::string name = "poolkeeper";  // of the Lease
  std::string identity;             // unique per replica: the pod name
  std::chrono::seconds lease_duration{15};
  Clock::Duration renew_deadline = std::chrono::seconds(10);
  Clock::Duration retry_period = std::chrono::seconds(2);
  // The wall clock acquireTime and renewTime are written from; system_clock::now when empty.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
  // How Run() waits between attempts; when empty, a real-time wait that a stop request ends
  // early. Tests pass one that advances a FakeClock, so Run() is driven without sleeping.
  std::function<void(Clock::Duration, std::stop_token)> wait;
};

// lease_duration > renew_deadline > retry_period > 0 (client-go's rules), names non-empty.
Status ValidateLeaderElection(const LeaderElectionOptions& options);

struct LeaderCallbacks {
  std::function<void()> on_started_leading;
  // Once, when leading ends: lost (renew deadline passed or another holder seen) or released on
  // stop. The operator exits on a loss, since it may no longer write.
  std::function<void()> on_stopped_leading;
  // Whenever the holder we observe changes (our own identity included).
  std::function<void(const std::string& holder)> on_new_leader;
};

class LeaderElector {
 public:
  LeaderElector(Client& client, const Clock& clock, LeaderElectionOptions options,
                LeaderCallbacks callbacks = {});

  // One attempt: GET the lease, then Create, Update (renew or take over) or nothing. True when
  // we hold the lease after it, false when another holder's lease is still valid; an error when
  // the attempt failed (kConflict or kAlreadyExists: another replica wrote first).
  Result<bool> TryAcquireOrRenew();

  // Tries every retry_period until it holds the lease, calls on_started_leading, then renews
  // every retry_period. Returns when leadership is lost (after on_stopped_leading) or when `stop`
  // is requested (after Release() and, if it was leading, on_stopped_leading).
  void Run(std::stop_token stop);

  // Gives the lease up on a clean shutdown, as client-go's ReleaseOnCancel does: no holder and
  // leaseDurationSeconds 1, so a standby takes over at its next attempt. Nothing when not leader.
  Status Release();

  // We hold the lease and renewed it less than renew_deadline ago.
  bool IsLeader() const;
  std::string Leader() const;  // the holder last observed, "" when none
  const LeaderElectionOptions& options() const { return options_; }

 private:
  struct Record {
    std::string holder;
    Clock::Duration lease_duration{};
    std::string acquire_time;
    int64_t transitions = 0;
    std::string raw;  // the spec as read, to notice any change
  };

  Record RecordOf(const nlohmann::json& lease) const;
  nlohmann::json SpecFor(const std::string& holder, int64_t lease_seconds,
                         const std::string& acquire_time, const std::string& renew_time,
                         int64_t transitions) const;
  // Remembers `lease` as the last one seen; `renewed_at` is set when we just wrote it.
  void Observe(const nlohmann::json& lease, std::optional<Clock::TimePoint> renewed_at);
  bool IsLeaderLocked() const;
  void Wait(Clock::Duration duration, std::stop_token stop);
  std::string WallNow() const;

  Client& client_;
  const Clock& clock_;
  LeaderElectionOptions options_;
  LeaderCallbacks callbacks_;

  mutable std::mutex mutex_;             // guards the observed state below
  std::optional<nlohmann::json> lease_;  // the last Lease read or written (its resourceVersion)
  Record observed_;
  Clock::TimePoint observed_time_{};  // when observed_ last changed, on our clock
  std::optional<Clock::TimePoint> last_renew_;

  std::mutex wait_mutex_;
  std::condition_variable_any wake_;
};

}  // namespace poolkeeper::kube
