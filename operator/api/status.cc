#include "api/status.h"

#include <algorithm>

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
  return {{"observedGeneration", status.observed_generation},
          {"conditions", conditions},
          {"instances", status.instances},
          {"readyInstances", status.ready_instances},
          {"selector", status.selector},
          {"configHash", status.config_hash},
          {"budget",
           {{"server", status.budget.server},
            {"usable", status.budget.usable},
            {"allocated", status.budget.allocated},
            {"perInstance", status.budget.per_instance},
            {"worstCase", status.budget.worst_case},
            {"headroom", status.budget.headroom},
            {"held", status.budget.held},
            {"databases", databases}}}};
}

namespace {

template <typename T>
T Get(const json& object, const char* key, T fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->template get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else {
    return it->is_number_integer() ? it->template get<T>() : fallback;
  }
}

}  // namespace

std::vector<Condition> ConditionsFromJson(const json& conditions) {
  std::vector<Condition> out;
  if (!conditions.is_array()) return out;
  for (const auto& c : conditions) {
    out.push_back({Get<std::string>(c, "type", ""), Get<std::string>(c, "status", ""),
                   Get<std::string>(c, "reason", ""), Get<std::string>(c, "message", ""),
                   Get<int64_t>(c, "observedGeneration", 0),
                   Get<std::string>(c, "lastTransitionTime", "")});
  }
  return out;
}

PoolStatus StatusFromJson(const json& status) {
  PoolStatus out;
  if (!status.is_object()) return out;
  out.observed_generation = Get<int64_t>(status, "observedGeneration", 0);
  out.instances = Get<int64_t>(status, "instances", 0);
  out.ready_instances = Get<int64_t>(status, "readyInstances", 0);
  out.selector = Get<std::string>(status, "selector", "");
  out.config_hash = Get<std::string>(status, "configHash", "");
  out.conditions = ConditionsFromJson(status.value("conditions", json()));
  if (auto it = status.find("budget"); it != status.end() && it->is_object()) {
    const json& b = *it;
    out.budget = {Get<std::string>(b, "server", ""),
                  Get<int64_t>(b, "usable", 0),
                  Get<int64_t>(b, "allocated", 0),
                  Get<int64_t>(b, "perInstance", 0),
                  Get<int64_t>(b, "worstCase", 0),
                  Get<int64_t>(b, "headroom", 0),
                  {},
                  Get<int64_t>(b, "held", 0)};
    if (auto dbs = b.find("databases"); dbs != b.end() && dbs->is_array()) {
      for (const auto& d : *dbs) {
        out.budget.databases.push_back({Get<std::string>(d, "name", ""),
                                        Get<int64_t>(d, "maxDbConnections", 0),
                                        Get<bool>(d, "derived", false)});
      }
    }
  }
  return out;
}

}  // namespace poolkeeper::api
