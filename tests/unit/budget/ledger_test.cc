// The ledger: server arithmetic, admission, derived caps, BudgetExceeded under Enforce and Warn,
// several pools on one server, and conflicting server limits.
#include <gtest/gtest.h>

#include <algorithm>

#include "budget/planner.h"
#include "pool_builder.h"

namespace poolkeeper::budget {
namespace {

using testing::Db;
using testing::Pool;
using testing::SetDatabases;
using testing::SetUsers;

Plan MustPlan(const std::vector<api::ConnectionPool>& pools) { return PlanPools(pools); }

const Finding* FindCode(const PoolPlan& pool, const std::string& code) {
  auto it = std::ranges::find(pool.findings, code, &Finding::code);
  return it == pool.findings.end() ? nullptr : &*it;
}

TEST(Ledger, ComputesUsableFromServerLimits) {
  api::ConnectionPool pool = Pool("p", 200);
  pool.spec.server.superuser_reserved_connections = 3;
  pool.spec.server.reserved_connections = 2;
  pool.spec.server.overhead = {10, true};  // 10% of 200
  const Plan plan = MustPlan({pool});
  ASSERT_EQ(plan.servers.size(), 1u);
  const ServerPlan& server = plan.servers[0];
  EXPECT_EQ(server.server, "db:5432");
  EXPECT_EQ(server.max_connections, 200);
  EXPECT_EQ(server.reserved, 5);
  EXPECT_EQ(server.overhead, 20);
  EXPECT_EQ(server.usable, 175);
  EXPECT_EQ(server.allocated, 20);
  EXPECT_EQ(server.headroom, 155);
  EXPECT_EQ(server.verdict, Verdict::kWithinBudget);
}

TEST(Ledger, PercentOverheadRoundsUp) {
  api::ConnectionPool pool = Pool("p", 101);
  pool.spec.server.overhead = {10, true};
  EXPECT_EQ(MustPlan({pool}).servers[0].overhead, 11);
}

TEST(Ledger, AdmitsPoolThatFitsAndCapsEveryDatabase) {
  api::ConnectionPool pool = Pool();
  pool.spec.pooler.instances = 3;
  pool.spec.pooler.max_surge = 2;
  SetDatabases(pool, {{"a", 4, 1, {}}, {"b", 10, 0, 7}});
  SetUsers(pool, {{"u"}, {"v"}});
  const PoolPlan p = MustPlan({pool}).pools[0];
  EXPECT_EQ(p.verdict, Verdict::kWithinBudget);
  EXPECT_EQ(p.per_instance, 10 + 7);
  EXPECT_EQ(p.worst_case, 5 * 17);  // (3 instances + 2 surge)
  EXPECT_EQ(p.allocated, 85);
  // a has no cap: it gets what it can use alone, so pgbouncer still enforces one (0 = unlimited).
  EXPECT_EQ(p.databases, (std::vector<DatabasePlan>{{"a", 10, true}, {"b", 7, false}}));
  EXPECT_EQ(FindCode(p, "DerivedCaps"), nullptr);
}

TEST(Ledger, RejectsPoolThatOverrunsServer) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"a", 50, 0, 50}});
  const Plan plan = MustPlan({pool});
  const PoolPlan& p = plan.pools[0];
  EXPECT_EQ(p.verdict, Verdict::kBudgetExceeded);
  EXPECT_EQ(p.worst_case, 100);
  EXPECT_EQ(p.allocated, 0);  // Enforce: not rolled out, so not charged
  EXPECT_EQ(p.databases, (std::vector<DatabasePlan>{{"a", 50, false}}));
  const Finding* finding = FindCode(p, "BudgetExceeded");
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->severity, Severity::kError);
  EXPECT_EQ(finding->message,
            "(1 instance + 1 surge) x 50 per instance = 100 > 90 remaining of 90 usable on "
            "db:5432 (max_connections 100 - 0 superuser reserved - 0 reserved - 10 overhead - 0 "
            "allocated to earlier pools); every database sets maxDbConnections, so no lower cap "
            "can be derived; not rolled out: lower the pool sizes, caps or instances, or raise "
            "max_connections");
  EXPECT_EQ(plan.servers[0].verdict, Verdict::kBudgetExceeded);
  EXPECT_EQ(plan.servers[0].allocated, 0);
  EXPECT_TRUE(plan.AnyError());
}

TEST(Ledger, WarnPolicyRollsOutAndChargesTheWorstCase) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"a", 50, 0, 50}});
  pool.spec.budget_policy = api::BudgetPolicy::kWarn;
  const Plan plan = MustPlan({pool});
  const PoolPlan& p = plan.pools[0];
  EXPECT_EQ(p.verdict, Verdict::kBudgetExceeded);
  EXPECT_EQ(p.allocated, 100);
  const Finding* finding = FindCode(p, "BudgetExceeded");
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->severity, Severity::kWarning);
  EXPECT_NE(finding->message.find("rolled out anyway because budget.policy is Warn"),
            std::string::npos);
  EXPECT_EQ(plan.servers[0].allocated, 100);
  EXPECT_EQ(plan.servers[0].headroom, -10);
  EXPECT_EQ(plan.servers[0].verdict, Verdict::kBudgetExceeded);
  EXPECT_FALSE(plan.AnyError());
}

// Under Enforce an exceeded pool takes nothing, so the next one still fits; under Warn it runs
// and takes its worst case, so the next one sees what is really left.
TEST(Ledger, ExceededPoolChargesNothingUnderEnforceAndItsWorstCaseUnderWarn) {
  api::ConnectionPool big = Pool("big");
  SetDatabases(big, {{"a", 50, 0, 50}});
  api::ConnectionPool small = Pool("small");
  SetDatabases(small, {{"a", 5, 0, 5}});

  Plan enforced = MustPlan({big, small});
  EXPECT_EQ(enforced.pools[1].verdict, Verdict::kWithinBudget);
  EXPECT_EQ(enforced.servers[0].allocated, 10);

  big.spec.budget_policy = api::BudgetPolicy::kWarn;
  Plan warned = MustPlan({big, small});
  EXPECT_EQ(warned.pools[1].verdict, Verdict::kBudgetExceeded);
  EXPECT_EQ(warned.pools[1].allocated, 0);
  EXPECT_EQ(warned.servers[0].allocated, 100);
}

TEST(Ledger, RefusedPoolKeepsBeingChargedWhatItsRunningConfigurationOpens) {
  api::ConnectionPool big = Pool("big");
  SetDatabases(big, {{"a", 50, 0, 50}});
  api::ConnectionPool small = Pool("small");
  SetDatabases(small, {{"a", 5, 0, 5}});

  // big's new spec is refused, but its previous configuration (30 connections) still runs: the
  // pools after it must not be handed those connections.
  auto plan = PlanPools({big, small}, {{"db:5432", {{"ns/big", 30}}}});
  EXPECT_EQ(plan.pools[0].verdict, Verdict::kBudgetExceeded);
  EXPECT_EQ(plan.pools[0].allocated, 30);
  EXPECT_EQ(plan.servers[0].allocated, 40);
  EXPECT_EQ(plan.servers[0].headroom, plan.servers[0].usable - 40);
}

TEST(Ledger, AdmittedPoolIsChargedAtLeastWhatItsRunningPodsOpen) {
  api::ConnectionPool shrinking = Pool("shrinking");
  SetDatabases(shrinking, {{"a", 5, 0, 5}});  // 10 planned, 40 still running
  api::ConnectionPool next = Pool("next");
  SetDatabases(next, {{"a", 5, 0, 5}});
  auto plan = PlanPools({shrinking, next}, {{"db:5432", {{"ns/shrinking", 40}}}});
  EXPECT_EQ(plan.pools[0].verdict, Verdict::kWithinBudget);
  EXPECT_EQ(plan.pools[0].worst_case, 10);
  EXPECT_EQ(plan.pools[0].allocated, 40);
  EXPECT_EQ(plan.servers[0].allocated, 50);
}

// Two uncapped databases, 3 users x 10 each: 60 per instance, 120 for 2 pods > 90. Each
// instance gets floor(90 / 2) = 45: level 22 for both (44), then one more step for a (45).
TEST(Ledger, DerivesCapsByWaterFillingWhatRemains) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"a"}, {"b"}});
  SetUsers(pool, {{"u"}, {"v"}, {"w"}});
  const Plan plan = MustPlan({pool});
  const PoolPlan& p = plan.pools[0];
  EXPECT_EQ(p.verdict, Verdict::kWithinBudget);
  EXPECT_EQ(p.databases, (std::vector<DatabasePlan>{{"a", 23, true}, {"b", 22, true}}));
  EXPECT_EQ(p.per_instance, 45);
  EXPECT_EQ(p.allocated, 90);
  EXPECT_EQ(plan.servers[0].headroom, 0);
  const Finding* finding = FindCode(p, "DerivedCaps");
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->severity, Severity::kInfo);
  EXPECT_EQ(finding->message,
            "(1 instance + 1 surge) x 60 per instance = 120 > 90 remaining on db:5432, so "
            "maxDbConnections per instance was derived to fit 90 / 2 = 45 per instance: a 23 "
            "(could use 30), b 22 (could use 30); worst case (1 instance + 1 surge) x 45 = 90");
}

// A database that cannot use the level keeps what it can use; the others share the rest.
TEST(Ledger, DerivedCapsNeverExceedWhatADatabaseCanUse) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"small", 2, 0, {}}, {"big", 30, 0, {}}, {"fixed", 5, 0, 5}});
  const PoolPlan p = MustPlan({pool}).pools[0];
  // 2 pods x 37 = 74 fits: every database without a cap gets what it can use.
  EXPECT_EQ(p.databases, (std::vector<DatabasePlan>{
                             {"small", 2, true}, {"big", 30, true}, {"fixed", 5, false}}));
  EXPECT_EQ(p.per_instance, 37);  // everything fits: small 2 + big 30 + fixed 5

  pool.spec.pooler.instances = 2;  // 3 pods: floor(90 / 3) = 30 per instance
  const PoolPlan q = MustPlan({pool}).pools[0];
  EXPECT_EQ(q.databases, (std::vector<DatabasePlan>{
                             {"small", 2, true}, {"big", 23, true}, {"fixed", 5, false}}));
  EXPECT_EQ(q.per_instance, 30);
  EXPECT_EQ(q.allocated, 90);
}

TEST(Ledger, ExceededWhenEvenOneConnectionPerDatabaseDoesNotFit) {
  api::ConnectionPool pool = Pool("p", 14);  // usable 4
  SetDatabases(pool, {{"a"}, {"b"}, {"c"}});
  const PoolPlan p = MustPlan({pool}).pools[0];
  EXPECT_EQ(p.verdict, Verdict::kBudgetExceeded);
  // The caps it would run with: what each database can use.
  EXPECT_EQ(p.databases,
            (std::vector<DatabasePlan>{{"a", 10, true}, {"b", 10, true}, {"c", 10, true}}));
  const Finding* finding = FindCode(p, "BudgetExceeded");
  ASSERT_NE(finding, nullptr);
  EXPECT_NE(finding->message.find("even with 1 connection per instance for each database without "
                                  "maxDbConnections it needs 2 x 3 = 6"),
            std::string::npos)
      << finding->message;
}

TEST(Ledger, LaterPoolGetsOnlyWhatRemains) {
  api::ConnectionPool first = Pool("first");  // 20
  api::ConnectionPool second = Pool("second");
  SetDatabases(second, {{"a"}, {"b"}, {"c"}, {"d"}});  // wants 2 x 40 = 80 > 70
  const Plan plan = MustPlan({first, second});
  EXPECT_EQ(plan.pools[0].allocated, 20);
  EXPECT_EQ(plan.pools[1].verdict, Verdict::kWithinBudget);
  EXPECT_EQ(plan.pools[1].per_instance, 35);  // floor(70 / 2)
  EXPECT_EQ(plan.pools[1].allocated, 70);
  EXPECT_EQ(plan.servers[0].allocated, 90);
  EXPECT_EQ(plan.servers[0].headroom, 0);
}

TEST(Ledger, ServerWithNothingUsableExceedsEveryPoolThatRunsPods) {
  api::ConnectionPool pool = Pool("p", 10);  // 10 - 10 overhead = 0
  api::ConnectionPool idle = Pool("idle", 10);
  idle.spec.pooler.instances = 0;  // runs nothing, so it fits anywhere
  const Plan plan = MustPlan({pool, idle});
  EXPECT_EQ(plan.servers[0].usable, 0);
  EXPECT_EQ(plan.pools[0].verdict, Verdict::kBudgetExceeded);
  EXPECT_EQ(plan.pools[1].verdict, Verdict::kWithinBudget);
  EXPECT_EQ(plan.pools[1].allocated, 0);
  EXPECT_EQ(plan.servers[0].verdict, Verdict::kBudgetExceeded);
}

// Issue 9, case 6: a Deployment with 0 replicas never surges, so it holds nothing, and charging
// it a surge pod refused the next pool for nothing.
TEST(Ledger, ZeroInstancesChargeNothing) {
  api::ConnectionPool idle = Pool("idle");
  idle.spec.pooler.instances = 0;
  api::ConnectionPool next = Pool("next");
  SetDatabases(next, {{"a", 45, 0, 45}});  // (1 + 1) x 45 = 90: all of it
  const Plan plan = MustPlan({idle, next});
  EXPECT_EQ(plan.pools[0].worst_case, 0);
  EXPECT_EQ(plan.pools[0].allocated, 0);
  EXPECT_EQ(plan.pools[1].verdict, Verdict::kWithinBudget);
  EXPECT_EQ(plan.servers[0].headroom, 0);
}

// Issue 9, case 2: the older pool grows from 40 to 80 while the newer pool's pods hold 50 of 90
// usable. Creation order decides between new demands only: the growth is refused, the newer pool
// keeps what it runs, and nothing is planned beyond usable.
TEST(Ledger, OlderPoolCannotGrowIntoWhatNewerPoolsPodsHold) {
  api::ConnectionPool older = Pool("older");
  SetDatabases(older, {{"a", 40, 0, 40}});
  older.spec.pooler.max_surge = 0;
  api::ConnectionPool newer = Pool("newer");
  SetDatabases(newer, {{"a", 50, 0, 50}});
  newer.spec.pooler.max_surge = 0;
  Holdings holdings = {{"db:5432", {{"ns/older", 40}, {"ns/newer", 50}}}};
  EXPECT_EQ(PlanPools({older, newer}, holdings).pools[0].verdict, Verdict::kWithinBudget);

  SetDatabases(older, {{"a", 80, 0, 80}});
  const Plan plan = PlanPools({older, newer}, holdings);
  EXPECT_EQ(plan.pools[0].verdict, Verdict::kBudgetExceeded);
  EXPECT_NE(plan.pools[0].findings[0].message.find("50 held by other pools' pods"),
            std::string::npos)
      << plan.pools[0].findings[0].message;
  EXPECT_EQ(plan.pools[0].allocated, 40) << "what its pods still run";
  EXPECT_EQ(plan.pools[1].verdict, Verdict::kWithinBudget);
  EXPECT_EQ(plan.servers[0].allocated, 90);
}

// Issue 9, case 5: pods of a pool being deleted, of an invalid pool, of a pool that moved to
// another server or left by `delete --cascade=orphan` are not planned, but hold what they hold.
TEST(Ledger, PodsOfPoolsNotPlannedAreHeldOnTheirServer) {
  api::ConnectionPool pool = Pool("pool");
  SetDatabases(pool, {{"a", 30, 0, 30}});  // (1 + 1) x 30 = 60
  Holdings holdings = {{"db:5432", {{"ns/deleted", 20}, {"other/orphan", 15}}},
                       {"elsewhere:5432", {{"ns/pool", 99}}}};
  const Plan plan = PlanPools({pool}, holdings);
  EXPECT_EQ(plan.servers[0].held_elsewhere, 35);
  EXPECT_EQ(plan.pools[0].verdict, Verdict::kBudgetExceeded) << "60 > 90 - 35";
  EXPECT_EQ(plan.pools[0].allocated, 0) << "what it holds on another server is not charged here";
  EXPECT_EQ(plan.servers[0].allocated, 35);

  SetDatabases(pool, {{"a", 25, 0, 25}});  // 50 fits in 55
  const Plan fits = PlanPools({pool}, holdings);
  EXPECT_EQ(fits.pools[0].verdict, Verdict::kWithinBudget);
  EXPECT_EQ(fits.servers[0].headroom, 5);
}

TEST(Ledger, GroupsPoolsByServerInOrderOfFirstAppearance) {
  api::ConnectionPool a = Pool("a");
  a.spec.server.host = "Other";
  api::ConnectionPool b = Pool("b");
  api::ConnectionPool c = Pool("c");
  c.spec.server.host = "other";  // host names are case-insensitive
  api::ConnectionPool d = Pool("d");
  d.spec.server.port = 5433;
  const Plan plan = MustPlan({a, b, c, d});
  ASSERT_EQ(plan.servers.size(), 3u);
  EXPECT_EQ(plan.servers[0].server, "other:5432");
  EXPECT_EQ(plan.servers[0].allocated, 40);
  EXPECT_EQ(plan.servers[1].server, "db:5432");
  EXPECT_EQ(plan.servers[2].server, "db:5433");
  std::vector<std::string> names;
  for (const auto& p : plan.pools) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d"}));
}

struct ConflictCase {
  std::string name;
  void (*change)(api::ServerSpec&);
  std::string message;  // what the later pool is told
};

class ConflictingServerLimits : public ::testing::TestWithParam<ConflictCase> {};

TEST_P(ConflictingServerLimits, RefuseOnlyTheLaterPoolNamingItsField) {
  const ConflictCase& c = GetParam();
  api::ConnectionPool other = Pool("other");
  api::ConnectionPool unrelated = Pool("unrelated");
  unrelated.spec.server.host = "elsewhere";
  api::ConnectionPool later = Pool("later");
  c.change(later.spec.server);
  const Plan plan = PlanPools({other, unrelated, later}, {{"db:5432", {{"ns/later", 7}}}});
  ASSERT_EQ(plan.pools.size(), 3u);
  EXPECT_FALSE(plan.pools[0].refused);
  EXPECT_FALSE(plan.pools[1].refused);
  EXPECT_EQ(plan.pools[0].verdict, Verdict::kWithinBudget);
  const PoolPlan& refused = plan.pools[2];
  EXPECT_TRUE(refused.refused);
  ASSERT_EQ(refused.findings.size(), 1u);
  EXPECT_EQ(refused.findings[0].code, "ServerConflict");
  EXPECT_EQ(refused.findings[0].severity, Severity::kError);
  EXPECT_TRUE(refused.findings[0].message.starts_with(c.message)) << refused.findings[0].message;
  // Not rolled out, but what its pods hold stays charged.
  EXPECT_EQ(refused.allocated, 7);
  EXPECT_EQ(plan.servers[0].allocated, plan.pools[0].allocated + 7);
  EXPECT_TRUE(plan.AnyError());
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ConflictingServerLimits,
    ::testing::Values(
        ConflictCase{"MaxConnections", [](api::ServerSpec& s) { s.max_connections = 200; },
                     "spec.server.maxConnections: 200 conflicts with 100 declared by ns/other for "
                     "db:5432"},
        ConflictCase{"SuperuserReserved",
                     [](api::ServerSpec& s) { s.superuser_reserved_connections = 3; },
                     "spec.server.superuserReservedConnections: 3 conflicts with 0 declared by "
                     "ns/other for db:5432"},
        ConflictCase{"Reserved", [](api::ServerSpec& s) { s.reserved_connections = 4; },
                     "spec.server.reservedConnections: 4 conflicts with 0 declared by ns/other "
                     "for db:5432"},
        ConflictCase{"Overhead",
                     [](api::ServerSpec& s) {
                       s.overhead = {10, true};
                     },
                     "spec.server.overhead: 10% conflicts with 10 declared by ns/other for "
                     "db:5432"}),
    [](const auto& info) { return info.param.name; });

TEST(Ledger, NamesEveryConflictingFieldOfAPool) {
  api::ConnectionPool first = Pool("first");
  api::ConnectionPool second = Pool("second");
  second.spec.server.max_connections = 50;
  second.spec.server.reserved_connections = 1;
  api::ConnectionPool third = Pool("third");
  const Plan plan = PlanPools({first, second, third});
  ASSERT_TRUE(plan.pools[1].refused);
  const std::string& message = plan.pools[1].findings[0].message;
  EXPECT_NE(message.find("spec.server.maxConnections: 50"), std::string::npos) << message;
  EXPECT_NE(message.find("spec.server.reservedConnections: 1"), std::string::npos) << message;
  EXPECT_FALSE(plan.pools[2].refused);  // agrees with the first declaration
}

TEST(Ledger, ServerNamedWithATrailingDotOrInCapitalsIsOneBudget) {
  api::ConnectionPool a = Pool("a");
  api::ConnectionPool b = Pool("b");
  b.spec.server.host = "DB.";
  const Plan plan = PlanPools({a, b});
  ASSERT_EQ(plan.servers.size(), 1u);
  EXPECT_EQ(plan.servers[0].allocated, plan.pools[0].allocated + plan.pools[1].allocated);
}

}  // namespace
}  // namespace poolkeeper::budget
