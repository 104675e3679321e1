// Issue 12, item 3: two leaders wrote at once when the API server was slow. The elector's own
// requests end at the renew deadline, leadership ends at the deadline on our clock whatever is in
// flight, and the write fence keeps every other write inside the window where no one else leads.
#include <gtest/gtest.h>

#include <stop_token>

#include "fake_transport.h"
#include "kube/leader_election.h"

namespace poolkeeper::kube {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeTransport;
using testing::StatusBody;

constexpr char kLeases[] = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";
constexpr char kLease[] = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/poolkeeper";
constexpr char kConfigMap[] = "/api/v1/namespaces/shop/configmaps/a";

json Lease(std::string holder, std::string rv) {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", "poolkeeper"}, {"namespace", "ops"}, {"resourceVersion", rv}}},
          {"spec",
           {{"holderIdentity", holder},
            {"leaseDurationSeconds", 15},
            {"acquireTime", "2000-01-01T00:00:00.000000Z"},
            {"renewTime", "2000-01-01T00:00:00.000000Z"},
            {"leaseTransitions", 0}}}};
}

json ConfigMap() { return {{"metadata", {{"name", "a"}, {"namespace", "shop"}}}}; }

// Defaults as in production (lease 15 s, renew deadline 10 s, retry 2 s), and clients with the
// default 30 s request timeout, so that every bound seen below comes from the deadline.
class LeaderFenceTest : public ::testing::Test {
 protected:
  LeaderFenceTest() { writer_.SetGate(&elector_.WriteFence()); }

  // Acquires the absent lease at the current time.
  void Acquire() {
    transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
    transport_.RespondJson("POST", kLeases, 201, Lease("pod-a", "1"));
  }
  Status Write() {
    auto applied = writer_.Apply(resources::kConfigMap, ConfigMap());
    if (!applied) return std::unexpected(applied.error());
    return {};
  }
  void AcceptWrite() { transport_.RespondJson("PATCH", kConfigMap, 200, ConfigMap()); }
  std::vector<HttpRequest> Sent(std::string_view method, std::string_view path) const {
    std::vector<HttpRequest> out;
    for (const HttpRequest& r : transport_.Requests()) {
      if (r.method == method && r.path.substr(0, r.path.find('?')) == path) out.push_back(r);
    }
    return out;
  }

  FakeTransport transport_;
  FakeClock clock_;
  Client lease_client_{transport_};
  Client writer_{transport_};  // the controller's client
  int waits_ = 0;
  int started_ = 0;
  int stopped_ = 0;
  std::function<void()> on_wait_;
  LeaderElector elector_{lease_client_, clock_,
                         LeaderElectionOptions{.ns = "ops",
                                               .identity = "pod-a",
                                               .wait =
                                                   [this](Clock::Duration d, std::stop_token) {
                                                     ++waits_;
                                                     if (on_wait_) on_wait_();
                                                     clock_.Advance(d);
                                                   }},
                         LeaderCallbacks{.on_started_leading = [this] { ++started_; },
                                         .on_stopped_leading = [this] { ++stopped_; }}};
};

TEST_F(LeaderFenceTest, EachLeaseRequestTakesOnlyTheTimeLeftUntilTheRenewDeadline) {
  std::stop_source stop;
  on_wait_ = [&] {
    if (waits_ == 2) stop.request_stop();  // after one renew
  };
  Acquire();  // at 0: not leading yet, bounded by the renew deadline
  // The renew starts at 2 s, its GET takes 3 s.
  transport_.Queue("GET", kLease,
                   {.response = {.status = 200, .body = Lease("pod-a", "1").dump()},
                    .before = [&] { clock_.Advance(seconds(3)); }});
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "2"));
  transport_.RespondJson("PUT", kLease, 200, Lease("", "3"));  // the release, at 7 s
  elector_.Run(stop.get_token());

  auto gets = Sent("GET", kLease);
  auto puts = Sent("PUT", kLease);
  ASSERT_EQ(gets.size(), 2u);
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_EQ(Sent("POST", kLeases).at(0).timeout, seconds(10));
  EXPECT_EQ(gets[0].timeout, seconds(10));
  EXPECT_EQ(gets[1].timeout, seconds(8)) << "deadline 10 s, started at 2 s";
  EXPECT_EQ(puts[0].timeout, seconds(5)) << "after a 3 s GET";
  EXPECT_EQ(puts[1].timeout, seconds(5)) << "release at 7 s, renewed at 2 s";
  EXPECT_EQ(started_, 1);
  EXPECT_EQ(stopped_, 1);
}

TEST_F(LeaderFenceTest, AHangingRenewDoesNotExtendLeadershipPastTheDeadline) {
  Acquire();
  bool leader_at_9s = false, leader_at_10s = true;
  std::optional<Error> write_at_10s;
  // The renew starts at 2 s and its GET hangs until 14 s; meanwhile the deadline (10 s) passes.
  transport_.Queue("GET", kLease,
                   {.response = {.status = 200, .body = Lease("pod-a", "1").dump()}, .before = [&] {
                      clock_.Advance(seconds(7));
                      leader_at_9s = elector_.IsLeader();
                      clock_.Advance(seconds(1));
                      leader_at_10s = elector_.IsLeader();
                      if (auto written = Write(); !written) write_at_10s = written.error();
                      clock_.Advance(seconds(4));
                    }});
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "2"));  // never asked for
  elector_.Run(std::stop_token{});

  EXPECT_TRUE(leader_at_9s);
  EXPECT_FALSE(leader_at_10s) << "lost at the deadline, not when the request returns";
  ASSERT_TRUE(write_at_10s.has_value());
  EXPECT_EQ(write_at_10s->code, ErrorCode::kNotLeader);
  EXPECT_EQ(Sent("GET", kLease).at(1).timeout, seconds(8));
  EXPECT_TRUE(Sent("PUT", kLease).empty()) << "a renew past the deadline is not sent";
  EXPECT_TRUE(Sent("PATCH", kConfigMap).empty());
  EXPECT_EQ(waits_, 1);
  EXPECT_EQ(stopped_, 1);
  EXPECT_FALSE(elector_.IsLeader());
}

TEST_F(LeaderFenceTest, AWriteAfterTheDeadlineNeverReachesTheTransport) {
  Acquire();
  ASSERT_EQ(elector_.TryAcquireOrRenew(), true);
  clock_.Advance(milliseconds(9999));
  AcceptWrite();
  ASSERT_TRUE(Write());
  clock_.Advance(milliseconds(1));  // the deadline
  AcceptWrite();
  auto refused = Write();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kNotLeader);
  EXPECT_EQ(refused.error().next_step(), NextStep::kStop);
  EXPECT_EQ(Sent("PATCH", kConfigMap).size(), 1u);
  // Reads are not fenced: standbys keep their caches warm.
  transport_.RespondJson("GET", kConfigMap, 200, ConfigMap());
  ASSERT_TRUE(writer_.Get(resources::kConfigMap, "shop", "a"));
  EXPECT_EQ(transport_.LastRequest().timeout, seconds(30));
}

TEST_F(LeaderFenceTest, AWriteWhoseTimeoutWouldPassTheDeadlineEndsAtIt) {
  Acquire();
  ASSERT_EQ(elector_.TryAcquireOrRenew(), true);
  for (auto [at, timeout] : std::vector<std::pair<Clock::Duration, milliseconds>>{
           {seconds(0), seconds(10)},
           {seconds(4), seconds(6)},
           {milliseconds(5750), milliseconds(250)}}) {
    clock_.Advance(at);
    AcceptWrite();
    ASSERT_TRUE(Write());
    EXPECT_EQ(transport_.LastRequest().timeout, timeout) << "the client's own is 30 s";
  }
}

TEST_F(LeaderFenceTest, AStandbyAndAReleasedLeaderWriteNothing) {
  transport_.RespondJson("GET", kLease, 200, Lease("pod-b", "5"));
  ASSERT_EQ(elector_.TryAcquireOrRenew(), false);
  EXPECT_EQ(Write().error().code, ErrorCode::kNotLeader);

  clock_.Advance(seconds(16));  // pod-b's lease expired on our clock
  transport_.RespondJson("GET", kLease, 200, Lease("pod-b", "5"));
  transport_.RespondJson("PUT", kLease, 200, Lease("pod-a", "6"));
  ASSERT_EQ(elector_.TryAcquireOrRenew(), true);
  AcceptWrite();
  EXPECT_TRUE(Write());

  transport_.RespondJson("PUT", kLease, 200, Lease("", "7"));
  ASSERT_TRUE(elector_.Release());
  EXPECT_EQ(Write().error().code, ErrorCode::kNotLeader);
  EXPECT_EQ(Sent("PATCH", kConfigMap).size(), 1u);
}

TEST_F(LeaderFenceTest, AnAcquisitionSlowerThanTheRenewDeadlineDoesNotStartLeading) {
  std::stop_source stop;
  on_wait_ = [&] { stop.request_stop(); };
  transport_.Respond("GET", kLease, 404, StatusBody(404, "NotFound"));
  transport_.Queue("POST", kLeases,
                   {.response = {.status = 201, .body = Lease("pod-a", "1").dump()},
                    .before = [&] { clock_.Advance(seconds(11)); }});
  elector_.Run(stop.get_token());
  EXPECT_EQ(started_, 0) << "its renew deadline passed before the lease was ours";
  EXPECT_EQ(Write().error().code, ErrorCode::kNotLeader);
}

}  // namespace
}  // namespace poolkeeper::kube
