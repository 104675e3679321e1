// `poolkeeper run`: the operator process. Wires the cluster configuration, the API client, the
// controller manager, the HTTP server (health, readiness, metrics) and leader election together,
// and owns the process lifecycle: SIGTERM/SIGINT drain reconciles in flight within a deadline and
// release the Lease; losing the Lease ends the process (another replica leads now).
#pragma once

#include "main/run_flags.h"

namespace poolkeeper::cli {

// Returns the process exit code. The flags were parsed by the command line (commands.h).
int RunOperator(const RunOptions& options);

}  // namespace poolkeeper::cli
