// The per-instance worst case: hand-checked formula cases, user caps coupling databases, and a
// brute-force min-cut reference on thousands of random small configurations.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

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

struct FormulaCase {
  std::string name;
  std::vector<Db> dbs;
  std::vector<User> users;
  std::optional<int> pooler_db_cap;
  std::optional<int> pooler_user_cap;
  int64_t expected;
};

class PerInstanceFormula : public ::testing::TestWithParam<FormulaCase> {};

TEST_P(PerInstanceFormula, MatchesHandArithmetic) {
  const FormulaCase& c = GetParam();
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, c.dbs);
  SetUsers(pool, c.users);
  pool.spec.pooler.max_db_connections = c.pooler_db_cap;
  pool.spec.pooler.max_user_connections = c.pooler_user_cap;
  EXPECT_EQ(MaxServerConnectionsPerInstance(pool), c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PerInstanceFormula,
    ::testing::Values(
        FormulaCase{"OnePairIsItsPoolSize", {{"a"}}, {{"u", {}}}, {}, {}, 10},
        FormulaCase{"ReservePoolAddsToEachPair", {{"a", 10, 5}}, {{"u", {}}}, {}, {}, 15},
        // 2 databases x 3 users x 10: every (database, user) pair is its own pool.
        FormulaCase{"EveryPairIsAPool", {{"a"}, {"b"}}, {{"u"}, {"v"}, {"w"}}, {}, {}, 60},
        // a: min(25, 3 x 10) + b: 3 x 10.
        FormulaCase{"DatabaseCapBindsOnlyItsDatabase",
                    {{"a", {}, {}, 25}, {"b"}},
                    {{"u"}, {"v"}, {"w"}},
                    {},
                    {},
                    55},
        FormulaCase{
            "PoolerDbCapAppliesToEachDatabase", {{"a"}, {"b"}}, {{"u"}, {"v"}, {"w"}}, 12, {}, 24},
        FormulaCase{
            "DatabaseCapOverridesPoolerCap", {{"a", {}, {}, 5}, {"b"}}, {{"u"}, {"v"}}, 12, {}, 17},
        // One user with max_user_connections 15 across 3 databases: 15, not 3 x 10.
        FormulaCase{"UserCapCountsAcrossDatabases", {{"a"}, {"b"}, {"c"}}, {{"u", 15}}, {}, {}, 15},
        FormulaCase{"PoolerUserCapAppliesToEachUser", {{"a"}, {"b"}}, {{"u"}, {"v", 3}}, {}, 7, 10},
        // A cap larger than the pools can use changes nothing.
        FormulaCase{"LooseCapDoesNotBind", {{"a", 4, 1, 500}}, {{"u"}, {"v"}}, {}, {}, 10}),
    [](const auto& info) { return info.param.name; });

// Database a (cap 20) and b (no cap), pairs of 10; user u capped at 5, v not. Per database with
// user caps applied, a could use min(20, 5 + 10) = 15 and b 5 + 10 = 15, 30 in all; but u's 5
// are shared between a and b, so the exact worst case is 5 + 10 + 10 = 25.
TEST(PerInstance, UserCapCouplesDatabasesSoALooseSumOverReserves) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"a", 10, 0, 20}, {"b", 10, 0, {}}});
  SetUsers(pool, {{"u", 5}, {"v", {}}});
  const std::vector<int64_t> demand = DemandPerDatabase(pool);
  EXPECT_EQ(demand, (std::vector<int64_t>{15, 15}));
  EXPECT_EQ(std::min<int64_t>(20, demand[0]) + demand[1], 30);  // the loose per-database sum
  EXPECT_EQ(MaxServerConnectionsPerInstance(pool), 25);
}

TEST(PerInstance, ExtraCapsBindWithTheSpecsOwnAndTheSmallerWins) {
  api::ConnectionPool pool = Pool();
  SetDatabases(pool, {{"a", 10, 0, 6}, {"b", 10, 0, {}}});
  SetUsers(pool, {{"u", {}}, {"v", {}}});
  EXPECT_EQ(MaxServerConnectionsPerInstance(pool, {std::nullopt, 3}), 6 + 3);
  EXPECT_EQ(MaxServerConnectionsPerInstance(pool, {9, std::nullopt}), 6 + 20);
  EXPECT_EQ(MaxServerConnectionsPerInstance(pool, {2, 1}), 2 + 1);
}

// ---- brute-force reference ----------------------------------------------------------------------

constexpr int64_t kInf = int64_t{1} << 40;

// Max flow = min cut. A cut puts a set S of databases and a set T of users on the source side; it
// severs source->d for d outside S, u->sink for u in T, and d->u for d in S, u outside T.
int64_t MinCutByEnumeration(const api::ConnectionPool& pool) {
  const auto& dbs = pool.spec.databases;
  const auto& users = pool.spec.users;
  int64_t best = kInf * 64;
  for (unsigned s = 0; s < (1u << dbs.size()); ++s) {
    for (unsigned t = 0; t < (1u << users.size()); ++t) {
      int64_t cut = 0;
      for (size_t d = 0; d < dbs.size(); ++d) {
        const bool in_s = (s >> d) & 1;
        if (!in_s) {
          auto cap = pool.MaxDbConnections(dbs[d]);
          cut += cap ? *cap : kInf;
          continue;
        }
        for (size_t u = 0; u < users.size(); ++u) {
          if (!((t >> u) & 1)) cut += pool.PoolSize(dbs[d]) + pool.ReservePoolSize(dbs[d]);
        }
      }
      for (size_t u = 0; u < users.size(); ++u) {
        if ((t >> u) & 1) {
          auto cap = pool.MaxUserConnections(users[u]);
          cut += cap ? *cap : kInf;
        }
      }
      best = std::min(best, cut);
    }
  }
  return best;
}

std::optional<int> MaybeCap(std::mt19937& rng, int high) {
  if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) return std::nullopt;
  return std::uniform_int_distribution<int>(1, high)(rng);
}

// A random pool of 1-4 databases and 1-4 users, with pool, reserve and caps set or unset at the
// database, user and pooler levels.
api::ConnectionPool RandomPool(std::mt19937& rng) {
  auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  api::ConnectionPool pool = Pool();
  pool.spec.pooler.default_pool_size = pick(1, 8);
  pool.spec.pooler.reserve_pool_size = pick(0, 3);
  pool.spec.pooler.max_db_connections = pick(0, 3) == 0 ? MaybeCap(rng, 20) : std::nullopt;
  pool.spec.pooler.max_user_connections = pick(0, 3) == 0 ? MaybeCap(rng, 20) : std::nullopt;
  pool.spec.databases.clear();
  for (int d = pick(1, 4); d > 0; --d) {
    api::DatabaseSpec db{.name = "db" + std::to_string(d), .dbname = "db"};
    if (pick(0, 1)) db.pool_size = pick(1, 8);
    if (pick(0, 1)) db.reserve_pool_size = pick(0, 3);
    db.max_db_connections = MaybeCap(rng, 25);
    pool.spec.databases.push_back(db);
  }
  pool.spec.users.clear();
  for (int u = pick(1, 4); u > 0; --u) {
    pool.spec.users.push_back(
        {.name = "u" + std::to_string(u), .max_user_connections = MaybeCap(rng, 25)});
  }
  return pool;
}

TEST(PerInstance, MatchesMinCutEnumerationOnRandomConfigurations) {
  std::mt19937 rng(20240601);
  for (int i = 0; i < 5000; ++i) {
    api::ConnectionPool pool = RandomPool(rng);
    ASSERT_EQ(MaxServerConnectionsPerInstance(pool), MinCutByEnumeration(pool)) << "case " << i;
  }
}

// Extra caps are the same as declaring them: checked against the reference too.
TEST(PerInstance, ExtraCapsMatchMinCutEnumerationOnRandomConfigurations) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    api::ConnectionPool pool = RandomPool(rng);
    std::vector<std::optional<int>> extra;
    api::ConnectionPool declared = pool;
    for (auto& db : declared.spec.databases) {
      std::optional<int> cap = MaybeCap(rng, 12);
      extra.push_back(cap);
      auto own = pool.MaxDbConnections(db);
      if (cap) db.max_db_connections = own ? std::min(*own, *cap) : *cap;
    }
    ASSERT_EQ(MaxServerConnectionsPerInstance(pool, extra), MinCutByEnumeration(declared))
        << "case " << i;
  }
}

}  // namespace
}  // namespace poolkeeper::budget
