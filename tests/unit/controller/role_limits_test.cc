// Role CONNECTION LIMIT enforcement against an in-memory server: limits set to the grants, the
// previous limit kept once and restored when a role is no longer pooled, missing roles skipped,
// failures retried.
#include "controller/role_limits.h"

#include <gtest/gtest.h>

namespace poolkeeper::controller {
namespace {

class FakeServer : public postgres::ServerClient {
 public:
  std::map<std::string, int64_t> limits;  // role -> rolconnlimit
  std::set<std::string> failing;          // roles whose ALTER fails
  int writes = 0;

  Result<postgres::Observation> Observe(const postgres::Endpoint&,
                                        const std::set<std::string>&) override {
    postgres::Observation seen;
    for (const auto& [role, limit] : limits) {
      if (limit >= 0) seen.role_limits[role] = limit;
    }
    return seen;
  }
  Result<int64_t> SetRoleConnectionLimit(const postgres::Endpoint&, const std::string& role,
                                         int64_t limit) override {
    if (failing.contains(role)) return Fail(ErrorCode::kUnauthorized, "permission denied");
    auto it = limits.find(role);
    if (it == limits.end()) return Fail(ErrorCode::kNotFound, "no role " + role);
    ++writes;
    return std::exchange(it->second, limit);
  }
  Result<postgres::AuthQueryChanges> EnsureAuthQuery(const postgres::Endpoint&,
                                                     const postgres::AuthQuerySetup&) override {
    return Fail(ErrorCode::kInternal, "not here");
  }
  Status RemoveAuthQuery(const postgres::Endpoint&, const postgres::AuthQuerySetup&,
                         bool) override {
    return Fail(ErrorCode::kInternal, "not here");
  }
};

api::ServerObservation Seen(FakeServer& server) {
  api::ServerObservation seen;
  seen.role_limits = server.Observe({}, {})->role_limits;
  return seen;
}

TEST(RoleLimits, SetsGrantsAndRestoresWhatTheRoleHadBefore) {
  FakeServer db;
  db.limits = {{"app", -1}, {"reports", 50}};
  auto first = ApplyRoleLimits(db, {}, {{"app", 24}, {"reports", 10}}, Seen(db), {});
  EXPECT_TRUE(first.problems.empty());
  EXPECT_EQ(db.limits, (std::map<std::string, int64_t>{{"app", 24}, {"reports", 10}}));
  EXPECT_EQ(first.managed,
            (std::vector<api::ManagedRoleLimit>{{"app", 24, -1}, {"reports", 10, 50}}));
  // Steady: nothing written.
  db.writes = 0;
  auto again = ApplyRoleLimits(db, {}, {{"app", 24}, {"reports", 10}}, Seen(db), first.managed);
  EXPECT_EQ(db.writes, 0);
  EXPECT_EQ(again.managed, first.managed);
  // A grant grows: the limit follows, the one to restore stays the original.
  auto grown = ApplyRoleLimits(db, {}, {{"app", 30}, {"reports", 10}}, Seen(db), again.managed);
  EXPECT_EQ(db.limits["app"], 30);
  EXPECT_EQ(grown.managed[0], (api::ManagedRoleLimit{"app", 30, -1}));
  // reports is no longer pooled, then nothing is: each gets its own limit back.
  auto fewer = ApplyRoleLimits(db, {}, {{"app", 30}}, Seen(db), grown.managed);
  EXPECT_EQ(db.limits["reports"], 50);
  EXPECT_EQ(fewer.managed.size(), 1u);
  auto none = ApplyRoleLimits(db, {}, {}, Seen(db), fewer.managed);
  EXPECT_EQ(db.limits["app"], -1);
  EXPECT_TRUE(none.managed.empty());
}

TEST(RoleLimits, SkipsMissingRolesAndRetriesFailures) {
  FakeServer db;
  db.limits = {{"app", -1}, {"locked", -1}};
  db.failing = {"locked"};
  auto outcome = ApplyRoleLimits(db, {}, {{"app", 5}, {"ghost", 5}, {"locked", 5}}, Seen(db), {});
  EXPECT_EQ(outcome.managed, (std::vector<api::ManagedRoleLimit>{{"app", 5, -1}}));
  EXPECT_NE(outcome.problems.find("locked: permission denied"), std::string::npos);
  EXPECT_EQ(outcome.problems.find("ghost"), std::string::npos);
  // A restore that fails keeps the role managed, to be restored at the next pass.
  db.failing = {"app"};
  auto stuck = ApplyRoleLimits(db, {}, {}, Seen(db), outcome.managed);
  EXPECT_EQ(stuck.managed, outcome.managed);
  EXPECT_FALSE(stuck.problems.empty());
}

}  // namespace
}  // namespace poolkeeper::controller
