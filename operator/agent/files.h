// What the agent reads from its mounts, behind an interface so its tests run on an in-memory fake:
// a file's content and a symlink's target. The kubelet updates a ConfigMap or Secret volume by
// writing a new timestamped directory and swapping the `..data` symlink to it, so the target of
// `..data` changes exactly when the mounted content does.
#pragma once

#include <memory>
#include <string>

#include "common/error.h"

namespace poolkeeper::agent {

class AgentFiles {
 public:
  virtual ~AgentFiles() = default;
  // kNotFound when the file does not exist.
  virtual Result<std::string> Read(const std::string& path) = 0;
  // The target of the symlink at `path`; kNotFound when `path` is missing or not a symlink.
  virtual Result<std::string> LinkTarget(const std::string& path) = 0;
};

std::unique_ptr<AgentFiles> MakeDiskFiles();

}  // namespace poolkeeper::agent
