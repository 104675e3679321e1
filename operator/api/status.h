// The ConnectionPool's status as the operator writes it: conditions in the metav1.Condition shape
// (Ready, BudgetExceeded, Progressing, Degraded), the budget arithmetic, the live figures the
// pooler agents report, whether the pods are paused, instances and the scale selector. Conversion
// both ways, so the operator compares what it would write with what is there and writes nothing
// when they are equal.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace poolkeeper::api {

inline constexpr char kConditionReady[] = "Ready";
inline constexpr char kConditionBudgetExceeded[] = "BudgetExceeded";
inline constexpr char kConditionProgressing[] = "Progressing";
inline constexpr char kConditionDegraded[] = "Degraded";

struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  std::string reason;  // CamelCase
  std::string message;
  int64_t observed_generation = 0;
  std::string last_transition_time;  // RFC 3339
  bool operator==(const Condition&) const = default;
};

struct DatabaseBudget {
  std::string name;
  int64_t max_db_connections = 0;
  bool derived = false;
  bool operator==(const DatabaseBudget&) const = default;
};

struct BudgetStatus {
  std::string server;
  int64_t usable = 0;
  int64_t allocated = 0;  // by every pool on the server, this one included
  int64_t per_instance = 0;
  int64_t worst_case = 0;
  int64_t headroom = 0;
  std::vector<DatabaseBudget> databases;
  // What the pool's existing pods (draining ones included) and admitted configuration can open now.
  int64_t held = 0;
  bool operator==(const BudgetStatus&) const = default;
};

// What the pool's pooler agents report now (status.live), to read against the budget: server
// connections in use, summed over the pods whose agent answered within the last three polls, next
// to `held` (what the pods could open) and `worstCase` (what the spec could open). Integers only:
// the longest wait is in whole seconds.
struct LiveStatus {
  int64_t server_connections = 0;    // sum over the reporting pods
  int64_t clients_waiting = 0;       // sum
  int64_t longest_wait_seconds = 0;  // max
  int64_t pods_reporting = 0;
  bool operator==(const LiveStatus&) const = default;
};

struct PoolStatus {
  int64_t observed_generation = 0;
  std::vector<Condition> conditions;
  int64_t instances = 0;
  int64_t ready_instances = 0;
  std::string selector;
  std::string config_hash;
  // Every running pod's pooler agent reports PgBouncer paused (spec.paused reached); false while
  // any pod runs unpaused, when the pool has no running pods, and without the agent.
  bool paused = false;
  BudgetStatus budget;
  std::optional<LiveStatus> live;  // absent when the pool has no agent
  bool operator==(const PoolStatus&) const = default;
};

// Sets `condition` in `conditions` (by type). lastTransitionTime becomes `now` only when the status
// changes (or the condition is new), as Kubernetes API conventions require.
void SetCondition(std::vector<Condition>& conditions, Condition condition, const std::string& now);
const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type);

// Conditions as the status carries them (both resources), and back (lenient).
nlohmann::json ConditionsToJson(const std::vector<Condition>& conditions);
std::vector<Condition> ConditionsFromJson(const nlohmann::json& conditions);

nlohmann::json StatusToJson(const PoolStatus& status);
// Lenient: unknown or mistyped fields are ignored (the status is ours, but may be older).
PoolStatus StatusFromJson(const nlohmann::json& status);

}  // namespace poolkeeper::api
