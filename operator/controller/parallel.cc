#include "controller/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>

#include "common/thread.h"

namespace poolkeeper::controller {

TaskPool::~TaskPool() { Stop(); }

Status TaskPool::Start(size_t threads, const std::string& name) {
  std::lock_guard guard(mutex_);
  stopping_ = false;
  for (size_t i = threads_.size(); i < threads; ++i) {
    auto helper = StartThread(name + "-" + std::to_string(i), [this] { Serve(); });
    if (!helper) return std::unexpected(helper.error());
    threads_.push_back(std::move(*helper));
  }
  return {};
}

void TaskPool::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard guard(mutex_);
    stopping_ = true;
    jobs_.clear();
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (auto& thread : threads) thread.join();
}

size_t TaskPool::Threads() const {
  std::lock_guard guard(mutex_);
  return threads_.size();
}

bool TaskPool::Post(std::function<void()> job) {
  {
    std::lock_guard guard(mutex_);
    if (stopping_ || threads_.empty()) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void TaskPool::Serve() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

namespace {

// One call's tasks, shared with the helper jobs it posted. A job that starts after the caller
// has closed the batch does nothing, so the caller waits only for helpers already at work, and a
// job still queued when the caller returns touches nothing of the caller's.
struct Batch {
  const std::vector<std::function<Status()>>* tasks;
  std::vector<Status> results;
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::condition_variable idle;
  bool closed = false;
  int active = 0;

  void Take() {
    for (size_t i = next++; i < tasks->size(); i = next++) {
      // Exceptions never cross a thread: a task that throws is an internal error of that task.
      try {
        results[i] = (*tasks)[i]();
      } catch (const std::exception& e) {
        results[i] = Fail(ErrorCode::kInternal, std::string("request threw: ") + e.what());
      }
    }
  }
  void Help() {
    {
      std::lock_guard guard(mutex);
      if (closed) return;
      ++active;
    }
    Take();
    std::lock_guard guard(mutex);
    if (--active == 0) idle.notify_all();
  }
  void Finish() {
    std::unique_lock lock(mutex);
    closed = true;
    idle.wait(lock, [this] { return active == 0; });
  }
};

}  // namespace

Status RunBounded(const std::vector<std::function<Status()>>& tasks, size_t limit, TaskPool* pool) {
  auto batch = std::make_shared<Batch>();
  batch->tasks = &tasks;
  batch->results.resize(tasks.size());
  const size_t wanted = std::min(std::max<size_t>(limit, 1), tasks.size());
  for (size_t i = 1; pool != nullptr && i < wanted; ++i) {
    if (!pool->Post([batch] { batch->Help(); })) break;
  }
  batch->Take();
  batch->Finish();
  for (auto& result : batch->results) {
    if (!result) return result;
  }
  return {};
}

}  // namespace poolkeeper::controller
