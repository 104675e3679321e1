// `poolkeeper run`: the operator process. Wires the cluster configuration, the API client, the
// controller manager, the HTTP server (health, readiness, metrics) and leader election together,
// and owns the process lifecycle: SIGTERM/SIGINT drain reconciles in flight within a deadline and
// release the Lease; losing the Lease ends the process (another replica leads now).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace poolkeeper::cli {

// args excludes "run". Returns the process exit code.
int RunOperator(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace poolkeeper::cli
