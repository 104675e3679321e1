// Runs a reconcile's independent API requests at the same time, bounded: the caller's thread and
// at most `limit - 1` helpers from a small persistent pool take the tasks in order. Each request
// is a round trip to the API server, so a pool's three or four applies cost about one round trip
// instead of four, while the requests per pool stay the same.
//
// The helpers are a TaskPool the Manager owns and joins on stop, not threads started per call: a
// writing reconcile used to start up to three short-lived threads, each a clone, a stack mapping
// and a malloc arena of its own. A helper that is busy elsewhere (or a pool with no threads, as
// when a test drives the manager on its own thread, or one the kernel refused) only means the
// caller takes more of the tasks itself: the caller never waits for a helper to start.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"

namespace poolkeeper::controller {

class TaskPool {
 public:
  TaskPool() = default;
  ~TaskPool();  // Stop()
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  // Starts `threads` helpers named `name`-N (fewer when the kernel refuses one: kUnavailable
  // then, and the helpers that did start keep serving). Calling it again adds none.
  Status Start(size_t threads, const std::string& name = "write");
  // Lets the helpers finish the job in hand, drops the queued ones and joins them. Jobs posted
  // after it run nowhere (RunBounded's caller takes them).
  void Stop();
  size_t Threads() const;

  // Queues `job` for a helper; false when there is none (not started, or stopped).
  bool Post(std::function<void()> job);

 private:
  void Serve();
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Every task runs (a failure does not cancel the others: they are independent writes, and the
// next reconcile compares again); returns the first failure in task order, or success. With
// `pool` null every task runs on the caller's thread.
Status RunBounded(const std::vector<std::function<Status()>>& tasks, size_t limit,
                  TaskPool* pool = nullptr);

}  // namespace poolkeeper::controller
