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
// The leader renews every retry_period; when no renew has succeeded for renew_deadline it stops
// leading and the operator exits, as client-go's OnStoppedLeading does. A renew attempt counts
// from when it started (others see our write no earlier), and the elector bounds its own requests
// (it installs a RequestGate on its Client, which must be its own): while leading, each one may
// take only the time left until the renew deadline, so a slow API server cannot stretch
// leadership, and the lapse is noticed at the deadline, not when a slow request returns.
//
// Fencing. A standby takes over no earlier than lease_duration after it last saw our record
// change, and our last successful renew started before that change, so on our clock we are alone
// strictly until last renew + renew_deadline, with lease_duration - renew_deadline to spare for
// clock drift and for the network delay of a write already sent. WriteFence() is the RequestGate
// for the controller's Client: it refuses every write outside that window (kNotLeader, nothing
// sent) and gives the ones inside a timeout that ends with it.
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

// What lease_duration must exceed renew_deadline by, at least: the fence's room for clock drift
// between replicas and for a write sent just before the deadline to arrive.
inline constexpr Clock::Duration kMinFenceMargin = std::chrono::seconds(2);

// lease_duration >= renew_deadline + kMinFenceMargin, renew_deadline > retry_period > 0
// (client-go's rules, with the fence's margin), names non-empty.
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
  // `client` carries the Lease requests only: the elector sets its RequestGate.
  LeaderElector(Client& client, const Clock& clock, LeaderElectionOptions options,
                LeaderCallbacks callbacks = {});
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

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

  // We hold the lease and renewed it less than renew_deadline ago. Turns false at the deadline on
  // our clock, whatever request is in flight.
  bool IsLeader() const;
  // How long we certainly stay the only leader: the time left until the renew deadline, or
  // kNotLeader when we do not lead now.
  Result<Clock::Duration> WriteWindow() const;
  // The gate for the Client every other write goes through: reads pass unbounded (standbys fill
  // their caches), writes get WriteWindow() as their timeout, or its error with nothing sent.
  const RequestGate& WriteFence() const { return write_fence_; }
  std::string Leader() const;  // the holder last observed, "" when none
  const LeaderElectionOptions& options() const { return options_; }

 private:
  // The write fence (WriteFence()) and the bound on our own Lease requests (LeaseBound()).
  class Gate : public RequestGate {
   public:
    Gate(const LeaderElector& elector, bool fences_writes)
        : elector_(elector), fences_writes_(fences_writes) {}
    Result<Clock::Duration> Admit(std::string_view method) const override;

   private:
    const LeaderElector& elector_;
    bool fences_writes_;
  };

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
  // What a Lease request may take: while Run() leads, the time left until the renew deadline (an
  // error once it passed); otherwise renew_deadline, beyond which an acquisition is stale anyway.
  Result<Clock::Duration> LeaseBound() const;
  Clock::Duration TimeLeft() const;  // until the renew deadline; zero or less when past it
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
  bool leading_ = false;  // Run() is in its renew loop

  Gate write_fence_{*this, true};
  Gate lease_bound_{*this, false};

  std::mutex wait_mutex_;
  std::condition_variable_any wake_;
};

}  // namespace poolkeeper::kube
