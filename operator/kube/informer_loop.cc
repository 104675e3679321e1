#include "kube/informer_loop.h"

#include <algorithm>

#include "common/thread.h"

namespace poolkeeper::kube {

InformerLoop::InformerLoop(const Clock& clock, int threads)
    : clock_(clock), threads_wanted_(std::max(1, threads)) {}

InformerLoop::~InformerLoop() { Stop(); }

Status InformerLoop::Start() {
  {
    std::lock_guard guard(mutex_);
    if (!threads_.empty()) return {};
    stopping_ = false;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < threads_wanted_; ++i) {
    auto started = StartThread("informers-" + std::to_string(i), [this] { Run(); });
    if (!started) {
      {
        std::lock_guard guard(mutex_);
        threads_ = std::move(threads);
      }
      Stop();  // the threads already started
      return std::unexpected(started.error());
    }
    threads.push_back(std::move(*started));
  }
  std::lock_guard guard(mutex_);
  threads_ = std::move(threads);
  return {};
}

void InformerLoop::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard guard(mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (std::thread& thread : threads) thread.join();
}

InformerLoop::TaskId InformerLoop::At(Clock::TimePoint when, std::function<void()> task) {
  TaskId id;
  {
    std::lock_guard guard(mutex_);
    id = next_id_++;
    queue_.emplace(std::make_pair(when, id), std::move(task));
    due_.emplace(id, when);
  }
  wake_.notify_one();
  return id;
}

bool InformerLoop::Cancel(TaskId id) {
  std::lock_guard guard(mutex_);
  auto due = due_.find(id);
  if (due == due_.end()) return false;
  queue_.erase({due->second, id});
  due_.erase(due);
  return true;
}

size_t InformerLoop::Pending() const {
  std::lock_guard guard(mutex_);
  return queue_.size();
}

void InformerLoop::Run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (queue_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto first = queue_.begin();
    const Clock::TimePoint now = clock_.Now();
    if (first->first.first > now) {
      wake_.wait_for(lock, first->first.first - now);
      continue;
    }
    std::function<void()> task = std::move(first->second);
    due_.erase(first->first.second);
    queue_.erase(first);
    lock.unlock();
    task();
    lock.lock();
  }
}

}  // namespace poolkeeper::kube
