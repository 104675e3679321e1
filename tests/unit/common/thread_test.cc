// Starting a thread: it runs under its name, and when the kernel refuses a thread (a pids limit,
// issue 12: the operator aborted with std::system_error and crash-looped) the failure is an Error
// naming the thread, not std::terminate.
#include "common/thread.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>

#include "no_threads.h"

namespace poolkeeper {
namespace {

TEST(StartThread, RunsTheBodyOnAThreadOfThatName) {
  std::string name;
  auto thread = StartThread("a-name-longer-than-fifteen", [&name] {
    char buffer[16] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    name = buffer;
  });
  ASSERT_TRUE(thread) << thread.error().message;
  thread->join();
  EXPECT_EQ(name, "a-name-longer-t") << "the kernel keeps 15 characters";
}

TEST(StartJThread, PassesTheStopToken) {
  std::atomic<bool> stopped{false};
  {
    auto thread = StartJThread("stoppable", [&stopped](std::stop_token stop) {
      while (!stop.stop_requested()) std::this_thread::yield();
      stopped = true;
    });
    ASSERT_TRUE(thread) << thread.error().message;
  }  // the jthread requests stop and joins
  EXPECT_TRUE(stopped);
}

TEST(StartThread, AThreadTheKernelRefusesIsAnErrorNotAnAbort) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer does not start threads in a forked child";
#endif
  // Plain std::thread in the same child aborts: the limit is real.
  EXPECT_EQ(testing::RunWithoutNewThreads([] {
              std::thread thread([] {});
              thread.join();
              return 0;
            }),
            128 + SIGABRT);
  EXPECT_EQ(testing::RunWithoutNewThreads([] {
              auto thread = StartThread("informer", [] {});
              if (thread) return 1;
              const Error& error = thread.error();
              if (error.code != ErrorCode::kUnavailable) return 2;
              if (error.message.find("cannot start thread informer") == std::string::npos) return 3;
              auto jthread = StartJThread("leader-election", [](std::stop_token) {});
              return jthread ? 4 : 0;
            }),
            0);
}

}  // namespace
}  // namespace poolkeeper
