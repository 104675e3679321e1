// RunBounded and TaskPool (parallel.h): every task runs, at most `limit` at once, the first failure
// in order; the helpers are the pool's persistent threads, and without free helpers the caller
// runs the tasks itself.
#include "controller/parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace poolkeeper::controller {
namespace {

TEST(RunBounded, RunsEveryTaskAndReportsTheFirstFailureInTaskOrder) {
  TaskPool pool;
  ASSERT_TRUE(pool.Start(3));
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
    for (TaskPool* helpers : {&pool, static_cast<TaskPool*>(nullptr)}) {
      ran = 0;
      Status status = RunBounded(tasks, c.limit, helpers);
      EXPECT_EQ(ran, 5) << "a failure cancels nothing";
      EXPECT_EQ(status ? "" : status.error().message, c.want);
    }
  }
  EXPECT_TRUE(RunBounded({}, 4, &pool));
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
  TaskPool pool;
  ASSERT_TRUE(pool.Start(3));
  ASSERT_TRUE(RunBounded(tasks, 2, &pool));
  EXPECT_EQ(done, 8);
  EXPECT_EQ(most, 2);
}

TEST(TaskPool, StartsItsThreadsOnceAndJoinsThemOnStop) {
  TaskPool pool;
  ASSERT_TRUE(pool.Start(2));
  ASSERT_TRUE(pool.Start(2));
  EXPECT_EQ(pool.Threads(), 2u) << "a second Start adds none";
  std::mutex mutex;
  std::set<std::thread::id> ran_on;
  // Several callers at once (the workers) share the same helpers.
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      std::vector<std::function<Status()>> tasks(4, [&]() -> Status {
        std::lock_guard guard(mutex);
        ran_on.insert(std::this_thread::get_id());
        return {};
      });
      EXPECT_TRUE(RunBounded(tasks, 4, &pool));
    });
  }
  for (auto& caller : callers) caller.join();
  pool.Stop();
  EXPECT_EQ(pool.Threads(), 0u);
  EXPECT_FALSE(pool.Post([] {})) << "nothing runs after Stop";
  EXPECT_LE(ran_on.size(), 5u) << "the 3 callers and the 2 helpers, no thread per call";
}

TEST(TaskPool, ACallerWhoseHelpersAreBusyRunsEveryTaskItself) {
  TaskPool pool;
  ASSERT_TRUE(pool.Start(1));
  std::mutex mutex;
  std::condition_variable changed;
  bool release = false;
  ASSERT_TRUE(pool.Post([&] {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return release; });
  }));
  const auto caller = std::this_thread::get_id();
  int on_caller = 0;
  std::vector<std::function<Status()>> tasks(3, [&]() -> Status {
    if (std::this_thread::get_id() == caller) ++on_caller;
    return {};
  });
  ASSERT_TRUE(RunBounded(tasks, 3, &pool)) << "returns without waiting for the busy helper";
  EXPECT_EQ(on_caller, 3);
  {
    std::lock_guard guard(mutex);
    release = true;
  }
  changed.notify_all();
  pool.Stop();  // the queued helper jobs of the call above are dropped or find nothing to do
}

TEST(RunBounded, ATaskThatThrowsIsAnErrorNotAnAbort) {
  TaskPool pool;
  ASSERT_TRUE(pool.Start(1));
  std::vector<std::function<Status()>> tasks = {
      []() -> Status { return {}; }, []() -> Status { throw std::runtime_error("boom"); }};
  Status status = RunBounded(tasks, 2, &pool);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message.find("boom"), std::string::npos);
}

}  // namespace
}  // namespace poolkeeper::controller
