// Reconciling one ConnectionPool, as a pure function: from what the caches hold (the pool, every
// pool on its server, the password Secrets, the owned objects as stored) to what must be written
// (only the owned objects whose content changed, the status only when it differs) and the events
// to record. Level-based: every call computes the whole desired state, so running it twice on the
// same input gives the same answer and a steady state costs no writes.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "api/manifests.h"
#include "api/parse.h"
#include "api/status.h"
#include "budget/planner.h"
#include "common/error.h"

namespace poolkeeper::controller {

struct PoolInputs {
  nlohmann::json pool;  // the ConnectionPool as stored (metadata, spec, status)
  // Every valid pool that targets the same server, this one included, in ledger order
  // (creationTimestamp, then namespace/name): a pool never takes from those before it.
  std::vector<api::ConnectionPool> server_pools;
  // What the Deployments of those pools run now (render::kPlannedConnectionsAnnotation), so a pool
  // whose new spec is refused keeps being charged for the pods it still runs.
  budget::RunningWorstCase running;
  const api::SecretSource* secrets = nullptr;
  // Owned objects as stored, by kind ("ConfigMap", "Secret", "Deployment", "Service",
  // "PodDisruptionBudget"); absent when not created yet.
  std::map<std::string, nlohmann::json> owned;
  std::string now;              // RFC 3339, for condition transition times
  api::ParseDefaults defaults;  // what an unset image means
};

struct EventRecord {
  std::string type;    // Normal, Warning
  std::string reason;  // CamelCase
  std::string message;
  bool operator==(const EventRecord&) const = default;
};

struct ReconcileResult {
  std::vector<nlohmann::json> apply;      // owned objects to server-side apply, in order
  std::vector<std::string> delete_kinds;  // owned objects no longer wanted (e.g. the PDB)
  std::optional<nlohmann::json> status;   // the new status, when it differs from the stored one
  std::vector<EventRecord> events;
  // Why the configuration was not rolled out (budget, spec, missing Secret); empty when it was.
  std::string blocked_reason;
};

// Orders pools as the ledger does: creationTimestamp, then namespace/name.
void SortLedger(std::vector<api::ConnectionPool>& pools);

// The worst case a stored Deployment runs (its kPlannedConnectionsAnnotation), if it says.
std::optional<int64_t> PlannedConnections(const nlohmann::json& deployment);

ReconcileResult Reconcile(const PoolInputs& inputs);

}  // namespace poolkeeper::controller
