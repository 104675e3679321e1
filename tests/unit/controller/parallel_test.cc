// RunBounded (parallel.h): every task runs, at most `limit` at once, the first failure in order.
#include "controller/parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>

namespace poolkeeper::controller {
namespace {

TEST(RunBounded, RunsEveryTaskAndReportsTheFirstFailureInTaskOrder) {
  struct Case {
    std::vector<int> failing;  // indexes of the tasks that fail
    size_t limit;
    std::string want;  // "" = success
  };
  for (const Case& c : std::vector<Case>{{{}, 4, ""},
                                         {{2}, 4, "task 2"},
                                         {{3, 1}, 2, "task 1"},
                                         {{0, 4}, 1, "task 0"},
                                         {{}, 0, ""}}) {
    SCOPED_TRACE(c.want + " limit " + std::to_string(c.limit));
    std::atomic<int> ran{0};
    std::vector<std::function<Status()>> tasks;
    for (int i = 0; i < 5; ++i) {
      const bool fails = std::ranges::find(c.failing, i) != c.failing.end();
      tasks.emplace_back([&ran, i, fails]() -> Status {
        ++ran;
        if (fails) return Fail(ErrorCode::kInternal, "task " + std::to_string(i));
        return {};
      });
    }
    Status status = RunBounded(tasks, c.limit);
    EXPECT_EQ(ran, 5) << "a failure cancels nothing";
    EXPECT_EQ(status ? "" : status.error().message, c.want);
  }
  EXPECT_TRUE(RunBounded({}, 4));
}

TEST(RunBounded, NeverMoreThanTheLimitAtOnce) {
  std::mutex mutex;
  std::condition_variable changed;
  int in_flight = 0, most = 0, done = 0;
  std::vector<std::function<Status()>> tasks(8, [&]() -> Status {
    std::unique_lock lock(mutex);
    most = std::max(most, ++in_flight);
    changed.notify_all();
    // Wait for a partner (two at once is the limit), never for long.
    changed.wait_for(lock, std::chrono::milliseconds(200), [&] { return in_flight >= 2; });
    --in_flight;
    ++done;
    return {};
  });
  ASSERT_TRUE(RunBounded(tasks, 2));
  EXPECT_EQ(done, 8);
  EXPECT_EQ(most, 2);
}

TEST(RunBounded, ATaskThatThrowsIsAnErrorNotAnAbort) {
  std::vector<std::function<Status()>> tasks = {
      []() -> Status { return {}; }, []() -> Status { throw std::runtime_error("boom"); }};
  Status status = RunBounded(tasks, 2);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message.find("boom"), std::string::npos);
}

}  // namespace
}  // namespace poolkeeper::controller
