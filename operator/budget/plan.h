// The connection budget of one PostgreSQL server and the pools that share it: what the planner
// (planner.h) computes and what `check`, the renderers and the operator's status report.
// Pure values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/connection_pool.h"

namespace poolkeeper::budget {

enum class Severity { kInfo, kWarning, kError };
std::string_view SeverityName(Severity severity);  // "Info", "Warning", "Error"

// A stable code (BudgetExceeded, ClientCapacityExceeded, SessionModeQueueing, ...) and a message
// that shows the arithmetic.
struct Finding {
  Severity severity = Severity::kInfo;
  std::string code;
  std::string message;
  bool operator==(const Finding&) const = default;
};

enum class Verdict { kWithinBudget, kBudgetExceeded };
std::string_view VerdictName(Verdict verdict);  // "WithinBudget", "BudgetExceeded"

struct DatabasePlan {
  std::string name;
  int max_db_connections = 0;  // the cap pgbouncer enforces per instance; 0 = none (uncapped)
  bool derived = false;        // true when the planner chose the cap (the spec set none)
  bool operator==(const DatabasePlan&) const = default;
};

struct PoolPlan {
  std::string namespace_;
  std::string name;
  std::string server;  // ServerSpec::Key()
  int instances = 0;
  int max_surge = 0;
  // The exact max server connections one pgbouncer can open, with the caps below.
  int64_t per_instance = 0;
  int64_t worst_case = 0;  // PodsCharged (instances + max_surge, or 0) * per_instance
  // What the ledger charges: worst_case when admitted (or under Warn), at least what it holds now
  // (Holdings; 0 when nothing runs).
  int64_t allocated = 0;
  // The most the pool's pods may hold at any instant: what its position in the ledger leaves it
  // (usable - earlier pools' allocations - what the other pools' pods hold). A new pod starts only
  // when the pods that exist plus it fit in this. Under Warn at least worst_case.
  int64_t limit = 0;
  Verdict verdict = Verdict::kWithinBudget;
  // Not planned at all (its declaration of the server conflicts with the budget's): it blocks
  // itself whatever the policy, is charged what it holds, and the reason is among the findings.
  bool refused = false;
  std::vector<DatabasePlan> databases;  // in spec order
  int64_t client_demand = 0;    // sum over clients of instances * (pool_size + max_overflow)
  int64_t client_capacity = 0;  // instances * max_client_conn
  std::vector<Finding> findings;
  bool operator==(const PoolPlan&) const = default;
};

struct ServerPlan {
  std::string server;  // "host:port"
  int64_t max_connections = 0;
  int64_t reserved = 0;  // superuser_reserved_connections + reserved_connections
  int64_t overhead = 0;  // resolved
  int64_t usable = 0;    // max_connections - reserved - overhead
  // Held by pods of pools not planned here (deleted, invalid, moved, orphaned); in allocated.
  int64_t held_elsewhere = 0;
  int64_t allocated = 0;
  int64_t headroom = 0;  // usable - allocated
  // allocated, by the namespace of the pool charged (namespace quotas of a PostgresServer).
  std::map<std::string, int64_t> allocated_by_namespace;
  Verdict verdict = Verdict::kWithinBudget;
  bool operator==(const ServerPlan&) const = default;
};

struct Plan {
  std::vector<ServerPlan> servers;  // in order of first appearance
  std::vector<PoolPlan> pools;      // in ledger order
  bool AnyError() const;            // any finding with Severity::kError
};

}  // namespace poolkeeper::budget
