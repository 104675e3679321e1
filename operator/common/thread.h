// Starting a thread as a fallible call. std::thread's constructor throws std::system_error when
// the kernel refuses a new thread (EAGAIN under a pids cgroup limit or RLIMIT_NPROC, ENOMEM), and
// an exception no one catches ends the process with std::terminate: a crash loop under a limit
// instead of an error the caller can report. Every thread the operator starts goes through here.
#pragma once

#include <functional>
#include <stop_token>
#include <string>
#include <thread>

#include "common/error.h"

namespace poolkeeper {

// Starts `body` on a new thread named `name` (at most 15 characters are kept, as the kernel
// shows them in /proc/PID/task/*/comm), or kUnavailable naming the thread and the cause.
Result<std::thread> StartThread(const std::string& name, std::function<void()> body);
// The same for a body that takes a stop token (std::jthread: request_stop, joined on destruction).
Result<std::jthread> StartJThread(const std::string& name,
                                  std::function<void(std::stop_token)> body);

}  // namespace poolkeeper
