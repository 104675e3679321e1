// The informers' loop on a fake clock: tasks run when due, soonest first, and a cancelled one
// never. Tasks are queued before the threads start (or far in the future), so no test waits on
// real time.
#include "kube/informer_loop.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace poolkeeper::kube {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// What the tasks did, in order, and a signal when `expected` of them have.
class Ran {
 public:
  explicit Ran(size_t expected) : expected_(expected) {}
  std::function<void()> Task(std::string name) {
    return [this, name = std::move(name)] {
      std::lock_guard guard(mutex_);
      names_.push_back(name);
      if (names_.size() == expected_) all_.set_value();
    };
  }
  bool Wait() { return all_.get_future().wait_for(seconds(10)) == std::future_status::ready; }
  std::vector<std::string> names() {
    std::lock_guard guard(mutex_);
    return names_;
  }

 private:
  const size_t expected_;
  std::mutex mutex_;
  std::vector<std::string> names_;
  std::promise<void> all_;
};

TEST(InformerLoop, RunsWhatIsDueSoonestFirstAndLeavesWhatIsNot) {
  FakeClock clock;
  InformerLoop loop(clock, /*threads=*/1);
  Ran ran(3);
  const auto now = clock.Now();
  loop.At(now + seconds(3), ran.Task("third"));
  loop.At(now + seconds(1), ran.Task("first"));
  loop.At(now + hours(1), ran.Task("not due"));
  loop.At(now + seconds(2), ran.Task("second"));
  clock.Advance(seconds(5));

  ASSERT_TRUE(loop.Start());
  ASSERT_TRUE(ran.Wait());

  EXPECT_EQ(ran.names(), (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(loop.Pending(), 1u);
}

TEST(InformerLoop, ACancelledTaskNeverRuns) {
  FakeClock clock;
  InformerLoop loop(clock);
  Ran ran(1);
  auto cancelled = loop.At(clock.Now(), ran.Task("cancelled"));
  loop.At(clock.Now(), ran.Task("kept"));

  EXPECT_TRUE(loop.Cancel(cancelled));
  EXPECT_FALSE(loop.Cancel(cancelled)) << "only once";
  ASSERT_TRUE(loop.Start());
  ASSERT_TRUE(ran.Wait());

  EXPECT_EQ(ran.names(), std::vector<std::string>{"kept"});
  EXPECT_EQ(loop.Pending(), 0u);
}

TEST(InformerLoop, ATaskThatHasRunCannotBeCancelled) {
  FakeClock clock;
  InformerLoop loop(clock);
  Ran ran(1);
  auto task = loop.At(clock.Now(), ran.Task("ran"));
  ASSERT_TRUE(loop.Start());
  ASSERT_TRUE(ran.Wait());

  EXPECT_FALSE(loop.Cancel(task));
}

TEST(InformerLoop, StopKeepsWhatIsQueuedForTheNextStart) {
  FakeClock clock;
  InformerLoop loop(clock);
  Ran ran(1);
  loop.At(clock.Now() + hours(1), ran.Task("later"));
  ASSERT_TRUE(loop.Start());
  loop.Stop();
  EXPECT_EQ(loop.Pending(), 1u);

  clock.Advance(hours(2));
  ASSERT_TRUE(loop.Start());
  ASSERT_TRUE(ran.Wait());
  EXPECT_EQ(ran.names(), std::vector<std::string>{"later"});
}

}  // namespace
}  // namespace poolkeeper::kube
