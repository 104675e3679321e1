// Advisory findings: client capacity, session-mode queueing, min pools above caps, no overhead,
// zero instances. Each is raised exactly when its condition holds, with the arithmetic shown.
#include <gtest/gtest.h>

#include <algorithm>

#include "budget/planner.h"
#include "pool_builder.h"

namespace poolkeeper::budget {
namespace {

using testing::Pool;
using testing::SetDatabases;
using testing::SetUsers;

PoolPlan PlanOne(const api::ConnectionPool& pool) {
  auto plan = PlanPools({pool});
  return plan.pools[0];
}

std::vector<std::string> Codes(const PoolPlan& plan) {
  std::vector<std::string> codes;
  for (const auto& finding : plan.findings) codes.push_back(finding.code);
  return codes;
}

// A copy, so that it may be called on a temporary plan.
std::optional<Finding> FindCode(const PoolPlan& pool, const std::string& code) {
  auto it = std::ranges::find(pool.findings, code, &Finding::code);
  return it == pool.findings.end() ? std::nullopt : std::optional<Finding>(*it);
}

TEST(Findings, QuietForAPoolThatFitsInTransactionMode) {
  EXPECT_TRUE(PlanOne(Pool()).findings.empty());
}

TEST(ClientCapacity, FlagsClientsThatOpenMoreThanMaxClientConnAllows) {
  api::ConnectionPool pool = Pool();
  pool.spec.pooler.max_client_conn = 100;
  pool.spec.clients = {{.name = "web", .instances = 4, .pool_size = 20, .max_overflow = 10}};
  const PoolPlan plan = PlanOne(pool);
  EXPECT_EQ(plan.client_demand, 120);
  EXPECT_EQ(plan.client_capacity, 100);
  std::optional<Finding> finding = FindCode(plan, "ClientCapacityExceeded");
  ASSERT_NE(finding, std::nullopt);
  EXPECT_EQ(finding->severity, Severity::kError);
  EXPECT_EQ(finding->message,
            "clients open up to 4 x (20 + 10) = 120 > 1 instance x 100 max_client_conn = 100: "
            "pgbouncer refuses the connections beyond max_client_conn");
}

TEST(ClientCapacity, SumsEveryClientAndCountsEveryInstance) {
  api::ConnectionPool pool = Pool();
  pool.spec.pooler.instances = 2;
  pool.spec.pooler.max_client_conn = 60;
  pool.spec.clients = {{.name = "web", .instances = 4, .pool_size = 20, .max_overflow = 10},
                       {.name = "jobs", .instances = 1, .pool_size = 5, .max_overflow = 0}};
  PoolPlan plan = PlanOne(pool);
  EXPECT_EQ(plan.client_demand, 125);
  EXPECT_EQ(plan.client_capacity, 120);
  std::optional<Finding> finding = FindCode(plan, "ClientCapacityExceeded");
  ASSERT_NE(finding, std::nullopt);
  EXPECT_EQ(finding->message,
            "clients open up to 4 x (20 + 10) + 1 x (5 + 0) = 125 > 2 instances x 60 "
            "max_client_conn = 120: pgbouncer refuses the connections beyond max_client_conn");

  pool.spec.pooler.max_client_conn = 63;  // 126 >= 125: exactly enough is enough
  EXPECT_EQ(FindCode(PlanOne(pool), "ClientCapacityExceeded"), std::nullopt);
}

TEST(ClientCapacity, SilentWithoutDeclaredClients) {
  api::ConnectionPool pool = Pool();
  pool.spec.pooler.max_client_conn = 1;
  const PoolPlan plan = PlanOne(pool);
  EXPECT_EQ(plan.client_demand, 0);
  EXPECT_EQ(FindCode(plan, "ClientCapacityExceeded"), std::nullopt);
}

struct SessionCase {
  std::string name;
  std::optional<api::PoolMode> pooler, db, user;
  int max_client_conn;
  std::vector<api::ClientSpec> clients;
  bool expected;
};

class SessionModeQueueing : public ::testing::TestWithParam<SessionCase> {};

// Pool(): 1 instance, one pair of 10 connections, so 10 server connections per instance.
TEST_P(SessionModeQueueing, WarnsOnlyWhenASessionPoolMakesClientsWait) {
  const SessionCase& c = GetParam();
  api::ConnectionPool pool = Pool();
  if (c.pooler) pool.spec.pooler.pool_mode = *c.pooler;
  pool.spec.databases[0].pool_mode = c.db;
  pool.spec.users[0].pool_mode = c.user;
  pool.spec.pooler.max_client_conn = c.max_client_conn;
  pool.spec.clients = c.clients;
  std::optional<Finding> finding = FindCode(PlanOne(pool), "SessionModeQueueing");
  EXPECT_EQ(finding.has_value(), c.expected);
  if (finding) {
    EXPECT_EQ(finding->severity, Severity::kWarning);
    EXPECT_NE(finding->message.find("each client holds a server connection for its whole session"),
              std::string::npos);
  }
}

constexpr auto kSession = api::PoolMode::kSession;
constexpr auto kTransaction = api::PoolMode::kTransaction;

INSTANTIATE_TEST_SUITE_P(
    Cases, SessionModeQueueing,
    ::testing::Values(
        SessionCase{"PoolerSessionMoreClientsThanServers", kSession, {}, {}, 1000, {}, true},
        SessionCase{"PoolerSessionFewClients", kSession, {}, {}, 10, {}, false},
        SessionCase{"TransactionModeNeverWarns", kTransaction, {}, {}, 1000, {}, false},
        SessionCase{"DatabaseSessionOverridesPooler", kTransaction, kSession, {}, 1000, {}, true},
        // pgbouncer takes the user's mode over the database's.
        SessionCase{"UserModeOverridesDatabase", kSession, kSession, kTransaction, 1000, {}, false},
        SessionCase{"UserSession", kTransaction, {}, kSession, 1000, {}, true},
        // Declared clients replace max_client_conn as the measure: 2 x (4 + 1) = 10 <= 10.
        SessionCase{"DeclaredClientsThatFit", kSession, {}, {}, 1000, {{"a", 2, 4, 1}}, false},
        SessionCase{"DeclaredClientsThatWait", kSession, {}, {}, 1000, {{"a", 2, 5, 1}}, true}),
    [](const auto& info) { return info.param.name; });

TEST(SessionModeQueueing, MessageShowsTheNumbers) {
  api::ConnectionPool pool = Pool();
  pool.spec.pooler.pool_mode = kSession;
  pool.spec.clients = {{.name = "web", .instances = 3, .pool_size = 5, .max_overflow = 0}};
  std::optional<Finding> finding = FindCode(PlanOne(pool), "SessionModeQueueing");
  ASSERT_NE(finding, std::nullopt);
  EXPECT_EQ(finding->message,
            "pool mode is session (database app, user app): each client holds a server "
            "connection for its whole session, and clients open up to 3 x (5 + 0) = 15 but "
            "there are only 1 instance x 10 = 10 server connections, so the other clients wait "
            "in pgbouncer's queue until a session ends");
}

TEST(MinPoolExceedsCap, WarnsWhenMinimumPoolsCannotAllBeHeld) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"a", 10, 0, 10}, {"b", 10, 0, 15}});
  SetUsers(pool, {{"u"}, {"v"}, {"w"}});
  pool.spec.pooler.min_pool_size = 4;  // 4 x 3 = 12: above a's 10, within b's 15
  const PoolPlan plan = PlanOne(pool);
  EXPECT_EQ(std::ranges::count(Codes(plan), "MinPoolExceedsCap"), 1);
  std::optional<Finding> finding = FindCode(plan, "MinPoolExceedsCap");
  ASSERT_NE(finding, std::nullopt);
  EXPECT_EQ(finding->severity, Severity::kWarning);
  EXPECT_EQ(
      finding->message.rfind("database a: minPoolSize 4 x 3 users = 12 > maxDbConnections 10", 0),
      0u)
      << finding->message;

  pool.spec.databases[0].min_pool_size = 3;  // the database's own minimum wins: 9 <= 10
  EXPECT_EQ(FindCode(PlanOne(pool), "MinPoolExceedsCap"), std::nullopt);
}

TEST(MinPoolExceedsCap, ChecksDerivedCapsToo) {
  api::ConnectionPool pool = Pool("p", 30);  // usable 20, 2 pods: 10 per instance
  SetDatabases(pool, {{"a", 10, 0, {}}});
  SetUsers(pool, {{"u"}, {"v"}});
  pool.spec.pooler.min_pool_size = 6;
  std::optional<Finding> finding = FindCode(PlanOne(pool), "MinPoolExceedsCap");
  ASSERT_NE(finding, std::nullopt);
  EXPECT_NE(finding->message.find("> maxDbConnections 10 (derived)"), std::string::npos)
      << finding->message;
}

TEST(NoOverheadReserved, WarnsWhenNothingIsKeptOutsideThePools) {
  api::ConnectionPool pool = Pool();
  pool.spec.server.overhead = {0, false};
  std::optional<Finding> finding = FindCode(PlanOne(pool), "NoOverheadReserved");
  ASSERT_NE(finding, std::nullopt);
  EXPECT_EQ(finding->severity, Severity::kWarning);
  EXPECT_EQ(finding->message,
            "overhead of db:5432 is 0: migrations, monitoring, cron jobs and admin sessions "
            "compete with the pools for the same 100 usable connections; set "
            "spec.server.overhead");

  pool.spec.server.overhead = {1, true};  // 1% of 100 rounds to 1
  EXPECT_EQ(FindCode(PlanOne(pool), "NoOverheadReserved"), std::nullopt);
}

TEST(InstancesZero, IsInfoAndNothingIsCharged) {
  api::ConnectionPool pool = Pool();
  pool.spec.pooler.instances = 0;
  const PoolPlan plan = PlanOne(pool);
  EXPECT_EQ(plan.worst_case, 0);  // a Deployment with 0 replicas never surges
  EXPECT_EQ(plan.allocated, 0);
  EXPECT_EQ(plan.client_capacity, 0);
  std::optional<Finding> finding = FindCode(plan, "InstancesZero");
  ASSERT_NE(finding, std::nullopt);
  EXPECT_EQ(finding->severity, Severity::kInfo);
}

TEST(Findings, BudgetFindingsComeFirst) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"a", 60, 0, 60}});  // 2 x 60 > 100
  pool.spec.server.overhead = {0, false};
  pool.spec.pooler.pool_mode = kSession;
  EXPECT_EQ(Codes(PlanOne(pool)), (std::vector<std::string>{"BudgetExceeded", "SessionModeQueueing",
                                                            "NoOverheadReserved"}));
}

}  // namespace
}  // namespace poolkeeper::budget
