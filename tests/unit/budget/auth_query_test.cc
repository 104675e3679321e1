// The budget of a pool in authQuery mode: any role may log in, so the databases' caps bound the
// roles' pools, and the auth user's own pools (one per database, to run auth_query) are counted
// beside them.
#include <gtest/gtest.h>

#include "budget/planner.h"
#include "budget/sizing.h"
#include "pool_builder.h"

namespace poolkeeper::budget {
namespace {

using testing::Db;
using testing::Pool;
using testing::SetDatabases;
using testing::SetUsers;
using testing::User;

struct AuthCase {
  std::string name;
  std::vector<Db> dbs;
  std::vector<User> users;
  int reserve = 0;
  int64_t auth_per_instance;
  int64_t per_instance;
};

class AuthQueryPerInstance : public ::testing::TestWithParam<AuthCase> {};

TEST_P(AuthQueryPerInstance, IsTheDatabaseCapsPlusTheAuthUsersPools) {
  const AuthCase& c = GetParam();
  api::ConnectionPool pool = Pool();
  pool.spec.auth_mode = api::AuthMode::kAuthQuery;
  pool.spec.pooler.reserve_pool_size = c.reserve;
  SetDatabases(pool, c.dbs);
  SetUsers(pool, c.users);
  EXPECT_EQ(AuthUserPerInstance(pool), c.auth_per_instance);
  EXPECT_EQ(FlowPerInstance(pool, {}), c.per_instance);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AuthQueryPerInstance,
    ::testing::Values(
        // Pool size 10 (the builder's default): the auth user's pool on "app" is 10.
        AuthCase{"OneDatabaseNoUsers", {{"app", {}, {}, 25}}, {}, 0, 10, 25 + 10},
        // Listed users do not add: any other role can fill the cap anyway.
        AuthCase{
            "ListedUsersDoNotAdd", {{"app", {}, {}, 25}}, {{"a", 5}, {"b", {}}}, 0, 10, 25 + 10},
        // Per database: (pool_size + reserve) for the auth user, each database's cap for roles.
        AuthCase{"TwoDatabasesWithReserve",
                 {{"app", 4, {}, 30}, {"reports", {}, 1, 7}},
                 {},
                 2,
                 (4 + 2) + (10 + 1),
                 30 + 7 + (4 + 2) + (10 + 1)}),
    [](const auto& info) { return info.param.name; });

TEST(AuthQuery, UserlistModeCountsNoAuthUser) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"app", {}, {}, 25}});
  EXPECT_EQ(AuthUserPerInstance(pool), 0);
  EXPECT_EQ(FlowPerInstance(pool, {}), 10);  // one user, pool size 10, under the cap
}

TEST(AuthQuery, TheWorstCaseChargesEveryPodWithTheAuthConnections) {
  api::ConnectionPool pool = Pool("auth", 100);
  pool.spec.auth_mode = api::AuthMode::kAuthQuery;
  SetDatabases(pool, {{"app", 5, {}, 20}});
  Plan plan = PlanPools({pool});
  ASSERT_EQ(plan.pools.size(), 1u);
  // 1 instance + 1 surge, each (20 + 5).
  EXPECT_EQ(plan.pools[0].per_instance, 25);
  EXPECT_EQ(plan.pools[0].worst_case, 50);
}

TEST(AuthQuery, APoolWhoseAuthConnectionsDoNotFitIsExceeded) {
  // usable = 30 - 10 overhead = 20; 2 pods x (15 + 10) = 50 with caps the spec declared: nothing
  // can be derived, so the plan refuses rather than leave the auth user uncounted.
  api::ConnectionPool pool = Pool("auth", 30);
  pool.spec.auth_mode = api::AuthMode::kAuthQuery;
  SetDatabases(pool, {{"app", {}, {}, 15}});
  Plan plan = PlanPools({pool});
  EXPECT_EQ(plan.pools[0].verdict, Verdict::kBudgetExceeded);
}

}  // namespace
}  // namespace poolkeeper::budget
