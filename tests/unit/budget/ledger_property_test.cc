// Properties of the ledger over random sequences of pools (fixed seeds): earlier pools never
// change, a pool depends on the ones before it only through what they took, derived caps stay
// within [1, demand], fit, and leave no room for another level, and Enforce keeps the invariant.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "budget/planner.h"
#include "budget/sizing.h"
#include "pool_builder.h"

namespace poolkeeper::budget {
namespace {

using testing::Pool;

class RandomPools {
 public:
  explicit RandomPools(unsigned seed) : rng_(seed) {
    // Each server's limits are drawn once: pools naming the same server must agree.
    for (int port : {5432, 5433}) {
      api::ServerSpec server;
      server.host = "db";
      server.port = port;
      server.max_connections = Pick(5, 160);
      server.superuser_reserved_connections = Pick(0, 3);
      server.reserved_connections = Pick(0, 2);
      server.overhead = {Pick(0, 15), false};
      servers_.push_back(server);
    }
  }

  int Pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }

  std::optional<int> MaybeCap(int high) {
    return Pick(0, 2) == 0 ? std::optional<int>(Pick(1, high)) : std::nullopt;
  }

  api::ConnectionPool Next(bool allow_warn = true) {
    api::ConnectionPool pool = Pool("p" + std::to_string(count_++));
    pool.spec.server = servers_[Pick(0, 1)];
    pool.spec.pooler.instances = Pick(0, 3);
    pool.spec.pooler.max_surge = Pick(0, 2);
    pool.spec.pooler.default_pool_size = Pick(1, 8);
    pool.spec.pooler.reserve_pool_size = Pick(0, 2);
    pool.spec.budget_policy =
        allow_warn && Pick(0, 3) == 0 ? api::BudgetPolicy::kWarn : api::BudgetPolicy::kEnforce;
    pool.spec.databases.clear();
    for (int d = Pick(1, 4); d > 0; --d) {
      api::DatabaseSpec db{.name = "db" + std::to_string(d), .dbname = "db"};
      if (Pick(0, 1)) db.pool_size = Pick(1, 8);
      db.max_db_connections = MaybeCap(20);
      pool.spec.databases.push_back(db);
    }
    pool.spec.users.clear();
    for (int u = Pick(1, 4); u > 0; --u) {
      pool.spec.users.push_back(
          {.name = "u" + std::to_string(u), .max_user_connections = MaybeCap(20)});
    }
    return pool;
  }

  std::vector<api::ConnectionPool> Sequence(int length, bool allow_warn = true) {
    std::vector<api::ConnectionPool> pools;
    for (int i = 0; i < length; ++i) pools.push_back(Next(allow_warn));
    return pools;
  }

 private:
  std::mt19937 rng_;
  std::vector<api::ServerSpec> servers_;
  int count_ = 0;
};

Plan MustPlan(const std::vector<api::ConnectionPool>& pools) { return PlanPools(pools); }

std::vector<std::optional<int>> DerivedCaps(const PoolPlan& plan) {
  std::vector<std::optional<int>> caps;
  for (const auto& db : plan.databases) {
    caps.push_back(db.derived ? std::optional<int>(db.max_db_connections) : std::nullopt);
  }
  return caps;
}

TEST(LedgerProperty, AppendingAPoolNeverChangesWhatEarlierPoolsWereGiven) {
  RandomPools random(1);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<api::ConnectionPool> pools = random.Sequence(random.Pick(1, 6));
    const Plan full = MustPlan(pools);
    for (size_t k = 1; k < pools.size(); ++k) {
      const Plan prefix = MustPlan({pools.begin(), pools.begin() + k});
      for (size_t i = 0; i < k; ++i) {
        ASSERT_EQ(prefix.pools[i], full.pools[i]) << "trial " << trial << " pool " << i;
      }
    }
  }
}

// The later pool's sizing must be the one it gets alone on a server whose usable connections
// are reduced by what the earlier pools took, whatever they were and in whatever order.
TEST(LedgerProperty, LaterPoolDependsOnlyOnWhatEarlierPoolsTook) {
  RandomPools random(2);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<api::ConnectionPool> pools = random.Sequence(random.Pick(2, 5));
    api::ConnectionPool& last = pools.back();
    const Plan plan = MustPlan(pools);
    int64_t earlier = 0;
    for (size_t i = 0; i + 1 < pools.size(); ++i) {
      if (pools[i].spec.server.Key() == last.spec.server.Key()) earlier += plan.pools[i].allocated;
    }
    std::vector<api::ConnectionPool> reversed(pools.rbegin() + 1, pools.rend());
    reversed.push_back(last);
    const Plan other_order = MustPlan(reversed);

    api::ConnectionPool alone = last;
    alone.spec.server.overhead.value += earlier;
    const PoolPlan& a = plan.pools.back();
    const Plan alone_plan = MustPlan({alone});
    const PoolPlan& b = alone_plan.pools.back();
    if (alone.spec.server.max_connections - alone.spec.server.superuser_reserved_connections -
            alone.spec.server.reserved_connections - alone.spec.server.overhead.value <=
        0) {
      continue;  // "nothing usable" is a property of the server, not of what remains
    }
    EXPECT_EQ(a.per_instance, b.per_instance) << "trial " << trial;
    EXPECT_EQ(a.allocated, b.allocated) << "trial " << trial;
    EXPECT_EQ(a.verdict, b.verdict) << "trial " << trial;
    EXPECT_EQ(a.databases, b.databases) << "trial " << trial;

    int64_t earlier_reversed = 0;
    for (size_t i = 0; i + 1 < reversed.size(); ++i) {
      if (reversed[i].spec.server.Key() == last.spec.server.Key()) {
        earlier_reversed += other_order.pools[i].allocated;
      }
    }
    if (earlier_reversed == earlier) {
      EXPECT_EQ(other_order.pools.back(), a) << "trial " << trial;
    }
  }
}

TEST(LedgerProperty, DerivedCapsAreWithinOneAndDemandAndSizesAreConsistent) {
  RandomPools random(3);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<api::ConnectionPool> pools = random.Sequence(random.Pick(1, 5));
    const Plan plan = MustPlan(pools);
    std::map<std::string, int64_t> taken;
    for (size_t i = 0; i < pools.size(); ++i) {
      const api::ConnectionPool& pool = pools[i];
      const PoolPlan& p = plan.pools[i];
      const std::vector<int64_t> demand = DemandPerDatabase(pool);
      const int64_t pods = PodsCharged(pool.spec.pooler);
      for (size_t d = 0; d < p.databases.size(); ++d) {
        EXPECT_EQ(p.databases[d].derived, !pool.MaxDbConnections(pool.spec.databases[d]));
        EXPECT_GE(p.databases[d].max_db_connections, 1);  // 0 would mean unlimited
        if (p.databases[d].derived) {
          EXPECT_LE(p.databases[d].max_db_connections, demand[d]);
        }
      }
      EXPECT_EQ(p.per_instance, MaxServerConnectionsPerInstance(pool, DerivedCaps(p)));
      EXPECT_EQ(p.worst_case, pods * p.per_instance);

      const ServerPlan& server = *std::ranges::find(plan.servers, p.server, &ServerPlan::server);
      const int64_t remaining = server.usable - taken[p.server];
      if (p.verdict == Verdict::kWithinBudget) {
        // A pool with no instances charges nothing, and fits even behind an overrun under Warn.
        if (p.worst_case > 0) {
          EXPECT_LE(p.worst_case, remaining) << "trial " << trial;
        }
        EXPECT_EQ(p.allocated, p.worst_case);
      } else {
        // Exceeded only when even 1 connection per uncapped database does not fit.
        std::vector<std::optional<int>> minimum;
        for (const auto& db : p.databases) minimum.push_back(db.derived ? 1 : std::optional<int>());
        const bool any_free = std::ranges::any_of(p.databases, &DatabasePlan::derived);
        const int64_t least = any_free ? MaxServerConnectionsPerInstance(pool, minimum)
                                       : MaxServerConnectionsPerInstance(pool);
        EXPECT_TRUE(server.usable <= 0 || pods * least > remaining) << "trial " << trial;
      }
      taken[p.server] += p.allocated;
    }
  }
}

// Water-filling hands out everything it can: one more connection for every derived cap that is
// below its demand would not fit the per-instance budget.
TEST(LedgerProperty, DerivedCapsLeaveNoRoomForAnotherLevel) {
  RandomPools random(4);
  int derived_pools = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    api::ConnectionPool pool = random.Next();
    const PoolPlan p = MustPlan({pool}).pools[0];
    if (p.verdict != Verdict::kWithinBudget ||
        std::ranges::none_of(p.findings,
                             [](const Finding& f) { return f.code == "DerivedCaps"; })) {
      continue;
    }
    ++derived_pools;
    const std::vector<int64_t> demand = DemandPerDatabase(pool);
    std::vector<std::optional<int>> raised = DerivedCaps(p);
    for (size_t d = 0; d < raised.size(); ++d) {
      if (raised[d]) raised[d] = std::min<int64_t>(*raised[d] + 1, demand[d]);
    }
    const int64_t pods = int64_t{pool.spec.pooler.instances} + pool.spec.pooler.max_surge;
    const int64_t usable = MustPlan({pool}).servers[0].usable;
    EXPECT_GT(MaxServerConnectionsPerInstance(pool, raised), usable / pods) << "trial " << trial;
  }
  EXPECT_GT(derived_pools, 50);  // the generator does exercise derivation
}

TEST(LedgerProperty, EnforceKeepsEveryServerWithinUsable) {
  RandomPools random(5);
  for (int trial = 0; trial < 500; ++trial) {
    const Plan plan = MustPlan(random.Sequence(random.Pick(1, 8), /*allow_warn=*/false));
    for (const ServerPlan& server : plan.servers) {
      if (server.usable > 0) {
        EXPECT_LE(server.allocated, server.usable) << "trial " << trial;
      }
      EXPECT_EQ(server.headroom, server.usable - server.allocated);
    }
  }
}

}  // namespace
}  // namespace poolkeeper::budget

namespace poolkeeper::budget {
namespace {

// A live server over time: pools change their specs, are deleted (their pods drain for a step) and
// come back, in random order. What exists (the holdings) is planned against at every step; an
// admitted pool then holds its new worst case, a refused one keeps what it held. Under Enforce the
// server is never planned beyond usable, whatever order the changes come in.
TEST(LedgerProperty, WhatExistsNeverExceedsUsableAcrossRandomChanges) {
  RandomPools random(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<api::ConnectionPool> live = random.Sequence(random.Pick(1, 4), false);
    for (auto& pool : live) pool.spec.server = live[0].spec.server;  // one server
    const std::string server = live[0].spec.server.Key();
    const int64_t usable = MustPlan({live[0]}).servers[0].usable;
    if (usable <= 0) continue;
    std::map<std::string, int64_t> held;  // what exists, by pool
    std::map<std::string, int64_t> draining;
    for (int step = 0; step < 30; ++step) {
      Holdings holdings;
      for (const auto& [key, figure] : held) holdings[server][key] += figure;
      for (const auto& [key, figure] : draining) holdings[server][key] += figure;
      draining.clear();  // gone by the next step
      auto with_holdings = PlanPools(live, holdings);
      std::map<std::string, int64_t> next;
      for (const PoolPlan& p : with_holdings.pools) {
        const std::string key = p.namespace_ + "/" + p.name;
        next[key] =
            p.verdict == Verdict::kWithinBudget ? std::max(p.worst_case, held[key]) : held[key];
        EXPECT_GE(p.allocated, next[key]) << "a pool is charged at least what it holds";
      }
      int64_t total = 0;
      for (const auto& [key, figure] : next) total += figure;
      for (const auto& [key, figure] : holdings[server]) {
        if (!next.contains(key)) total += figure;  // pods of a deleted pool, still draining
      }
      EXPECT_LE(total, usable) << "trial " << trial << " step " << step;
      EXPECT_LE(with_holdings.servers[0].allocated, usable) << "trial " << trial;
      held = next;
      // The next change: a spec change, a deletion (its pods drain), or a new pool.
      const int action = random.Pick(0, 3);
      const size_t victim = static_cast<size_t>(random.Pick(0, static_cast<int>(live.size()) - 1));
      api::ConnectionPool fresh = random.Next(false);
      fresh.spec.server = live[0].spec.server;
      if (action <= 1) {
        fresh.metadata = live[victim].metadata;
        live[victim] = fresh;
      } else if (action == 2 && live.size() > 1) {
        const std::string key = live[victim].metadata.namespace_ + "/" + live[victim].metadata.name;
        draining[key] = held[key];
        held.erase(key);
        live.erase(live.begin() + static_cast<long>(victim));
      } else {
        live.push_back(fresh);
      }
    }
  }
}

}  // namespace
}  // namespace poolkeeper::budget
