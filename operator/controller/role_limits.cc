#include "controller/role_limits.h"

namespace poolkeeper::controller {

RoleLimitsOutcome ApplyRoleLimits(postgres::ServerClient& database,
                                  const postgres::Endpoint& endpoint,
                                  const std::map<std::string, int64_t>& grants,
                                  const api::ServerObservation& observed,
                                  const std::vector<api::ManagedRoleLimit>& managed) {
  std::map<std::string, api::ManagedRoleLimit> after;
  for (const auto& m : managed) after[m.role] = m;
  std::string problems;
  auto report = [&problems](const std::string& role, const Error& error) {
    problems += (problems.empty() ? "" : "; ") + role + ": " + error.message;
  };
  for (const auto& [role, grant] : grants) {
    auto seen = observed.role_limits.find(role);
    const int64_t current = seen == observed.role_limits.end() ? -1 : seen->second;
    auto known = after.find(role);
    if (known != after.end() && known->second.limit == grant && current == grant) continue;
    auto previous = database.SetRoleConnectionLimit(endpoint, role, grant);
    if (!previous) {
      if (previous.error().code != ErrorCode::kNotFound) report(role, previous.error());
      continue;
    }
    if (known == after.end()) {
      after[role] = {role, grant, *previous};
    } else {
      known->second.limit = grant;  // the limit to restore stays the one from before us
    }
  }
  for (auto it = after.begin(); it != after.end();) {
    if (grants.contains(it->first)) {
      ++it;
      continue;
    }
    auto restored = database.SetRoleConnectionLimit(endpoint, it->first, it->second.previous);
    if (restored || restored.error().code == ErrorCode::kNotFound) {
      it = after.erase(it);
    } else {
      report(it->first, restored.error());
      ++it;
    }
  }
  RoleLimitsOutcome outcome{{}, std::move(problems)};
  for (auto& [role, m] : after) outcome.managed.push_back(std::move(m));
  return outcome;
}

}  // namespace poolkeeper::controller
