// The `poolkeeper` command line: `check`, `render`, `version` (`run`, the operator, is run.h).
// Takes its arguments and streams as parameters so tests drive it in-process.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "postgres/observer.h"

namespace poolkeeper::cli {

// Exit codes of `check` and `render`, part of the CLI contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitOverBudget = 1;  // a pool or server over budget, or another Error finding
inline constexpr int kExitInvalid = 2;     // bad flags or input; every error with its field path

// args excludes the program name. `database` serves `check --observe` (nullptr: not available).
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           postgres::ServerClient* database = nullptr);

}  // namespace poolkeeper::cli
