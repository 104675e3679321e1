#include "controller/reconciler.h"

#include <algorithm>

#include "api/parse.h"
#include "budget/planner.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

constexpr const char* kOwnedKinds[] = {"ConfigMap", "Secret", "Service", "PodDisruptionBudget",
                                       "Deployment"};

std::string StoredAppliedHash(const json& object) {
  const json* annotations = nullptr;
  if (object.is_object() && object.contains("metadata") &&
      object["metadata"].contains("annotations")) {
    annotations = &object["metadata"]["annotations"];
  }
  if (!annotations || !annotations->contains(render::kAppliedHashAnnotation)) return "";
  const json& value = (*annotations)[render::kAppliedHashAnnotation];
  return value.is_string() ? value.get<std::string>() : "";
}

// Stamps the hash of the object's content, so the next reconcile can tell it is unchanged from the
// cache alone, without a dry-run or a diff against server-defaulted fields.
json Stamp(json object) {
  std::string hash = render::AppliedHash(object);
  object["metadata"]["annotations"][render::kAppliedHashAnnotation] = hash;
  return object;
}

int64_t DeploymentStatus(const PoolInputs& in, const char* field) {
  auto it = in.owned.find("Deployment");
  if (it == in.owned.end() || !it->second.contains("status")) return 0;
  const json& status = it->second["status"];
  return status.contains(field) && status[field].is_number_integer() ? status[field].get<int64_t>()
                                                                     : 0;
}

// Whether the stored Deployment's rollout of its current template is complete, as
// `kubectl rollout status` decides it.
bool RolloutComplete(const PoolInputs& in, int64_t instances) {
  auto it = in.owned.find("Deployment");
  if (it == in.owned.end()) return false;
  const json& d = it->second;
  int64_t generation = d.value("/metadata/generation"_json_pointer, int64_t{0});
  int64_t observed = d.value("/status/observedGeneration"_json_pointer, int64_t{-1});
  return observed >= generation && DeploymentStatus(in, "updatedReplicas") >= instances &&
         DeploymentStatus(in, "replicas") <= instances &&
         DeploymentStatus(in, "availableReplicas") >= instances;
}

// A shrinking pool's old pods can open more than its new plan until they are gone, so the
// Deployment keeps announcing the larger figure (which the ledger charges) until the rollout of the
// new template is complete; then it announces the new one.
void KeepChargeWhileRolling(const PoolInputs& in, int64_t worst_case, int64_t instances,
                            render::OwnedObjects& objects) {
  auto stored = in.owned.find("Deployment");
  if (stored == in.owned.end()) return;
  std::optional<int64_t> previous = PlannedConnections(stored->second);
  if (!previous || *previous <= worst_case) return;
  static const auto kTemplateHash =
      "/spec/template/metadata/annotations/poolkeeper.io~1config-hash"_json_pointer;
  bool new_template = stored->second.value(kTemplateHash, std::string()) != objects.config_hash;
  if (new_template || !RolloutComplete(in, instances)) {
    objects.deployment["metadata"]["annotations"][render::kPlannedConnectionsAnnotation] =
        std::to_string(*previous);
  }
}

api::Condition MakeCondition(const char* type, bool value, std::string reason, std::string message,
                             int64_t generation) {
  return {type, value ? "True" : "False", std::move(reason), std::move(message), generation, ""};
}

}  // namespace

void SortLedger(std::vector<api::ConnectionPool>& pools) {
  std::ranges::stable_sort(pools, [](const api::ConnectionPool& a, const api::ConnectionPool& b) {
    return std::tie(a.metadata.creation_timestamp, a.metadata.namespace_, a.metadata.name) <
           std::tie(b.metadata.creation_timestamp, b.metadata.namespace_, b.metadata.name);
  });
}

std::optional<int64_t> PlannedConnections(const json& deployment) {
  const json* value = nullptr;
  auto pointer =
      json::json_pointer("/metadata/annotations") / render::kPlannedConnectionsAnnotation;
  if (deployment.contains(pointer)) value = &deployment[pointer];
  if (!value || !value->is_string()) return std::nullopt;
  try {
    size_t used = 0;
    int64_t n = std::stoll(value->get<std::string>(), &used);
    if (used == value->get<std::string>().size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

ReconcileResult Reconcile(const PoolInputs& in) {
  ReconcileResult result;
  const json stored_status = in.pool.value("status", json::object());
  api::PoolStatus status = api::StatusFromJson(stored_status);
  const int64_t generation = in.pool.value("/metadata/generation"_json_pointer, int64_t{0});
  status.observed_generation = generation;
  auto block = [&](const char* reason, const std::string& message, bool warn) {
    result.blocked_reason = message;
    api::SetCondition(status.conditions,
                      MakeCondition(api::kConditionDegraded, true, reason, message, generation),
                      in.now);
    if (warn) result.events.push_back({"Warning", reason, message});
  };

  auto pool = api::ParseConnectionPool(in.pool, in.defaults);
  std::optional<render::OwnedObjects> objects;
  if (!pool) {
    block("InvalidSpec", pool.error().ToString(), true);
  } else {
    status.instances = pool->spec.pooler.instances;
    status.selector = render::PodSelector(*pool);
    auto plan = budget::PlanPools(in.server_pools, in.running);
    const budget::PoolPlan* mine = nullptr;
    if (plan) {
      for (const auto& p : plan->pools) {
        if (p.namespace_ == pool->metadata.namespace_ && p.name == pool->metadata.name) mine = &p;
      }
    }
    if (!plan || !mine) {
      block("InvalidServer",
            plan ? "pool missing from its server's ledger" : plan.error().ToString(), true);
    } else {
      const budget::ServerPlan* server = nullptr;
      for (const auto& s : plan->servers) {
        if (s.server == mine->server) server = &s;
      }
      status.budget = {mine->server,
                       server ? server->usable : 0,
                       server ? server->allocated : 0,
                       mine->per_instance,
                       mine->worst_case,
                       server ? server->headroom : 0,
                       {}};
      for (const auto& d : mine->databases) {
        status.budget.databases.push_back({d.name, d.max_db_connections, d.derived});
      }
      std::string arithmetic;
      for (const auto& f : mine->findings) {
        if (f.code == "BudgetExceeded") {
          arithmetic = f.message;
        } else if (f.severity == budget::Severity::kError) {
          // Not the server's budget, so the pool still rolls out; but `check` fails on it, and
          // the user should hear of it too (e.g. ClientCapacityExceeded).
          result.events.push_back({"Warning", f.code, f.message});
        }
      }
      bool exceeded = mine->verdict == budget::Verdict::kBudgetExceeded;
      bool enforce = pool->spec.budget_policy == api::BudgetPolicy::kEnforce;
      api::SetCondition(
          status.conditions,
          MakeCondition(
              api::kConditionBudgetExceeded, exceeded, exceeded ? "Exceeded" : "WithinBudget",
              exceeded ? arithmetic
                       : "(" + std::to_string(mine->instances) + " + " +
                             std::to_string(mine->max_surge) + ") x " +
                             std::to_string(mine->per_instance) + " = " +
                             std::to_string(mine->worst_case) + " connections fit in " +
                             std::to_string(status.budget.usable) + " usable on " + mine->server,
              generation),
          in.now);
      if (exceeded && enforce) {
        block("BudgetExceeded",
              "not rolled out, the last good configuration keeps running: " + arithmetic, true);
      } else {
        if (exceeded) result.events.push_back({"Warning", "BudgetExceeded", arithmetic});
        auto passwords = api::ResolvePasswords(*pool, *in.secrets);
        if (!passwords) {
          block("SecretNotFound", passwords.error().ToString(), true);
        } else {
          auto built =
              render::BuildObjects(*pool, *mine, passwords->passwords, passwords->revision);
          if (!built) {
            block("InvalidSpec", built.error().ToString(), true);
          } else {
            objects = std::move(*built);
            KeepChargeWhileRolling(in, mine->worst_case, pool->spec.pooler.instances, *objects);
          }
        }
      }
    }
  }

  if (objects) {
    status.config_hash = objects->config_hash;
    std::map<std::string, const json*> desired = {
        {"ConfigMap", &objects->config_map},
        {"Secret", &objects->secret},
        {"Deployment", &objects->deployment},
        {"Service", &objects->service},
        {"PodDisruptionBudget", &objects->pod_disruption_budget}};
    for (const char* kind : kOwnedKinds) {
      const json& want = *desired[kind];
      auto stored = in.owned.find(kind);
      if (want.is_null()) {
        if (stored != in.owned.end()) result.delete_kinds.push_back(kind);
        continue;
      }
      json stamped = Stamp(want);
      bool unchanged = stored != in.owned.end() &&
                       StoredAppliedHash(stored->second) ==
                           stamped["metadata"]["annotations"][render::kAppliedHashAnnotation];
      if (!unchanged) result.apply.push_back(std::move(stamped));
    }
    if (!result.apply.empty()) {
      bool created = !in.owned.contains("Deployment");
      result.events.push_back(
          {"Normal", created ? "Created" : "Applied",
           (created ? "created pooler with configuration " : "applied configuration ") +
               objects->config_hash.substr(0, 12)});
    }
    api::SetCondition(status.conditions,
                      MakeCondition(api::kConditionDegraded, false, "AsPlanned",
                                    "the planned configuration is rolled out", generation),
                      in.now);
  }

  // Readiness comes from the running pods, whether or not the newest spec could be rolled out.
  const int64_t instances = status.instances;
  status.ready_instances = DeploymentStatus(in, "readyReplicas");
  bool rolling = objects && (!result.apply.empty() || !RolloutComplete(in, instances));
  api::SetCondition(
      status.conditions,
      MakeCondition(
          api::kConditionProgressing, rolling, rolling ? "RollingOut" : "RolloutComplete",
          rolling ? "pods are being updated to configuration " + status.config_hash.substr(0, 12)
                  : "every pod runs the current configuration",
          generation),
      in.now);
  bool ready = result.blocked_reason.empty() && !rolling && status.ready_instances >= instances;
  std::string ready_message = std::to_string(status.ready_instances) + " of " +
                              std::to_string(instances) + " instances ready" +
                              (result.blocked_reason.empty() ? "" : "; " + result.blocked_reason);
  api::SetCondition(status.conditions,
                    MakeCondition(api::kConditionReady, ready,
                                  ready                            ? "Available"
                                  : !result.blocked_reason.empty() ? "Blocked"
                                                                   : "InstancesNotReady",
                                  ready_message, generation),
                    in.now);
  if (!objects) status.config_hash = api::StatusFromJson(stored_status).config_hash;

  json new_status = api::StatusToJson(status);
  if (api::StatusFromJson(stored_status) != status) result.status = std::move(new_status);
  return result;
}

}  // namespace poolkeeper::controller
