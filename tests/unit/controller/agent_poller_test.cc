// The agent poller on a fake AgentStatusSource and the fake clock, driven on the test's thread
// (RunDue runs the polls there when its helpers are not started): which pods it asks and how often,
// when it queues a pool, what a reconcile reads from it; and, with its helpers started, that a hung
// agent holds up no other pod.
#include "controller/agent_poller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <set>

namespace poolkeeper::controller {
namespace {

using nlohmann::json;
using std::chrono::seconds;

class FakeAgents : public AgentStatusSource {
 public:
  Result<AgentReport> Report(const std::string& pod_ip) override {
    std::unique_lock lock(mutex);
    asked.push_back(pod_ip);
    if (pod_ip == hung_ip) {
      ++hung;
      changed.notify_all();
      changed.wait(lock, [this] { return released; });
    }
    auto it = reports.find(pod_ip);
    if (it == reports.end()) return Fail(ErrorCode::kUnavailable, "connection refused");
    return it->second;
  }
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, AgentReport> reports;  // by IP; absent: the agent does not answer
  std::vector<std::string> asked;
  std::string hung_ip;  // its poll waits until `released`
  int hung = 0;
  bool released = false;
};

json AgentPod(const std::string& name, const std::string& ip, const std::string& pool = "orders") {
  return {{"metadata",
           {{"name", name},
            {"namespace", "shop"},
            {"uid", "uid-" + name},
            {"labels", {{"poolkeeper.io/pool", pool}}}}},
          {"spec", {{"containers", {{{"name", "pgbouncer"}}, {{"name", "agent"}}}}}},
          {"status", {{"phase", "Running"}, {"podIP", ip}}}};
}

AgentReport Loaded(const std::string& hash, int64_t servers = 0, int64_t waiting = 0,
                   int64_t longest = 0) {
  return {.config_hash = hash,
          .server_connections = servers,
          .clients_waiting = waiting,
          .longest_wait_seconds = longest};
}

constexpr char kOrders[] = "shop/orders";

struct AgentPollerTest : ::testing::Test {
  void SetPods(std::vector<json> pods) {
    std::lock_guard guard(mutex);
    cached.clear();
    for (auto& pod : pods) cached.push_back(std::make_shared<const json>(std::move(pod)));
  }
  // The pool keys queued since the last call (the work queue takes a key once).
  std::set<std::string> Queued() {
    std::lock_guard guard(mutex);
    std::vector<std::string> keys = std::exchange(queued, {});
    return {keys.begin(), keys.end()};
  }
  // What a reconcile of the cached pods reads.
  AgentSnapshot Snapshot() {
    std::vector<json> pods;
    {
      std::lock_guard guard(mutex);
      for (const auto& pod : cached) pods.push_back(*pod);
    }
    return poller.Snapshot(pods);
  }
  // Asks what is due on the test's thread; returns the IPs asked.
  std::vector<std::string> Poll() {
    poller.RunDue();
    std::lock_guard guard(agents.mutex);
    return std::exchange(agents.asked, {});
  }
  void Answer(const std::string& ip, std::optional<AgentReport> report) {
    std::lock_guard guard(agents.mutex);
    if (report) {
      agents.reports[ip] = *report;
    } else {
      agents.reports.erase(ip);
    }
  }

  FakeClock clock;
  FakeAgents agents;
  std::mutex mutex;
  std::condition_variable queued_changed;
  std::vector<kube::ObjectPtr> cached;
  std::vector<std::string> queued;
  AgentPoller poller{{.source = agents,
                      .clock = clock,
                      .pods =
                          [this] {
                            std::lock_guard guard(mutex);
                            return cached;
                          },
                      .enqueue =
                          [this](const std::string& key) {
                            std::lock_guard guard(mutex);
                            queued.push_back(key);
                            queued_changed.notify_all();
                          }},
                     {}};
};

TEST_F(AgentPollerTest, AsksOnlyRunningPodsThatHaveAnAgentAndAnAddress) {
  json no_ip = AgentPod("b", "");
  json terminating = AgentPod("c", "10.0.0.3");
  terminating["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z";
  json no_agent = AgentPod("d", "10.0.0.4");
  no_agent["spec"]["containers"] = {{{"name", "pgbouncer"}}};
  json finished = AgentPod("e", "10.0.0.5");
  finished["status"]["phase"] = "Succeeded";
  json no_pool = AgentPod("f", "10.0.0.6");
  no_pool["metadata"].erase("labels");
  SetPods({AgentPod("a", "10.0.0.1"), no_ip, terminating, no_agent, finished, no_pool,
           AgentPod("g", "10.0.0.7")});
  Answer("10.0.0.1", Loaded("h1"));
  EXPECT_EQ(Poll(), (std::vector<std::string>{"10.0.0.1", "10.0.0.7"}));
  EXPECT_EQ(Snapshot().reports, (std::map<std::string, AgentReport>{{"a", Loaded("h1")}}))
      << "a pod whose agent never answered is absent: it stays charged its old figure";
}

TEST_F(AgentPollerTest, AsksEveryIntervalAndEverySecondThePodsOfAPoolTheReconcilerWaitsOn) {
  SetPods({AgentPod("a", "10.0.0.1"), AgentPod("x", "10.0.0.9", "other")});
  Answer("10.0.0.1", Loaded("h1", 10));
  Answer("10.0.0.9", Loaded("h9"));
  EXPECT_EQ(Poll().size(), 2u);
  clock.Advance(seconds(9));
  EXPECT_TRUE(Poll().empty()) << "not due before the interval";
  clock.Advance(seconds(1));
  EXPECT_EQ(Poll().size(), 2u);

  poller.Decided(kOrders, 8, Snapshot());  // a reload, not confirmed
  clock.Advance(seconds(1));
  EXPECT_EQ(Poll(), std::vector<std::string>{"10.0.0.1"});
  clock.Advance(seconds(1));
  EXPECT_EQ(Poll(), std::vector<std::string>{"10.0.0.1"}) << "every second while it waits";

  poller.Decided(kOrders, std::nullopt, Snapshot());  // confirmed
  clock.Advance(seconds(1));
  EXPECT_EQ(Poll(), std::vector<std::string>{"10.0.0.1"}) << "the poll that was due";
  clock.Advance(seconds(5));
  EXPECT_TRUE(Poll().empty()) << "back to the interval";
}

TEST_F(AgentPollerTest, QueuesAPoolAtOnceWhenAReportChangesWhatItsReconcileDecides) {
  SetPods({AgentPod("a", "10.0.0.1")});
  Answer("10.0.0.1", Loaded("h1", 10));
  Poll();
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders}) << "first heard of";
  clock.Advance(seconds(10));
  Poll();
  EXPECT_TRUE(Queued().empty()) << "the same report";

  Answer("10.0.0.1", Loaded("h2", 10));
  clock.Advance(seconds(10));
  Poll();
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders}) << "a new configuration loaded";

  poller.Decided(kOrders, 8, Snapshot());
  EXPECT_TRUE(Queued().empty()) << "it decided on what the poller holds";
  Answer("10.0.0.1", Loaded("h2", 9));
  clock.Advance(seconds(1));
  Poll();
  EXPECT_TRUE(Queued().empty()) << "still above the awaited 8";
  Answer("10.0.0.1", Loaded("h2", 8));
  clock.Advance(seconds(1));
  Poll();
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders}) << "within 8 now";
}

// A pause or resume answered by PgBouncer is what a Pausing pool waits for: queued at once, and
// the pool's pods are asked every second meanwhile.
TEST_F(AgentPollerTest, QueuesAPoolAtOnceWhenAnAgentReportsPausedOrResumed) {
  SetPods({AgentPod("a", "10.0.0.1")});
  Answer("10.0.0.1", Loaded("h1"));
  Poll();
  poller.Decided(kOrders, std::numeric_limits<int64_t>::max(), Snapshot());
  (void)Queued();
  AgentReport paused = Loaded("h1");
  paused.paused = true;
  Answer("10.0.0.1", paused);
  clock.Advance(seconds(1));
  Poll();
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders}) << "paused now";
  ASSERT_EQ(Snapshot().reports.count("a"), 1u);
  EXPECT_TRUE(Snapshot().reports.at("a").paused);
}

// A report that comes in while the pool's reconcile runs is not lost: the reconcile saw the
// older one, so the pool is queued when it is done.
TEST_F(AgentPollerTest, AReportNewerThanWhatTheReconcileSawQueuesThePoolAgain) {
  SetPods({AgentPod("a", "10.0.0.1")});
  const AgentSnapshot seen = Snapshot();  // a unheard
  Answer("10.0.0.1", Loaded("h2"));
  Poll();
  Queued();
  poller.Decided(kOrders, 8, seen);
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders});
  poller.Decided(kOrders, 8, Snapshot());
  EXPECT_TRUE(Queued().empty());
}

TEST_F(AgentPollerTest, LiveFiguresSumTheReportingPodsAndQueueAPoolAtMostEveryThirtySeconds) {
  SetPods({AgentPod("a", "10.0.0.1"), AgentPod("b", "10.0.0.2")});
  Answer("10.0.0.1", Loaded("h1", 3, 1, 5));
  Answer("10.0.0.2", Loaded("h1", 4, 2, 2));
  Poll();
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders});
  EXPECT_EQ(Snapshot().live, (api::LiveStatus{.server_connections = 7,
                                              .clients_waiting = 3,
                                              .longest_wait_seconds = 5,
                                              .pods_reporting = 2}));

  for (int64_t waiting : {6, 7}) {  // t = 10 s, 20 s
    Answer("10.0.0.1", Loaded("h1", 3, waiting, 5));
    clock.Advance(seconds(10));
    Poll();
    EXPECT_TRUE(Queued().empty()) << "only live figures changed, " << waiting;
    EXPECT_EQ(Snapshot().live.clients_waiting, waiting + 2);
  }
  clock.Advance(seconds(10));  // t = 30 s
  Poll();
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders}) << "30 s after it was last queued";
}

TEST_F(AgentPollerTest, ASilentAgentDropsOutOfTheLiveFiguresButKeepsItsLastReport) {
  SetPods({AgentPod("a", "10.0.0.1"), AgentPod("b", "10.0.0.2")});
  Answer("10.0.0.1", Loaded("h1", 3));
  Answer("10.0.0.2", Loaded("h1", 4));
  Poll();
  Answer("10.0.0.2", std::nullopt);
  for (int i = 0; i < 3; ++i) {
    clock.Advance(seconds(10));
    Poll();
  }
  EXPECT_EQ(Snapshot().live.pods_reporting, 2) << "answered 30 s ago: still counts";
  Queued();
  clock.Advance(seconds(10));
  Poll();
  AgentSnapshot snapshot = Snapshot();
  EXPECT_EQ(snapshot.live.pods_reporting, 1);
  EXPECT_EQ(snapshot.live.server_connections, 3);
  EXPECT_EQ(Queued(), std::set<std::string>{kOrders});
  EXPECT_EQ(snapshot.reports.at("b"), Loaded("h1", 4))
      << "what it last reported loaded it did load";
}

TEST_F(AgentPollerTest, AGonePodIsDroppedAndANewPodInItsSlotStartsUnheard) {
  const json gone = AgentPod("a", "10.0.0.1");
  SetPods({gone});
  Answer("10.0.0.1", Loaded("h1"));
  Poll();
  ASSERT_TRUE(Snapshot().reports.contains("a"));
  SetPods({});
  Poll();
  EXPECT_TRUE(poller.Snapshot({gone}).reports.empty()) << "forgotten once the cache has it gone";

  SetPods({AgentPod("a", "10.0.0.1")});
  Poll();
  json replaced = AgentPod("a", "10.0.0.5");
  replaced["metadata"]["uid"] = "uid-a-2";
  SetPods({replaced});
  poller.Decided(kOrders, 8, {});
  EXPECT_TRUE(Snapshot().reports.empty()) << "the old pod's report is not the new pod's";
  EXPECT_EQ(Poll(), std::vector<std::string>{"10.0.0.5"}) << "asked at once";
}

TEST_F(AgentPollerTest, AHungAgentHoldsUpNoOtherPod) {
  SetPods({AgentPod("a", "10.0.0.1"), AgentPod("b", "10.0.0.2", "other"),
           AgentPod("c", "10.0.0.3", "third")});
  for (const char* ip : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) Answer(ip, Loaded("h1"));
  {
    std::lock_guard guard(agents.mutex);
    agents.hung_ip = "10.0.0.1";
  }
  ASSERT_TRUE(poller.Start());
  {
    std::unique_lock lock(agents.mutex);
    ASSERT_TRUE(agents.changed.wait_for(lock, seconds(30), [this] { return agents.hung == 1; }));
  }
  {
    std::unique_lock lock(mutex);
    EXPECT_TRUE(queued_changed.wait_for(lock, seconds(30), [this] {
      return std::ranges::count(queued, "shop/other") + std::ranges::count(queued, "shop/third") ==
             2;
    })) << "the others were not heard while one agent hangs";
    EXPECT_EQ(std::ranges::count(queued, kOrders), 0);
  }
  {
    std::lock_guard guard(agents.mutex);
    EXPECT_EQ(agents.hung, 1) << "asked once, not again while its poll is in flight";
    agents.released = true;
  }
  agents.changed.notify_all();
  poller.Stop();
}

}  // namespace
}  // namespace poolkeeper::controller
