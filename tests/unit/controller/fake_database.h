// A postgres::ServerClient for the controller's tests: it records the authQuery setups and
// removals it was asked for (and refuses setups with `auth_failure` when set); Observe and
// SetRoleConnectionLimit answer an empty observation and "no limit before" unless a test's
// subclass scripts them.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "postgres/observer.h"

namespace poolkeeper::controller::testing {

class FakeDatabase : public postgres::ServerClient {
 public:
  std::vector<postgres::AuthQuerySetup> ensured;
  std::vector<std::pair<postgres::AuthQuerySetup, bool>> removed;
  std::optional<Error> auth_failure;

  Result<postgres::Observation> Observe(const postgres::Endpoint&,
                                        const std::set<std::string>&) override {
    return postgres::Observation{};
  }
  Result<int64_t> SetRoleConnectionLimit(const postgres::Endpoint&, const std::string&,
                                         int64_t) override {
    return -1;
  }
  Result<postgres::AuthQueryChanges> EnsureAuthQuery(
      const postgres::Endpoint&, const postgres::AuthQuerySetup& setup) override {
    if (auth_failure) return std::unexpected(*auth_failure);
    ensured.push_back(setup);
    return postgres::AuthQueryChanges{};
  }
  Status RemoveAuthQuery(const postgres::Endpoint&, const postgres::AuthQuerySetup& setup,
                         bool drop_role) override {
    removed.emplace_back(setup, drop_role);
    return {};
  }
};

}  // namespace poolkeeper::controller::testing
