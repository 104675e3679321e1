// Where informers run. A thread per informer, blocked on its watch, made seven threads per
// watched namespace and one more per PostgresServer CA Secret (issue 14). Here every informer's
// waits are entries in one timer queue, its LISTs run on a small pool of threads (two by default)
// that works that queue, and its watches run on the transport's event loop
// (Transport::StreamAsync): the threads no longer grow with what is watched.
//
// Time is the Clock's: a task is due once Now() reaches its time. Real time stands in while a
// thread waits, as it does for any wait in the operator, so a fake clock makes tasks due when it
// is advanced and a thread next looks (within the wait it computed).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/error.h"

namespace poolkeeper::kube {

class InformerLoop {
 public:
  using TaskId = uint64_t;

  explicit InformerLoop(const Clock& clock, int threads = 2);
  ~InformerLoop();  // Stop()
  InformerLoop(const InformerLoop&) = delete;
  InformerLoop& operator=(const InformerLoop&) = delete;

  // Starts the threads; kUnavailable naming the thread when one cannot be created (then none
  // runs). Starting a running loop does nothing.
  Status Start();
  // Joins the threads once the tasks they are running return. Tasks not yet run stay queued:
  // Cancel still finds them, and a new Start runs them.
  void Stop();

  // Runs `task` on one of the loop's threads once the clock reaches `when` (at once when it has).
  // A task must not throw, and should not block for long: the other informers' attempts wait.
  TaskId At(Clock::TimePoint when, std::function<void()> task);
  // Removes a task that has not started. False when it has started (it may still be running) or
  // never was.
  bool Cancel(TaskId id);
  size_t Pending() const;

 private:
  void Run();

  const Clock& clock_;
  const int threads_wanted_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::map<std::pair<Clock::TimePoint, TaskId>, std::function<void()>> queue_;  // soonest first
  std::map<TaskId, Clock::TimePoint> due_;  // the queue's entries by id, for Cancel
  TaskId next_id_ = 1;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace poolkeeper::kube
