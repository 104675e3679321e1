// The `poolkeeper` command line: `check`, `render`, `version` (`run`, the operator, is run.h).
// Takes its arguments and streams as parameters so tests drive it in-process.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace poolkeeper::cli {

// Exit codes of `check` and `render`, part of the CLI contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitOverBudget = 1;  // a pool or server over budget, or another Error finding
inline constexpr int kExitInvalid = 2;     // bad flags or input; every error with its field path

// args excludes the program name.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace poolkeeper::cli
