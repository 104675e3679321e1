#include "controller/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "common/thread.h"

namespace poolkeeper::controller {

Status RunBounded(const std::vector<std::function<Status()>>& tasks, size_t limit) {
  std::vector<Status> results(tasks.size());
  std::atomic<size_t> next{0};
  auto take = [&] {
    for (size_t i = next++; i < tasks.size(); i = next++) {
      // Exceptions never cross a thread: a task that throws is an internal error of that task.
      try {
        results[i] = tasks[i]();
      } catch (const std::exception& e) {
        results[i] = Fail(ErrorCode::kInternal, std::string("request threw: ") + e.what());
      }
    }
  };
  std::vector<std::thread> helpers;
  const size_t wanted = std::min(std::max<size_t>(limit, 1), tasks.size());
  for (size_t i = 1; i < wanted; ++i) {
    auto helper = StartThread("write-" + std::to_string(i), take);
    if (!helper) break;
    helpers.push_back(std::move(*helper));
  }
  take();
  for (auto& helper : helpers) helper.join();
  for (auto& result : results) {
    if (!result) return result;
  }
  return {};
}

}  // namespace poolkeeper::controller
