// The `poolkeeper` command line, one CLI11 app: `check`, `render`, `run` (the operator, run.h) and
// `version`, each with its generated --help. Takes its arguments and streams as parameters so
// tests drive it in-process.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "postgres/observer.h"

namespace poolkeeper::cli {

// Exit codes of `check` and `render` (and of bad usage of any command), part of the CLI contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitOverBudget = 1;  // a pool or server over budget, or another Error finding
inline constexpr int kExitInvalid = 2;     // bad flags or input; every error with its field path

// args excludes the program name. `database` serves `check --observe` (nullptr: not available).
// `run` returns only when the operator stops.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           postgres::ServerClient* database = nullptr);

}  // namespace poolkeeper::cli
