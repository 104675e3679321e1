#include "api/status.h"

#include <algorithm>

#include "common/json_get.h"

namespace poolkeeper::api {

using nlohmann::json;

void SetCondition(std::vector<Condition>& conditions, Condition condition, const std::string& now) {
  auto it = std::ranges::find(conditions, condition.type, &Condition::type);
  if (it == conditions.end()) {
    condition.last_transition_time = now;
    conditions.push_back(std::move(condition));
    return;
  }
  condition.last_transition_time = it->status == condition.status ? it->last_transition_time : now;
  *it = std::move(condition);
}

const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type) {
  auto it = std::ranges::find(conditions, type, &Condition::type);
  return it == conditions.end() ? nullptr : &*it;
}

json ConditionsToJson(const std::vector<Condition>& conditions) {
  json out = json::array();
  for (const auto& c : conditions) {
    out.push_back({{"type", c.type},
                   {"status", c.status},
                   {"reason", c.reason},
                   {"message", c.message},
                   {"observedGeneration", c.observed_generation},
                   {"lastTransitionTime", c.last_transition_time}});
  }
  return out;
}

json StatusToJson(const PoolStatus& status) {
  json conditions = ConditionsToJson(status.conditions);
  json databases = json::array();
  for (const auto& d : status.budget.databases) {
    databases.push_back(
        {{"name", d.name}, {"maxDbConnections", d.max_db_connections}, {"derived", d.derived}});
  }
  json out = {{"observedGeneration", status.observed_generation},
              {"conditions", conditions},
              {"instances", status.instances},
              {"readyInstances", status.ready_instances},
              {"selector", status.selector},
              {"configHash", status.config_hash},
              {"paused", status.paused},
              {"budget",
               {{"server", status.budget.server},
                {"usable", status.budget.usable},
                {"allocated", status.budget.allocated},
                {"perInstance", status.budget.per_instance},
                {"worstCase", status.budget.worst_case},
                {"headroom", status.budget.headroom},
                {"held", status.budget.held},
                {"databases", databases}}}};
  if (status.live) {
    out["live"] = {{"serverConnections", status.live->server_connections},
                   {"clientsWaiting", status.live->clients_waiting},
                   {"longestWaitSeconds", status.live->longest_wait_seconds},
                   {"podsReporting", status.live->pods_reporting}};
  }
  return out;
}

std::vector<Condition> ConditionsFromJson(const json& conditions) {
  std::vector<Condition> out;
  if (!conditions.is_array()) return out;
  for (const auto& c : conditions) {
    out.push_back({JsonGet<std::string>(c, "type", ""), JsonGet<std::string>(c, "status", ""),
                   JsonGet<std::string>(c, "reason", ""), JsonGet<std::string>(c, "message", ""),
                   JsonGet<int64_t>(c, "observedGeneration", 0),
                   JsonGet<std::string>(c, "lastTransitionTime", "")});
  }
  return out;
}

PoolStatus StatusFromJson(const json& status) {
  PoolStatus out;
  if (!status.is_object()) return out;
  out.observed_generation = JsonGet<int64_t>(status, "observedGeneration", 0);
  out.instances = JsonGet<int64_t>(status, "instances", 0);
  out.ready_instances = JsonGet<int64_t>(status, "readyInstances", 0);
  out.selector = JsonGet<std::string>(status, "selector", "");
  out.config_hash = JsonGet<std::string>(status, "configHash", "");
  out.paused = JsonGet<bool>(status, "paused", false);
  out.conditions = ConditionsFromJson(status.value("conditions", json()));
  if (auto it = status.find("budget"); it != status.end() && it->is_object()) {
    const json& b = *it;
    out.budget = {JsonGet<std::string>(b, "server", ""),
                  JsonGet<int64_t>(b, "usable", 0),
                  JsonGet<int64_t>(b, "allocated", 0),
                  JsonGet<int64_t>(b, "perInstance", 0),
                  JsonGet<int64_t>(b, "worstCase", 0),
                  JsonGet<int64_t>(b, "headroom", 0),
                  {},
                  JsonGet<int64_t>(b, "held", 0)};
    if (auto dbs = b.find("databases"); dbs != b.end() && dbs->is_array()) {
      for (const auto& d : *dbs) {
        out.budget.databases.push_back({JsonGet<std::string>(d, "name", ""),
                                        JsonGet<int64_t>(d, "maxDbConnections", 0),
                                        JsonGet<bool>(d, "derived", false)});
      }
    }
  }
  if (auto it = status.find("live"); it != status.end() && it->is_object()) {
    out.live = LiveStatus{
        JsonGet<int64_t>(*it, "serverConnections", 0), JsonGet<int64_t>(*it, "clientsWaiting", 0),
        JsonGet<int64_t>(*it, "longestWaitSeconds", 0), JsonGet<int64_t>(*it, "podsReporting", 0)};
  }
  return out;
}

}  // namespace poolkeeper::api
