// Thread creation that reports failure as a Result instead of throwing.
#include "common/thread.h"

#include <pthread.h>

#include <system_error>

namespace poolkeeper {
namespace {

void NameThisThread(const std::string& name) {
  // The kernel keeps 15 characters and a NUL; a longer name fails with ERANGE, so cut it.
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

Error CannotStart(const std::string& name, const std::system_error& error) {
  return Error{ErrorCode::kUnavailable,
               "cannot start thread " + name + ": " + error.what() +
                   " (the process's thread or pids limit reached?)",
               {},
               0};
}

}  // namespace

Result<std::thread> StartThread(const std::string& name, std::function<void()> body) {
  try {
    return std::thread([name, body = std::move(body)] {
      NameThisThread(name);
      body();
    });
  } catch (const std::system_error& error) {
    return std::unexpected(CannotStart(name, error));
  }
}

Result<std::jthread> StartJThread(const std::string& name,
                                  std::function<void(std::stop_token)> body) {
  try {
    return std::jthread([name, body = std::move(body)](std::stop_token stop) {
      NameThisThread(name);
      body(std::move(stop));
    });
  } catch (const std::system_error& error) {
    return std::unexpected(CannotStart(name, error));
  }
}

}  // namespace poolkeeper
