#include "controller/server_status.h"

#include "api/status.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

std::string N(int64_t value) { return std::to_string(value); }

json BudgetJson(const budget::ServerDirectory& directory, const api::PostgresServer& server,
                const budget::Plan& plan) {
  const std::string key = directory.BudgetKeyOf(api::ServerRefKey(server.name));
  for (const auto& s : plan.servers) {
    if (s.server != key) continue;
    return {{"maxConnections", s.max_connections},
            {"reserved", s.reserved},
            {"overhead", s.overhead},
            {"usable", s.usable},
            {"allocated", s.allocated},
            {"headroom", s.headroom},
            {"heldByOthers", s.held_elsewhere}};
  }
  // No pool on it yet: the figures pools would be planned against.
  auto limits = directory.GroupLimits(server.name);
  if (!limits) return json::object();
  const int64_t reserved = limits->superuser_reserved_connections + limits->reserved_connections;
  const int64_t overhead = limits->overhead.Resolve(limits->max_connections);
  const int64_t usable = limits->max_connections - reserved - overhead;
  return {{"maxConnections", limits->max_connections},
          {"reserved", reserved},
          {"overhead", overhead},
          {"usable", usable},
          {"allocated", 0},
          {"headroom", usable},
          {"heldByOthers", 0}};
}

json PoolsJson(const budget::Plan& plan, const std::string& key) {
  json pools = json::array();
  for (const auto& p : plan.pools) {
    if (p.server != key) continue;
    pools.push_back({{"namespace", p.namespace_},
                     {"name", p.name},
                     {"allocated", p.allocated},
                     {"verdict", p.refused ? "Refused" : budget::VerdictName(p.verdict)}});
  }
  return pools;
}

api::Condition Reachability(const ServerStatusInputs& in, const api::PostgresServer& server,
                            const std::vector<api::Condition>& before) {
  auto make = [&](const char* status, const char* reason, std::string message) {
    return api::Condition{kConditionReachable, status, reason, std::move(message),
                          server.generation,   ""};
  };
  if (!server.spec.credentials_secret_ref) {
    return make("Unknown", "NotObserved",
                "no credentialsSecretRef: pools are planned on the declared figures");
  }
  if (!in.observation) {
    // Not attempted in this pass (e.g. the credentials Secret is missing): keep what was said.
    if (const api::Condition* kept = api::FindCondition(before, kConditionReachable)) return *kept;
    return make("Unknown", "NotObservedYet", "waiting for the first observation");
  }
  if (!*in.observation) {
    const Error& error = in.observation->error();
    const char* reason = error.code == ErrorCode::kUnauthorized ? "Unauthorized"
                         : error.code == ErrorCode::kNotFound   ? "CredentialsNotFound"
                                                                : "Unreachable";
    return make("False", reason,
                error.message + (server.observed
                                     ? "; the last observation (" + server.observed->observed_at +
                                           ") is kept, and nothing is admitted beyond what the "
                                           "server's pools hold"
                                     : "; planning on the declared figures"));
  }
  const api::ServerObservation& seen = **in.observation;
  return make("True", "Observed",
              "max_connections " + N(seen.max_connections) + ", superuser_reserved_connections " +
                  N(seen.superuser_reserved_connections) + ", reserved_connections " +
                  N(seen.reserved_connections) + ", " + N(seen.in_use_by_others) +
                  " connections by other clients, PostgreSQL " + seen.server_version);
}

}  // namespace

std::vector<std::string> Drift(const api::PostgresServerSpec& declared,
                               const api::ServerObservation& observed) {
  std::vector<std::string> drift;
  auto compare = [&](const char* field, std::optional<int64_t> mine, int64_t seen) {
    if (mine && *mine != seen) {
      drift.push_back(std::string(field) + ": declared " + N(*mine) + ", observed " + N(seen));
    }
  };
  compare("maxConnections", declared.max_connections, observed.max_connections);
  compare("superuserReservedConnections", declared.superuser_reserved_connections,
          observed.superuser_reserved_connections);
  compare("reservedConnections", declared.reserved_connections, observed.reserved_connections);
  return drift;
}

json BuildServerStatus(const ServerStatusInputs& in) {
  const json stored_status = in.stored.value("status", json::object());
  std::vector<api::Condition> conditions =
      api::ConditionsFromJson(stored_status.value("conditions", json()));
  const std::string now = in.now;
  json status = json::object();
  if (!in.server) {
    api::SetCondition(conditions,
                      {"Ready", "False", "InvalidSpec", in.server.error().ToString(),
                       in.stored.value("/metadata/generation"_json_pointer, int64_t{0}), ""},
                      now);
    status["conditions"] = api::ConditionsToJson(conditions);
    if (stored_status.contains("observed")) status["observed"] = stored_status["observed"];
    return status;
  }
  const api::PostgresServer& server = *in.server;
  const budget::ServerDirectory& directory = *in.directory;
  std::optional<api::ServerObservation> observed = server.observed;
  if (in.observation && *in.observation) observed = **in.observation;

  status["observedGeneration"] = server.generation;
  status["endpoint"] = api::EndpointKey(server.spec.host, server.spec.port);
  const std::string key = directory.BudgetKeyOf(api::ServerRefKey(server.name));
  status["budgetKey"] = key;
  json shared = json::array();
  for (const auto& name : directory.GroupOf(server.name)) {
    if (name != server.name) shared.push_back(name);
  }
  status["sharedWith"] = shared;
  if (observed) status["observed"] = api::ObservationToJson(*observed);
  status["drift"] = observed ? json(Drift(server.spec, *observed)) : json::array();
  status["budget"] = BudgetJson(directory, server, in.plan);
  status["budget"]["source"] = observed ? "Observed" : "Declared";
  status["pools"] = PoolsJson(in.plan, key);

  const std::vector<api::ManagedRoleLimit>& managed =
      in.role_limits ? in.role_limits->managed : server.managed_role_limits;
  if (!managed.empty()) status["roleLimits"] = api::ManagedRoleLimitsToJson(managed);
  if (in.role_limits) {
    std::string set;
    for (const auto& m : managed) {
      set += (set.empty() ? "" : ", ") + m.role + " " + N(m.limit) + " (was " + N(m.previous) + ")";
    }
    const bool failed = !in.role_limits->problems.empty();
    api::SetCondition(
        conditions,
        {"RoleLimits", failed ? "False" : "True", failed ? "Failed" : "Enforced",
         failed ? in.role_limits->problems
                : (set.empty() ? "no pooled role to limit" : "CONNECTION LIMIT " + set),
         server.generation, ""},
        now);
  }
  if (in.auth_query) {
    const AuthQueryOutcome& auth = *in.auth_query;
    if (!auth.databases.empty() || !auth.secret.empty()) {
      status["authQuery"] = {{"databases", auth.databases}, {"secret", auth.secret}};
    }
    if (auth.condition) {
      api::SetCondition(conditions, *auth.condition, now);
    } else {
      std::erase_if(conditions,
                    [](const api::Condition& c) { return c.type == kConditionAuthQueryReady; });
    }
  } else if (stored_status.contains("authQuery")) {
    status["authQuery"] = stored_status["authQuery"];
  }
  api::SetCondition(conditions, Reachability(in, server, conditions), now);
  const bool usable = status["budget"].contains("usable");
  api::SetCondition(conditions,
                    {"Ready", usable ? "True" : "False", usable ? "Budgeted" : "NoFigures",
                     usable ? "pools are planned on " + key
                            : "no maxConnections declared and nothing observed yet",
                     server.generation, ""},
                    now);
  status["conditions"] = api::ConditionsToJson(conditions);
  return status;
}

}  // namespace poolkeeper::controller
