#include "controller/events.h"

#include <gtest/gtest.h>

#include <future>

#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

const json kPool = {
    {"apiVersion", "poolkeeper.io/v1alpha1"},
    {"kind", "ConnectionPool"},
    {"metadata",
     {{"name", "orders"}, {"namespace", "shop"}, {"uid", "u-1"}, {"resourceVersion", "41"}}}};
constexpr char kEvents[] = "/api/v1/namespaces/shop/events";

TEST(EventRecorder, WritesACoreEventAboutThePool) {
  kube::testing::FakeTransport transport;
  transport.Respond("POST", kEvents, 201);
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0");
  recorder.Record(kPool, {"Warning", "BudgetExceeded", "(2 + 1) x 20 = 60 > 35"},
                  "2026-11-23T10:00:00Z");
  EXPECT_EQ(recorder.WriteQueued(), 1u);
  ASSERT_EQ(transport.Requests().size(), 1u);
  json event = json::parse(transport.LastRequest().body);
  EXPECT_TRUE(event["metadata"]["name"].get<std::string>().starts_with("orders."));
  EXPECT_EQ(event["involvedObject"]["uid"], "u-1");
  EXPECT_EQ(event["involvedObject"]["kind"], "ConnectionPool");
  EXPECT_EQ(event["type"], "Warning");
  EXPECT_EQ(event["reason"], "BudgetExceeded");
  EXPECT_EQ(event["reportingInstance"], "op-0");
  EXPECT_EQ(recorder.Written(), 1u);
}

TEST(EventRecorder, SameEventIsWrittenOncePerWindow) {
  kube::testing::FakeTransport transport;
  transport.Respond("POST", kEvents, 201);
  transport.Respond("POST", kEvents, 201);
  transport.Respond("POST", kEvents, 201);
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0", {.dedupe_window = std::chrono::minutes(10)});
  const EventRecord refused{"Warning", "BudgetExceeded", "60 > 35"};
  recorder.Record(kPool, refused, "t");
  clock.Advance(std::chrono::minutes(9));
  recorder.Record(kPool, refused, "t");  // a resync: not announced again
  recorder.WriteQueued();
  EXPECT_EQ(transport.Requests().size(), 1u);
  recorder.Record(kPool, {"Warning", "BudgetExceeded", "70 > 35"}, "t");  // news
  recorder.WriteQueued();
  EXPECT_EQ(transport.Requests().size(), 2u);
  clock.Advance(std::chrono::minutes(2));
  recorder.Record(kPool, refused, "t");
  recorder.WriteQueued();
  EXPECT_EQ(transport.Requests().size(), 3u);
  EXPECT_EQ(recorder.Dropped(), 0u) << "a duplicate is not a drop";
}

// Issue 12, item 8: the de-duplication map forgot nothing, and every distinct message (the budget
// arithmetic changes with every plan) stayed for the life of the process.
TEST(EventRecorder, ForgetsEventsOnceTheirWindowHasPassed) {
  kube::testing::FakeTransport transport;
  for (int i = 0; i < 101; ++i) transport.Respond("POST", kEvents, 201);
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0",
                         {.dedupe_window = std::chrono::minutes(10), .burst = 200});
  for (int i = 0; i < 100; ++i) {
    recorder.Record(kPool, {"Warning", "BudgetExceeded", std::to_string(i) + " > 35"}, "t");
  }
  EXPECT_EQ(recorder.Remembered(), 100u);
  clock.Advance(std::chrono::minutes(11));
  recorder.Record(kPool, {"Normal", "Applied", "applied configuration abc"}, "t");
  EXPECT_EQ(recorder.Remembered(), 1u);
}

TEST(EventRecorder, AFailedWriteIsNotFatalAndNotCounted) {
  kube::testing::FakeTransport transport;
  transport.Respond("POST", kEvents, 403, kube::testing::StatusBody(403, "Forbidden"));
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0");
  recorder.Record(kPool, {"Normal", "Applied", "applied configuration abc"}, "t");
  EXPECT_EQ(recorder.WriteQueued(), 1u);
  EXPECT_EQ(recorder.Written(), 0u);
}

TEST(EventRecorder, RecordQueuesAndReturnsTheWriterPostsLater) {
  kube::testing::FakeTransport transport;
  transport.Respond("POST", kEvents, 201);
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0");
  recorder.Record(kPool, {"Normal", "Created", "created"}, "t");
  EXPECT_TRUE(transport.Requests().empty()) << "nothing written on the reconcile's thread";
  EXPECT_EQ(recorder.Queued(), 1u);
  EXPECT_EQ(recorder.WriteQueued(), 1u);
  EXPECT_EQ(recorder.Queued(), 0u);
  EXPECT_EQ(recorder.Written(), 1u);
}

// The API server is slow: the writer is stuck in a POST, and reconciles keep recording at once.
TEST(EventRecorder, ASlowApiServerNeverBlocksRecord) {
  kube::testing::FakeTransport transport;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  transport.Queue("POST", kEvents,
                  {.response = {.status = 201, .body = "{}"}, .before = [&, released] {
                     entered.set_value();
                     released.wait_for(std::chrono::seconds(30));
                   }});
  for (int i = 0; i < 2; ++i) transport.Respond("POST", kEvents, 201);
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0");
  ASSERT_TRUE(recorder.Start());
  recorder.Record(kPool, {"Normal", "Created", "one"}, "t");
  ASSERT_EQ(entered.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  recorder.Record(kPool, {"Normal", "Applied", "two"}, "t");
  recorder.Record(kPool, {"Normal", "Applied", "three"}, "t");
  EXPECT_EQ(recorder.Queued(), 2u) << "queued while the first write is in flight";
  EXPECT_EQ(recorder.Written(), 0u);
  release.set_value();
  ASSERT_TRUE(recorder.WaitIdle(std::chrono::seconds(30)));
  EXPECT_EQ(recorder.Written(), 3u);
  recorder.Stop();
}

TEST(EventRecorder, AFullQueueDropsTheNewEventAndCountsIt) {
  kube::testing::FakeTransport transport;
  for (int i = 0; i < 2; ++i) transport.Respond("POST", kEvents, 201);
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0", {.capacity = 2});
  for (const char* message : {"a", "b", "c"}) recorder.Record(kPool, {"Normal", "X", message}, "t");
  EXPECT_EQ(recorder.Queued(), 2u);
  EXPECT_EQ(recorder.Dropped(), 1u);
  EXPECT_EQ(recorder.WriteQueued(), 2u);
  recorder.Record(kPool, {"Normal", "X", "c"}, "t");  // room again; a dropped one was not seen
  EXPECT_EQ(recorder.Queued(), 1u);
}

// One Record per step, after advancing the clock; checks whether each was queued or dropped.
struct Step {
  int advance_minutes;
  const json* pool;
  const char* message;
  bool queued;
};
void RecordSteps(EventRecorder& recorder, FakeClock& clock, const std::vector<Step>& steps) {
  uint64_t dropped = 0;
  for (const Step& step : steps) {
    SCOPED_TRACE(step.message);
    clock.Advance(std::chrono::minutes(step.advance_minutes));
    size_t before = recorder.Queued();
    recorder.Record(*step.pool, {"Normal", "X", step.message}, "t");
    if (!step.queued) ++dropped;
    EXPECT_EQ(recorder.Queued(), before + (step.queued ? 1 : 0));
    EXPECT_EQ(recorder.Dropped(), dropped);
  }
}

// client-go's spam filter: a burst per object, then one token per refill period.
TEST(EventRecorder, EachPoolHasABurstThenOneEventPerRefillPeriod) {
  kube::testing::FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0", {.burst = 3, .refill = std::chrono::minutes(5)});
  json other = kPool;
  other["metadata"]["uid"] = "u-2";
  const std::vector<Step> steps = {
      {0, &kPool, "1", true},   {0, &kPool, "2", true}, {0, &kPool, "3", true},
      {0, &kPool, "4", false},  // burst spent
      {0, &other, "1", true},   // another pool has its own
      {4, &kPool, "5", false},  {1, &kPool, "6", true}, {0, &kPool, "7", false},
      {15, &kPool, "8", true},  {0, &kPool, "9", true}, {0, &kPool, "10", true},
      {0, &kPool, "11", false},  // refilled up to the burst, no more
  };
  RecordSteps(recorder, clock, steps);
}

// Buckets are forgotten in order of when they are full again: another pool's events prune only the
// full ones, so a pool still refilling keeps its count, and a forgotten one starts a fresh burst.
TEST(EventRecorder, OtherPoolsEventsNeverForgetAPoolThatIsStillRefilling) {
  kube::testing::FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0", {.burst = 2, .refill = std::chrono::minutes(5)});
  json other = kPool;
  other["metadata"]["uid"] = "u-2";
  const std::vector<Step> steps = {
      {0, &kPool, "1", true},   {0, &kPool, "2", true},
      {0, &kPool, "3", false},  {5, &other, "1", true},  // half refilled: kept
      {0, &kPool, "4", true},   {0, &kPool, "5", false},
      {9, &other, "2", true},  // one minute short of full: kept
      {0, &kPool, "6", true},   {0, &kPool, "7", false},
      {10, &other, "3", true},  // full again: forgotten, the same as a fresh burst
      {0, &kPool, "8", true},   {0, &kPool, "9", true},
      {0, &kPool, "10", false},
  };
  RecordSteps(recorder, clock, steps);
}

TEST(MakeEvent, CapsTheMessageAtTheApiServersLimit) {
  json event = MakeEvent(kPool, {"Normal", "Applied", std::string(5000, 'x')}, "n", "i", "t");
  EXPECT_EQ(event["message"].get<std::string>().size(), 1024u);
}

}  // namespace
}  // namespace poolkeeper::controller
