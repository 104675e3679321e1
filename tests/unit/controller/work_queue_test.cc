#include "controller/work_queue.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace poolkeeper::controller {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class WorkQueueTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  WorkQueue queue_{clock_, {milliseconds(10), seconds(1)}};
};

TEST_F(WorkQueueTest, DeduplicatesKeysWaitingToBeProcessed) {
  queue_.Add("ns/a");
  queue_.Add("ns/a");
  queue_.Add("ns/b");
  EXPECT_EQ(queue_.Depth(), 2u);
  EXPECT_TRUE(queue_.TryGet());
  EXPECT_TRUE(queue_.TryGet());
  EXPECT_FALSE(queue_.TryGet());
}

TEST_F(WorkQueueTest, HandsAKeyToOneWorkerAtATimeAndReplaysAddsMadeInFlight) {
  queue_.Add("ns/a");
  ASSERT_EQ(queue_.TryGet(), "ns/a");
  queue_.Add("ns/a");  // an event while the worker reconciles it
  EXPECT_FALSE(queue_.TryGet()) << "a second worker must not get the same key";
  queue_.Done("ns/a");
  EXPECT_EQ(queue_.TryGet(), "ns/a");
  queue_.Done("ns/a");
  EXPECT_FALSE(queue_.TryGet());
}

TEST_F(WorkQueueTest, BacksOffExponentiallyPerKeyUpToTheCap) {
  struct Step {
    int failures_before;
    milliseconds delay;
  };
  for (Step step : {Step{0, milliseconds(10)}, Step{1, milliseconds(20)}, Step{2, milliseconds(40)},
                    Step{3, milliseconds(80)}}) {
    ASSERT_EQ(queue_.Failures("ns/a"), step.failures_before);
    queue_.AddRateLimited("ns/a");
    clock_.Advance(step.delay - milliseconds(1));
    EXPECT_FALSE(queue_.TryGet()) << "too early after " << step.failures_before << " failures";
    clock_.Advance(milliseconds(1));
    ASSERT_EQ(queue_.TryGet(), "ns/a");
    queue_.Done("ns/a");
  }
  for (int i = 0; i < 20; ++i) queue_.AddRateLimited("ns/b");
  EXPECT_LE(*queue_.NextReadyTime() - clock_.Now(), seconds(1));
}

TEST(WorkQueueOverallLimit, SpreadsRetriesOfManyKeysBeyondTheBurst) {
  FakeClock clock;
  // 10 retries a second, burst 3: the first three retries only wait their own backoff (10 ms),
  // the next ones one slot of 100 ms each after the burst is spent.
  WorkQueue queue(clock, {.base_delay = milliseconds(10),
                          .max_delay = seconds(1),
                          .retries_per_second = 10,
                          .retry_burst = 3});
  for (int i = 0; i < 5; ++i) queue.AddRateLimited("ns/k" + std::to_string(i));
  clock.Advance(milliseconds(10));
  int ready = 0;
  while (auto key = queue.TryGet()) ++ready;
  EXPECT_EQ(ready, 3);
  clock.Advance(milliseconds(89));
  EXPECT_FALSE(queue.TryGet());
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(queue.TryGet());  // the fourth, 100 ms after the start
  EXPECT_FALSE(queue.TryGet());
  clock.Advance(milliseconds(100));
  EXPECT_TRUE(queue.TryGet());
}

TEST_F(WorkQueueTest, RetriesAsTheErrorSays) {
  struct Case {
    Error error;
    milliseconds ready_after;
    bool counts_as_backoff;
  };
  const milliseconds resync = seconds(600);
  for (const Case& c : {
           Case{{ErrorCode::kConflict, "write conflict"}, milliseconds(0), false},
           Case{{ErrorCode::kUnavailable, "connection refused"}, milliseconds(10), true},
           Case{{ErrorCode::kTooManyRequests, "slow down", {}, 7}, seconds(7), true},
           Case{{ErrorCode::kUnauthorized, "forbidden"}, resync, false},
           Case{{ErrorCode::kInvalid, "rejected"}, resync, false},
       }) {
    WorkQueue queue(clock_, {milliseconds(10), seconds(1)});
    EXPECT_EQ(queue.Retry("ns/a", c.error, resync), c.counts_as_backoff) << c.error.message;
    if (c.ready_after.count() > 0) {
      clock_.Advance(c.ready_after - milliseconds(1));
      EXPECT_FALSE(queue.TryGet()) << c.error.message;
      clock_.Advance(milliseconds(1));
    }
    EXPECT_EQ(queue.TryGet(), "ns/a") << c.error.message;
  }
}

// Issue 12, item 3: a write the leader-election fence refused is not retried by this replica; it no
// longer leads and exits, and the next leader reconciles every key from its own caches.
TEST_F(WorkQueueTest, AWriteRefusedForNotLeadingIsNotRetried) {
  WorkQueue queue(clock_, {milliseconds(10), seconds(1)});
  EXPECT_FALSE(queue.Retry("ns/a", {ErrorCode::kNotLeader, "not leader"}, seconds(600)));
  clock_.Advance(std::chrono::hours(1));
  EXPECT_FALSE(queue.TryGet());
}

// Issue 12: 409s were retried at once forever. The first conflict in a row still is; the next ones
// back off, and a success (Forget) makes the next conflict immediate again.
TEST_F(WorkQueueTest, ARepeatedConflictBacksOffInsteadOfSpinning) {
  WorkQueue queue(clock_, {milliseconds(10), seconds(1)});
  const Error conflict{ErrorCode::kConflict, "write conflict"};
  const milliseconds resync = seconds(600);
  EXPECT_FALSE(queue.Retry("ns/a", conflict, resync));
  ASSERT_EQ(queue.TryGet(), "ns/a");
  queue.Done("ns/a");
  for (milliseconds wait : {milliseconds(20), milliseconds(40), milliseconds(80)}) {
    EXPECT_TRUE(queue.Retry("ns/a", conflict, resync));
    clock_.Advance(wait - milliseconds(1));
    EXPECT_FALSE(queue.TryGet()) << wait.count();
    clock_.Advance(milliseconds(1));
    ASSERT_EQ(queue.TryGet(), "ns/a") << wait.count();
    queue.Done("ns/a");
  }
  queue.Forget("ns/a");
  EXPECT_FALSE(queue.Retry("ns/a", conflict, resync));
  EXPECT_EQ(queue.TryGet(), "ns/a");
}

TEST_F(WorkQueueTest, ForgetResetsBackoffAndOtherKeysAreUnaffected) {
  queue_.AddRateLimited("ns/a");
  queue_.AddRateLimited("ns/a");
  EXPECT_EQ(queue_.Failures("ns/a"), 2);
  EXPECT_EQ(queue_.Failures("ns/b"), 0);
  queue_.Forget("ns/a");
  EXPECT_EQ(queue_.Failures("ns/a"), 0);
}

TEST_F(WorkQueueTest, RequeueAfterWaitsAndAnEarlierAddWins) {
  queue_.AddAfter("ns/a", seconds(30));
  EXPECT_FALSE(queue_.TryGet());
  queue_.Add("ns/a");  // a watch event must not wait for the periodic resync
  EXPECT_EQ(queue_.TryGet(), "ns/a");
  EXPECT_EQ(queue_.Depth(), 0u);
}

TEST_F(WorkQueueTest, ReadyKeysComeOutInOrderOfReadiness) {
  queue_.AddAfter("ns/late", milliseconds(20));
  queue_.AddAfter("ns/early", milliseconds(10));
  clock_.Advance(milliseconds(30));
  EXPECT_EQ(queue_.TryGet(), "ns/early");
  EXPECT_EQ(queue_.TryGet(), "ns/late");
}

// The queue keeps its waiting keys ordered by ready time: a re-add that brings a key forward moves
// it in that order, one that would delay it changes nothing, and a key replayed after Done() takes
// its place by the time it was added with.
TEST_F(WorkQueueTest, HandsKeysOutInReadyOrderAfterReAddsMoveThem) {
  struct Case {
    std::string name;
    std::function<void(WorkQueue&, FakeClock&)> adds;
    milliseconds first_ready_after;
    std::vector<std::string> order;
  };
  const std::vector<Case> cases = {
      {"an earlier re-add moves a key forward",
       [](WorkQueue& q, FakeClock&) {
         q.AddAfter("ns/a", milliseconds(30));
         q.AddAfter("ns/b", milliseconds(20));
         q.AddAfter("ns/c", milliseconds(10));
         q.AddAfter("ns/a", milliseconds(5));
       },
       milliseconds(5),
       {"ns/a", "ns/c", "ns/b"}},
      {"a later re-add does not delay a key",
       [](WorkQueue& q, FakeClock&) {
         q.AddAfter("ns/a", milliseconds(10));
         q.AddAfter("ns/b", milliseconds(20));
         q.AddAfter("ns/a", milliseconds(40));
       },
       milliseconds(10),
       {"ns/a", "ns/b"}},
      {"keys ready at the same time come out by key",
       [](WorkQueue& q, FakeClock&) {
         q.AddAfter("ns/c", milliseconds(10));
         q.AddAfter("ns/a", milliseconds(10));
         q.AddAfter("ns/b", milliseconds(10));
       },
       milliseconds(10),
       {"ns/a", "ns/b", "ns/c"}},
      {"a key added in flight is replayed at the time it was added with",
       [](WorkQueue& q, FakeClock&) {
         q.Add("ns/a");
         ASSERT_EQ(q.TryGet(), "ns/a");
         q.AddAfter("ns/b", milliseconds(20));
         q.AddAfter("ns/a", milliseconds(30));
         q.AddAfter("ns/a", milliseconds(10));
         q.Done("ns/a");
       },
       milliseconds(10),
       {"ns/a", "ns/b"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeClock clock;
    WorkQueue queue(clock, {milliseconds(10), seconds(1)});
    const auto start = clock.Now();
    c.adds(queue, clock);
    EXPECT_EQ(queue.NextReadyTime(), start + c.first_ready_after);
    EXPECT_EQ(queue.Depth(), c.order.size());
    clock.Advance(seconds(1));
    std::vector<std::string> order;
    while (auto key = queue.TryGet()) order.push_back(*key);
    EXPECT_EQ(order, c.order);
    EXPECT_EQ(queue.NextReadyTime(), std::nullopt);
  }
}

TEST(WorkQueueBlocking, GetReturnsAddedKeysAndNulloptAfterShutDown) {
  SystemClock clock;
  WorkQueue queue(clock);
  std::optional<std::string> got;
  std::thread worker([&] { got = queue.Get(); });
  queue.Add("ns/a");
  worker.join();
  EXPECT_EQ(got, "ns/a");
  std::thread waiter([&] { got = queue.Get(); });
  queue.ShutDown();
  waiter.join();
  EXPECT_EQ(got, std::nullopt);
}

}  // namespace
}  // namespace poolkeeper::controller
