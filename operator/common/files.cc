#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace poolkeeper {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalid,
                path + ": " + std::strerror(errno));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Status WriteFileAtomically(const std::string& path, const std::string& content, int mode) {
  // A name nobody can predict, created exclusively: a symlink planted at a guessable temporary
  // name would otherwise redirect the write.
  std::string temp = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return Fail(ErrorCode::kInvalid, path + ": " + std::strerror(errno));
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    std::string reason = std::strerror(errno);
    ::close(fd);
    ::unlink(temp.c_str());
    return Fail(ErrorCode::kInvalid, path + ": " + reason);
  }
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      return Fail(ErrorCode::kInvalid, path + ": " + reason);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
    std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    return Fail(ErrorCode::kInvalid, path + ": " + reason);
  }
  return {};
}

Status MakeDirectories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Fail(ErrorCode::kInvalid, path + ": " + ec.message());
  return {};
}

}  // namespace poolkeeper
