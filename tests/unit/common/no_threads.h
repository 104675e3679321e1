// Runs a test body where the kernel refuses every new thread, as under a pids limit: in a child
// process with RLIMIT_NPROC at 0 (root is not bound by that limit, so the child first becomes the
// nobody user). The body's return value is the child's exit code; a body that ends in
// std::terminate (an uncaught std::system_error) shows as 128 + SIGABRT instead.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

namespace poolkeeper::testing {

inline constexpr int kCannotDropPrivileges = 90;

inline int RunWithoutNewThreads(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      ::_exit(kCannotDropPrivileges);
    }
    rlimit none{0, 0};
    if (::setrlimit(RLIMIT_NPROC, &none) != 0) ::_exit(kCannotDropPrivileges);
    // Through a noexcept call: an exception escaping the body ends the child in std::terminate,
    // as it would end the operator, instead of reaching the test framework's handler.
    auto run = [&body]() noexcept { return body(); };
    ::_exit(run());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace poolkeeper::testing
