// The disk implementation of AgentFiles.
#include "agent/files.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/files.h"

namespace poolkeeper::agent {
namespace {

class DiskFiles : public AgentFiles {
 public:
  Result<std::string> Read(const std::string& path) override { return ReadFile(path); }

  Result<std::string> LinkTarget(const std::string& path) override {
    std::array<char, 4096> buffer{};
    ssize_t length = ::readlink(path.c_str(), buffer.data(), buffer.size() - 1);
    if (length < 0) {
      int error = errno;
      return Fail(error == ENOENT || error == EINVAL ? ErrorCode::kNotFound : ErrorCode::kInternal,
                  path + ": " + std::strerror(error));
    }
    return std::string(buffer.data(), static_cast<size_t>(length));
  }
};

}  // namespace

std::unique_ptr<AgentFiles> MakeDiskFiles() { return std::make_unique<DiskFiles>(); }

}  // namespace poolkeeper::agent
