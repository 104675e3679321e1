#include "kube/leader_election.h"

#include <algorithm>
#include <ctime>

#include "common/json_get.h"
#include "common/log.h"

namespace poolkeeper::kube {

using nlohmann::json;

namespace {

std::string Seconds(Clock::Duration duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count() /
                        1000.0) +
         "s";
}

}  // namespace

Status ValidateLeaderElection(const LeaderElectionOptions& options) {
  if (options.ns.empty()) return Invalid("leaderElection.namespace", "must not be empty");
  if (options.name.empty()) return Invalid("leaderElection.name", "must not be empty");
  if (options.identity.empty()) return Invalid("leaderElection.identity", "must not be empty");
  if (options.retry_period <= Clock::Duration::zero()) {
    return Invalid("leaderElection.retryPeriod", "must be positive");
  }
  if (options.renew_deadline <= options.retry_period) {
    return Invalid("leaderElection.renewDeadline", "must be longer than retryPeriod");
  }
  if (options.lease_duration < options.renew_deadline + kMinFenceMargin) {
    return Invalid("leaderElection.leaseDuration",
                   "must exceed renewDeadline by at least " + Seconds(kMinFenceMargin) +
                       " (the margin that keeps an old leader's last write before a new "
                       "leader's first)");
  }
  return {};
}

LeaderElector::LeaderElector(Client& client, const Clock& clock, LeaderElectionOptions options,
                             LeaderCallbacks callbacks)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)) {
  if (!options_.wall_clock) options_.wall_clock = [] { return std::chrono::system_clock::now(); };
  client_.SetGate(&lease_bound_);
}

LeaderElector::~LeaderElector() { client_.SetGate(nullptr); }

Result<Clock::Duration> LeaderElector::Gate::Admit(std::string_view method) const {
  if (!fences_writes_) return elector_.LeaseBound();
  if (method == "GET") return Clock::Duration::max();
  return elector_.WriteWindow();
}

Result<Clock::Duration> LeaderElector::LeaseBound() const {
  std::lock_guard guard(mutex_);
  if (!leading_) return options_.renew_deadline;
  Clock::Duration left =
      last_renew_ ? *last_renew_ + options_.renew_deadline - clock_.Now() : Clock::Duration::zero();
  if (left <= Clock::Duration::zero()) {
    return Fail(ErrorCode::kTimeout,
                "lease " + options_.ns + "/" + options_.name + ": the renew deadline passed");
  }
  return left;
}

Result<Clock::Duration> LeaderElector::WriteWindow() const {
  std::lock_guard guard(mutex_);
  if (!IsLeaderLocked()) {
    return Fail(ErrorCode::kNotLeader, "not the leader (lease " + options_.ns + "/" +
                                           options_.name +
                                           "): writes are fenced until this replica leads again");
  }
  return *last_renew_ + options_.renew_deadline - clock_.Now();
}

Clock::Duration LeaderElector::TimeLeft() const {
  std::lock_guard guard(mutex_);
  if (!last_renew_) return Clock::Duration::zero();
  return *last_renew_ + options_.renew_deadline - clock_.Now();
}

std::string LeaderElector::WallNow() const {
  return FormatRfc3339(options_.wall_clock(), TimePrecision::kMicroseconds);
}

LeaderElector::Record LeaderElector::RecordOf(const json& lease) const {
  Record record;
  auto spec_it = lease.find("spec");
  const json spec = spec_it != lease.end() && spec_it->is_object() ? *spec_it : json::object();
  record.holder = JsonGet<std::string>(spec, "holderIdentity", "");
  int64_t seconds = JsonGet<int64_t>(spec, "leaseDurationSeconds", 0);
  // A record without a duration is treated as lasting ours: better to wait than to steal.
  record.lease_duration = seconds > 0 ? Clock::Duration(std::chrono::seconds(seconds))
                                      : Clock::Duration(options_.lease_duration);
  record.acquire_time = JsonGet<std::string>(spec, "acquireTime", "");
  record.transitions = JsonGet<int64_t>(spec, "leaseTransitions", 0);
  record.raw = spec.dump();
  return record;
}

json LeaderElector::SpecFor(const std::string& holder, int64_t lease_seconds,
                            const std::string& acquire_time, const std::string& renew_time,
                            int64_t transitions) const {
  return {{"holderIdentity", holder},
          {"leaseDurationSeconds", lease_seconds},
          {"acquireTime", acquire_time},
          {"renewTime", renew_time},
          {"leaseTransitions", transitions}};
}

void LeaderElector::Observe(const json& lease, std::optional<Clock::TimePoint> renewed_at) {
  Record record = RecordOf(lease);
  std::optional<std::string> new_holder;
  {
    std::lock_guard guard(mutex_);
    lease_ = lease;
    if (record.raw != observed_.raw) {
      if (record.holder != observed_.holder) new_holder = record.holder;
      observed_ = std::move(record);
      observed_time_ = clock_.Now();
    }
    if (renewed_at) {
      last_renew_ = renewed_at;
    } else if (observed_.holder != options_.identity) {
      last_renew_.reset();
    }
  }
  if (new_holder && callbacks_.on_new_leader) callbacks_.on_new_leader(*new_holder);
}

Result<bool> LeaderElector::TryAcquireOrRenew() {
  // The attempt counts from its start: others see our write no earlier than this.
  Clock::TimePoint started = clock_.Now();
  std::string now = WallNow();
  int64_t lease_seconds = options_.lease_duration.count();
  auto current = client_.Get(resources::kLease, options_.ns, options_.name);
  if (!current) {
    if (current.error().code != ErrorCode::kNotFound) return std::unexpected(current.error());
    json lease{{"apiVersion", resources::kLease.ApiVersion()},
               {"kind", std::string(resources::kLease.kind)},
               {"metadata", {{"name", options_.name}, {"namespace", options_.ns}}},
               {"spec", SpecFor(options_.identity, lease_seconds, now, now, 0)}};
    auto created = client_.Create(resources::kLease, lease);
    if (!created) return std::unexpected(created.error());
    Observe(*created, started);
    return true;
  }

  Observe(*current, std::nullopt);
  Record old;
  Clock::TimePoint seen_since;
  {
    std::lock_guard guard(mutex_);
    old = observed_;
    seen_since = observed_time_;
  }
  bool ours = old.holder == options_.identity;
  if (!old.holder.empty() && !ours && clock_.Now() < seen_since + old.lease_duration) {
    return false;  // held, and renewed within its duration as far as we can tell
  }
  json lease = *current;
  lease["spec"] =
      ours ? SpecFor(options_.identity, lease_seconds,
                     old.acquire_time.empty() ? now : old.acquire_time, now, old.transitions)
           : SpecFor(options_.identity, lease_seconds, now, now, old.transitions + 1);
  auto written = client_.Update(resources::kLease, lease);
  if (!written) return std::unexpected(written.error());
  Observe(*written, started);
  return true;
}

Status LeaderElector::Release() {
  json lease;
  int64_t transitions = 0;
  {
    std::lock_guard guard(mutex_);
    if (observed_.holder != options_.identity || !lease_) return {};
    lease = *lease_;
    transitions = observed_.transitions;
  }
  std::string now = WallNow();
  lease["spec"] = SpecFor("", 1, now, now, transitions);
  auto written = client_.Update(resources::kLease, lease);
  if (!written) return std::unexpected(written.error());
  Observe(*written, std::nullopt);
  return {};
}

bool LeaderElector::IsLeaderLocked() const {
  return observed_.holder == options_.identity && last_renew_ &&
         clock_.Now() - *last_renew_ < options_.renew_deadline;
}

bool LeaderElector::IsLeader() const {
  std::lock_guard guard(mutex_);
  return IsLeaderLocked();
}

std::string LeaderElector::Leader() const {
  std::lock_guard guard(mutex_);
  return observed_.holder;
}

void LeaderElector::Wait(Clock::Duration duration, std::stop_token stop) {
  if (options_.wait) return options_.wait(duration, stop);
  std::unique_lock lock(wait_mutex_);
  wake_.wait_for(lock, stop, duration, [] { return false; });
}

void LeaderElector::Run(std::stop_token stop) {
  for (;;) {
    if (stop.stop_requested()) return;
    auto held = TryAcquireOrRenew();
    // An acquisition slower than renew_deadline is past its deadline on arrival: not leading yet.
    if (held && *held && IsLeader()) break;
    if (!held) {
      Log(LogLevel::kInfo, "could not acquire the leader lease",
          {{"lease", options_.ns + "/" + options_.name}, {"error", held.error().message}});
    }
    Wait(options_.retry_period, stop);
  }
  {
    std::lock_guard guard(mutex_);
    leading_ = true;
  }
  Log(LogLevel::kInfo, "became leader",
      {{"lease", options_.ns + "/" + options_.name}, {"identity", options_.identity}});
  if (callbacks_.on_started_leading) callbacks_.on_started_leading();

  std::string lost;
  std::string last_error;
  while (lost.empty()) {
    // Never past the deadline: a lapse is noticed when it happens.
    Wait(std::clamp(TimeLeft(), Clock::Duration::zero(), options_.retry_period), stop);
    if (stop.stop_requested()) break;
    if (IsLeader()) {
      // Its requests may take only the time left (LeaseBound), so it returns by the deadline.
      auto held = TryAcquireOrRenew();
      if (held && !*held) {
        lost = "the lease is held by " + Leader();
        break;
      }
      last_error = held ? "" : held.error().message;
    }
    if (!IsLeader()) {
      // Failed attempts, or one that succeeded too late to count: past the deadline either way.
      lost = "no renew succeeded within the renew deadline";
      if (!last_error.empty()) lost += " (last error: " + last_error + ")";
    }
  }
  if (lost.empty()) {
    if (auto released = Release(); !released) {
      Log(LogLevel::kWarn, "could not release the leader lease",
          {{"lease", options_.ns + "/" + options_.name}, {"error", released.error().message}});
    }
  } else {
    Log(LogLevel::kError, "lost leadership",
        {{"lease", options_.ns + "/" + options_.name}, {"reason", lost}});
  }
  {
    std::lock_guard guard(mutex_);
    leading_ = false;
  }
  if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
}

}  // namespace poolkeeper::kube
