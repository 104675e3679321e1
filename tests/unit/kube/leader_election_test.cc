#include "kube/leader_election.h"

#include <gtest/gtest.h>

#include <thread>

#include "fake_transport.h"

namespace poolkeeper::kube {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using testing::FakeTransport;
using testing::StatusBody;

constexpr char kLeases[] = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";
constexpr char kLease[] = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/poolkeeper";

// 2026-01-02T03:04:05.123456Z
constexpr std::chrono::system_clock::time_point kWallStart{
    std::chrono::microseconds(1767323045123456)};

json Lease(std::string holder, std::string rv, std::string renew = "2001-01-01T00:00:00.000000Z",
           int64_t transitions = 3, int64_t duration = 15) {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", "poolkeeper"}, {"namespace", "ops"}, {"resourceVersion", rv}}},
          {"spec",
           {{"holderIdentity", holder},
            {"leaseDurationSeconds", duration},
            {"acquireTime", "2000-01-01T00:00:00.000000Z"},
            {"renewTime", renew},
            {"leaseTransitions", transitions}}}};
}

class LeaderElectionTest : public ::testing::Test {
 protected:
  LeaderElector Elector(std::string identity = "pod-a", LeaderCallbacks callbacks = {}) {
    return LeaderElector(client_, clock_,
                         {.ns = "ops",
                          .identity = std::move(identity),
                          .wall_clock = [this] { return wall_; },
                          .wait =
                              [this](Clock::Duration d, std::stop_token) {
                                ++waits_;
                                if (on_wait_) on_wait_();
                                clock_.Advance(d);
                                wall_ += std::chrono::duration_cast<std::chrono::microseconds>(d);
                              }},
                         std::move(callbacks));
  }
  // Answers the next GET with `lease`.
  void HeldBy(const json& lease) { transport_.RespondJson("GET", kLease, 200, lease); }
  json LastSpec() { return json::parse(transport_.LastRequest().body)["spec"]; }

  FakeTransport transport_;
  FakeClock clock_;
  Client client_{transport_, {.request_timeout = seconds(5)}};
  std::chrono::system_clock::time_point wall_ = kWallStart;
  int waits_ = 0;
  std::function<void()> on_wait_;
};

TEST(ValidateLeaderElection, NeedsLeaseLongerThanDeadlineLongerThanRetry) {
  LeaderElectionOptions good{.ns = "ops", .identity = "pod-a"};
  EXPECT_TRUE(ValidateLeaderElection(good));
  struct Case {
    std::string field;
    std::function<void(LeaderElectionOptions&)> change;
  };
  for (const Case& c : std::vector<Case>{
           {"leaderElection.identity", [](auto& o) { o.identity.clear(); }},
           {"leaderElection.namespace", [](auto& o) { o.ns.clear(); }},
           {"leaderElection.renewDeadline", [](auto& o) { o.renew_deadline = seconds(2); }},
           {"leaderElection.leaseDuration", [](auto& o) { o.lease_duration = seconds(10); }},
           // Longer than the renew deadline, but without the fence's margin.
           {"leaderElection.leaseDuration", [](auto& o) { o.lease_duration = seconds(11); }},
       }) {
    LeaderElectionOptions options = good;
    c.change(options);
    auto status = ValidateLeaderElection(options);
    ASSERT_FALSE(status) << c.field;
    EXPECT_EQ(status.error().fields.at(0).field, c.field);
  }
}

TEST_F(LeaderElectionTest, AcquiresAnAbsentLeaseByCreatingIt) {
  std::vector<std::string> leaders;
  auto elector =
      Elector("pod-a", {.on_new_leader = [&](const std::string& h) { leaders.push_back(h); }});
  transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
  transport_.RespondJson("POST", kLeases, 201, Lease("pod-a", "1"));
  auto held = elector.TryAcquireOrRenew();
  ASSERT_TRUE(held) << held.error().message;
  EXPECT_TRUE(*held);
  EXPECT_TRUE(elector.IsLeader());
  json sent = json::parse(transport_.LastRequest().body);
  EXPECT_EQ(sent["metadata"]["name"], "poolkeeper");
  EXPECT_EQ(sent["spec"], (json{{"holderIdentity", "pod-a"},
                                {"leaseDurationSeconds", 15},
                                {"acquireTime", "2026-01-02T03:04:05.123456Z"},
                                {"renewTime", "2026-01-02T03:04:05.123456Z"},
                                {"leaseTransitions", 0}}));
  EXPECT_EQ(leaders, (std::vector<std::string>{"pod-a"}));
}

TEST_F(LeaderElectionTest, RenewsItsOwnLeaseWithTheResourceVersionItRead) {
  auto elector = Elector();
  HeldBy(Lease("pod-a", "7", "2026-01-02T03:04:05.123456Z", 3));
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "8"));
  wall_ += seconds(2);
  ASSERT_EQ(elector.TryAcquireOrRenew(), true);
  HttpRequest put = transport_.LastRequest();
  EXPECT_EQ(put.method, "PUT");
  json sent = json::parse(put.body);
  EXPECT_EQ(sent["metadata"]["resourceVersion"], "7") << "optimistic concurrency";
  EXPECT_EQ(sent["spec"]["renewTime"], "2026-01-02T03:04:07.123456Z");
  EXPECT_EQ(sent["spec"]["acquireTime"], "2000-01-01T00:00:00.000000Z") << "kept on renew";
  EXPECT_EQ(sent["spec"]["leaseTransitions"], 3) << "a renew is no transition";
  EXPECT_TRUE(elector.IsLeader());
}

TEST_F(LeaderElectionTest, RespectsAnotherHoldersLeaseUntilItIsUnchangedForItsDuration) {
  auto elector = Elector();
  // The holder's renewTime is years old by its own clock: remote clocks are not trusted, only
  // how long the record stays unchanged on ours.
  json stale = Lease("pod-b", "5", "2001-01-01T00:00:00.000000Z", 3);
  for (seconds advance : {seconds(0), seconds(10), seconds(4)}) {
    clock_.Advance(advance);
    HeldBy(stale);
    ASSERT_EQ(elector.TryAcquireOrRenew(), false) << "after " << advance.count() << "s more";
    EXPECT_EQ(elector.Leader(), "pod-b");
    EXPECT_FALSE(elector.IsLeader());
  }
  clock_.Advance(seconds(1));  // 15s since the record was first seen
  HeldBy(stale);
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "6"));
  ASSERT_EQ(elector.TryAcquireOrRenew(), true);
  json spec = LastSpec();
  EXPECT_EQ(spec["holderIdentity"], "pod-a");
  EXPECT_EQ(spec["leaseTransitions"], 4);
  EXPECT_EQ(spec["acquireTime"], "2026-01-02T03:04:05.123456Z");
  for (const HttpRequest& request : transport_.Requests()) {
    if (request.method == "PUT") {
      EXPECT_EQ(json::parse(request.body)["metadata"]["resourceVersion"], "5");
    }
  }
}

TEST_F(LeaderElectionTest, AHolderThatRenewsRestartsTheExpiryClock) {
  auto elector = Elector();
  HeldBy(Lease("pod-b", "5", "t1"));
  ASSERT_EQ(elector.TryAcquireOrRenew(), false);
  clock_.Advance(seconds(10));
  HeldBy(Lease("pod-b", "6", "t2"));  // renewed meanwhile
  ASSERT_EQ(elector.TryAcquireOrRenew(), false);
  clock_.Advance(seconds(10));  // 20s since first seen, 10s since it changed
  HeldBy(Lease("pod-b", "6", "t2"));
  EXPECT_EQ(elector.TryAcquireOrRenew(), false);
  EXPECT_EQ(transport_.Unused(), 0u);
}

TEST_F(LeaderElectionTest, TakesAReleasedLeaseAtOnce) {
  auto elector = Elector();
  HeldBy(Lease("", "9", "t", 4, 1));
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "10"));
  ASSERT_EQ(elector.TryAcquireOrRenew(), true);
  EXPECT_EQ(LastSpec()["leaseTransitions"], 5);
}

TEST_F(LeaderElectionTest, LosingTheWriteRaceMeansNotLeaderThisRound) {
  auto elector = Elector();
  HeldBy(Lease("", "9"));
  transport_.Respond("PUT", kLease, 409,
                     StatusBody(409, "Conflict", "the object has been modified"));
  auto held = elector.TryAcquireOrRenew();
  ASSERT_FALSE(held);
  EXPECT_EQ(held.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(elector.IsLeader());

  transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
  transport_.Respond("POST", kLeases, 409, StatusBody(409, "AlreadyExists"));
  held = elector.TryAcquireOrRenew();
  ASSERT_FALSE(held);
  EXPECT_EQ(held.error().code, ErrorCode::kAlreadyExists);
  EXPECT_FALSE(elector.IsLeader());
}

TEST_F(LeaderElectionTest, RunStopsLeadingWhenNoRenewSucceedsWithinTheDeadline) {
  int started = 0, stopped = 0;
  auto elector = Elector("pod-a", {.on_started_leading = [&] { ++started; },
                                   .on_stopped_leading = [&] { ++stopped; }});
  transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
  transport_.RespondJson("POST", kLeases, 201, Lease("pod-a", "1"));
  // Every renew after that fails: nothing more is scripted.
  auto acquired_at = clock_.Now();
  elector.Run(std::stop_token{});
  EXPECT_EQ(started, 1);
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(clock_.Now() - acquired_at, seconds(10)) << "renew_deadline after the last renew";
  EXPECT_EQ(waits_, 5);
  EXPECT_FALSE(elector.IsLeader());
  for (const HttpRequest& request : transport_.Requests()) {
    EXPECT_NE(request.method, "PUT") << "a lost lease is not released";
  }
}

TEST_F(LeaderElectionTest, RunStopsLeadingAtOnceWhenAnotherHolderTookTheLease) {
  int stopped = 0;
  auto elector = Elector("pod-a", {.on_stopped_leading = [&] { ++stopped; }});
  transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
  transport_.RespondJson("POST", kLeases, 201, Lease("pod-a", "1"));
  HeldBy(Lease("pod-b", "2"));
  elector.Run(std::stop_token{});
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(waits_, 1);
  EXPECT_EQ(elector.Leader(), "pod-b");
}

TEST_F(LeaderElectionTest, RunRetriesUntilTheHoldersLeaseExpiresThenRenewsAndReleasesOnStop) {
  std::stop_source stop;
  int started = 0, stopped = 0;
  auto elector = Elector("pod-a", {.on_started_leading = [&] { ++started; },
                                   .on_stopped_leading = [&] { ++stopped; }});
  json theirs = Lease("pod-b", "5");
  for (int i = 0; i < 8; ++i) HeldBy(theirs);  // at 0, 2, ..., 14s: still valid
  HeldBy(theirs);                              // at 16s: expired
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "6", "r1", 4));
  HeldBy(Lease("pod-a", "6", "r1", 4));  // the renew
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "7", "r2", 4));
  on_wait_ = [&] {
    if (started == 1 && waits_ == 10) stop.request_stop();  // after the first renew
  };
  transport_.RespondJson("PUT", kLease, 200, Lease("", "8", "r3", 4, 1));  // the release
  elector.Run(stop.get_token());

  EXPECT_EQ(started, 1);
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(transport_.Unused(), 0u);
  json release = json::parse(transport_.LastRequest().body);
  EXPECT_EQ(release["metadata"]["resourceVersion"], "7") << "released from the renewed lease";
  EXPECT_EQ(release["spec"]["holderIdentity"], "");
  EXPECT_EQ(release["spec"]["leaseDurationSeconds"], 1);
  EXPECT_EQ(release["spec"]["leaseTransitions"], 4);
  EXPECT_FALSE(elector.IsLeader());
}

TEST_F(LeaderElectionTest, ARenewThatSucceedsTooLateStillEndsLeadership) {
  int stopped = 0;
  auto elector = Elector("pod-a", {.on_stopped_leading = [&] { ++stopped; }});
  transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
  transport_.RespondJson("POST", kLeases, 201, Lease("pod-a", "1"));
  // The renew begins at 2s and its GET hangs 10s. Leadership lapsed at 10s (IsLeader() was false
  // from then on), and a lapse ends it, as in client-go, even though the write lands at 12s.
  transport_.Queue("GET", kLease,
                   {.response = {.status = 200, .body = Lease("pod-a", "1").dump()},
                    .before = [&] { clock_.Advance(seconds(10)); }});
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "2"));
  elector.Run(std::stop_token{});
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(waits_, 1);
  EXPECT_FALSE(elector.IsLeader());
}

TEST_F(LeaderElectionTest, ReleaseWithoutTheLeaseSendsNothing) {
  auto elector = Elector();
  EXPECT_TRUE(elector.Release());
  HeldBy(Lease("pod-b", "5"));
  ASSERT_EQ(elector.TryAcquireOrRenew(), false);
  EXPECT_TRUE(elector.Release());
  EXPECT_EQ(transport_.Requests().size(), 1u);
}

TEST_F(LeaderElectionTest, RealTimeWaitEndsWhenStopIsRequested) {
  std::mutex mutex;
  std::condition_variable cv;
  bool leading = false, done = false;
  LeaderElector elector(client_, clock_,
                        {.ns = "ops", .identity = "pod-a", .retry_period = std::chrono::hours(1)},
                        {.on_started_leading = [&] {
                          std::lock_guard guard(mutex);
                          leading = true;
                          cv.notify_all();
                        }});
  transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
  transport_.RespondJson("POST", kLeases, 201, Lease("pod-a", "1"));
  transport_.RespondJson("PUT", kLease, 200, Lease("", "2", "r", 0, 1));
  std::jthread runner([&](std::stop_token stop) {
    elector.Run(stop);
    std::lock_guard guard(mutex);
    done = true;
    cv.notify_all();
  });
  std::unique_lock lock(mutex);
  ASSERT_TRUE(cv.wait_for(lock, seconds(10), [&] { return leading; }));
  runner.request_stop();
  EXPECT_TRUE(cv.wait_for(lock, seconds(10), [&] { return done; }))
      << "an hour-long retry wait must end on stop";
}

}  // namespace
}  // namespace poolkeeper::kube
