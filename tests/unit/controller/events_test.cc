#include "controller/events.h"

#include <gtest/gtest.h>

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
  EventRecorder recorder(client, clock, "op-0", std::chrono::minutes(10));
  const EventRecord refused{"Warning", "BudgetExceeded", "60 > 35"};
  recorder.Record(kPool, refused, "t");
  clock.Advance(std::chrono::minutes(9));
  recorder.Record(kPool, refused, "t");  // a resync: not announced again
  EXPECT_EQ(transport.Requests().size(), 1u);
  recorder.Record(kPool, {"Warning", "BudgetExceeded", "70 > 35"}, "t");  // news
  EXPECT_EQ(transport.Requests().size(), 2u);
  clock.Advance(std::chrono::minutes(2));
  recorder.Record(kPool, refused, "t");
  EXPECT_EQ(transport.Requests().size(), 3u);
}

// Issue 12, item 8: the de-duplication map forgot nothing, and every distinct message (the budget
// arithmetic changes with every plan) stayed for the life of the process.
TEST(EventRecorder, ForgetsEventsOnceTheirWindowHasPassed) {
  kube::testing::FakeTransport transport;
  for (int i = 0; i < 101; ++i) transport.Respond("POST", kEvents, 201);
  kube::Client client(transport);
  FakeClock clock;
  EventRecorder recorder(client, clock, "op-0", std::chrono::minutes(10));
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
  EXPECT_EQ(recorder.Written(), 0u);
}

TEST(MakeEvent, CapsTheMessageAtTheApiServersLimit) {
  json event = MakeEvent(kPool, {"Normal", "Applied", std::string(5000, 'x')}, "n", "i", "t");
  EXPECT_EQ(event["message"].get<std::string>().size(), 1024u);
}

}  // namespace
}  // namespace poolkeeper::controller
