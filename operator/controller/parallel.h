// Runs a reconcile's independent API requests at the same time, bounded: the caller's thread and
// at most `limit - 1` helpers take the tasks in order. Each request is a round trip to the API
// server, so a pool's three or four applies cost about one round trip instead of four, while the
// requests per pool stay the same. Helpers are started per call (a reconcile that writes is rare
// next to the round trips it saves); one the kernel refuses leaves its share to the others.
#pragma once

#include <functional>
#include <vector>

#include "common/error.h"

namespace poolkeeper::controller {

// Every task runs (a failure does not cancel the others: they are independent writes, and the
// next reconcile compares again); returns the first failure in task order, or success.
Status RunBounded(const std::vector<std::function<Status()>>& tasks, size_t limit);

}  // namespace poolkeeper::controller
