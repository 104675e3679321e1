// Running a program, as a small interface: exec credential plugins (credentials.h) are processes,
// and processes are I/O, so unit tests hand in a fake and only process_posix.cc forks.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace poolkeeper::kube {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is the program: a path, or a name looked up on PATH
  // Added to (or replacing in) the operator's own environment, as kubectl does for plugins.
  std::vector<std::pair<std::string, std::string>> env;
  std::chrono::seconds timeout{60};
};

struct ProcessResult {
  int exit_code = 0;  // the exit status, or 128 + the signal that ended it
  std::string out;    // standard output (bounded)
  std::string err;    // standard error (bounded)
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs the program directly (no shell) with standard input closed, and waits for it. Fails with
  // kNotFound when the program cannot be started, kTimeout when it outlives `timeout` (it is then
  // killed); any exit status is a result.
  virtual Result<ProcessResult> Run(const ProcessSpec& spec) = 0;
};

// fork/exec through posix_spawn, with the stop signals unblocked in the child (the operator
// blocks them in every thread).
class PosixProcessRunner : public ProcessRunner {
 public:
  Result<ProcessResult> Run(const ProcessSpec& spec) override;
};

}  // namespace poolkeeper::kube
