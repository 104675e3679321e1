#include "controller/pool_index.h"

#include <gtest/gtest.h>

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

json Pool(const std::string& name, const std::string& host, const std::string& created,
          const std::string& secret = "app-db") {
  return {
      {"apiVersion", "poolkeeper.io/v1alpha1"},
      {"kind", "ConnectionPool"},
      {"metadata",
       {{"name", name}, {"namespace", "shop"}, {"generation", 1}, {"creationTimestamp", created}}},
      {"spec",
       {{"server", {{"host", host}, {"maxConnections", 100}}},
        {"pooler",
         {{"pgbouncerVersion", "1.18"}, {"image", "ghcr.io/cloudnative-pg/pgbouncer:1.18.0"}}},
        {"databases", {{{"name", "app"}}}},
        {"users", {{{"name", "app"}, {"passwordSecretRef", {{"name", secret}}}}}}}}};
}

TEST(PoolIndex, GroupsValidPoolsByServerInLedgerOrder) {
  PoolIndex index;
  index.Upsert(Pool("late", "db", "2026-02-01T00:00:00Z"));
  index.Upsert(Pool("early", "db", "2026-01-01T00:00:00Z"));
  index.Upsert(Pool("elsewhere", "other", "2026-01-01T00:00:00Z"));
  auto pools = index.OnServers({"db:5432"});
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0]->metadata.name, "early");
  EXPECT_EQ(pools[1]->metadata.name, "late");
  EXPECT_EQ(index.KeysOnServers({"other:5432"}), std::vector<std::string>{"shop/elsewhere"});
}

std::vector<std::string> Names(const std::vector<budget::SharedPool>& pools) {
  std::vector<std::string> names;
  for (const auto& pool : pools)
    names.push_back(pool->metadata.namespace_ + "/" + pool->metadata.name);
  return names;
}

// The ledger is kept in order as pools come and change, not sorted when read: creation time first,
// then namespace, then name (as fields: "a" before "a-b", though "a-b/x" < "a/x" as keys).
TEST(PoolIndex, KeepsEachServersPoolsInLedgerOrderAsTheyChange) {
  PoolIndex index;
  auto in = [](json pool, const std::string& ns) {
    pool["metadata"]["namespace"] = ns;
    return pool;
  };
  index.Upsert(in(Pool("x", "db", "2026-03-01T00:00:00Z"), "a-b"));
  index.Upsert(in(Pool("x", "db", "2026-03-01T00:00:00Z"), "a"));
  index.Upsert(Pool("c", "db", "2026-01-01T00:00:00Z"));
  index.Upsert(Pool("b", "db", "2026-02-01T00:00:00Z"));
  index.Upsert(Pool("a", "db", "2026-02-01T00:00:00Z"));
  EXPECT_EQ(Names(index.OnServers({"db:5432"})),
            (std::vector<std::string>{"shop/c", "shop/a", "shop/b", "a/x", "a-b/x"}));
  // Recreated under the same name: it is the newest now, and stands nowhere else.
  index.Upsert(Pool("c", "db", "2026-04-01T00:00:00Z"));
  index.Remove("a/x");
  EXPECT_EQ(Names(index.OnServers({"db:5432"})),
            (std::vector<std::string>{"shop/a", "shop/b", "a-b/x", "shop/c"}));
  EXPECT_EQ(index.KeysOnServers({"db:5432"}),
            (std::vector<std::string>{"a-b/x", "shop/a", "shop/b", "shop/c"}));
}

// One budget named several ways (an alias, an inline endpoint): one ledger across them all.
TEST(PoolIndex, MergesTheLedgersOfEveryReference) {
  PoolIndex index;
  index.Upsert(Pool("d", "alias", "2026-04-01T00:00:00Z"));
  index.Upsert(Pool("c", "db", "2026-03-01T00:00:00Z"));
  index.Upsert(Pool("b", "alias", "2026-02-01T00:00:00Z"));
  index.Upsert(Pool("a", "db", "2026-01-01T00:00:00Z"));
  index.Upsert(Pool("e", "other", "2026-01-01T00:00:00Z"));
  EXPECT_EQ(Names(index.OnServers({"alias:5432", "db:5432"})),
            (std::vector<std::string>{"shop/a", "shop/b", "shop/c", "shop/d"}));
}

// Readers share the parsed pool, which an update replaces rather than changes: a pass that read
// it keeps planning what it read.
TEST(PoolIndex, HandsOutTheStoredPoolWhichAnUpdateReplaces) {
  PoolIndex index;
  index.Upsert(Pool("p", "db", "t"));
  const budget::SharedPool read = index.OnServers({"db:5432"}).at(0);
  EXPECT_EQ(index.OnServers({"db:5432"}).at(0), read);
  EXPECT_EQ(index.Find("shop/p")->pool, read);
  json bigger = Pool("p", "db", "t");
  bigger["spec"]["pooler"]["instances"] = 3;
  index.Upsert(bigger);
  EXPECT_NE(index.OnServers({"db:5432"}).at(0), read);
  EXPECT_EQ(index.OnServers({"db:5432"}).at(0)->spec.pooler.instances, 3);
  EXPECT_NE(read->spec.pooler.instances, 3);
}

TEST(PoolIndex, MovingAPoolToAnotherServerLeavesTheOldOne) {
  PoolIndex index;
  index.Upsert(Pool("p", "db", "t"));
  auto before = index.Upsert(Pool("p", "other", "t"));
  ASSERT_TRUE(before);
  EXPECT_EQ(before->server, "db:5432");
  EXPECT_TRUE(index.OnServers({"db:5432"}).empty());
  EXPECT_EQ(index.OnServers({"other:5432"}).size(), 1u);
}

TEST(PoolIndex, InvalidSpecIsKnownButOnNoServer) {
  PoolIndex index;
  json bad = Pool("bad", "db", "t");
  bad["spec"]["pooler"]["instances"] = -1;
  index.Upsert(bad);
  auto entry = index.Find("shop/bad");
  ASSERT_TRUE(entry);
  EXPECT_FALSE(entry->pool);
  EXPECT_TRUE(index.OnServers({"db:5432"}).empty());
}

// A pool the pod policy refuses takes no share of any budget, and its Secrets are not read: the
// operator watches only Secrets of pools it would render.
TEST(PoolIndex, APoolThePolicyRefusesIsOnNoServerAndReadsNoSecret) {
  PoolIndex index;
  json thief = Pool("thief", "db", "t", "payments-api-key");
  thief["spec"]["pooler"]["image"] = "attacker.example/anything:1.18";
  index.Upsert(thief);
  auto entry = index.Find("shop/thief");
  ASSERT_TRUE(entry);
  EXPECT_FALSE(entry->pool);
  EXPECT_TRUE(index.OnServers({"db:5432"}).empty());
  EXPECT_TRUE(index.ReferencedSecrets().empty());
  // Under an operator that allows the image it is an ordinary pool.
  auto policy = api::MakePodPolicy({"attacker.example/*"}, {}, false, {});
  ASSERT_TRUE(policy);
  PoolIndex allowing({}, *policy);
  allowing.Upsert(thief);
  EXPECT_EQ(allowing.OnServers({"db:5432"}).size(), 1u);
  EXPECT_EQ(allowing.ReferencedSecrets(), std::set<std::string>{"shop/payments-api-key"});
}

TEST(PoolIndex, TracksWhichPoolsReferenceASecret) {
  PoolIndex index;
  index.Upsert(Pool("a", "db", "t", "shared"));
  index.Upsert(Pool("b", "db", "t", "shared"));
  index.Upsert(Pool("c", "db", "t", "own"));
  EXPECT_EQ(index.KeysReferencing("shop/shared"), (std::vector<std::string>{"shop/a", "shop/b"}));
  EXPECT_EQ(index.ReferencedSecrets(), (std::set<std::string>{"shop/own", "shop/shared"}));
  index.Remove("shop/c");
  EXPECT_EQ(index.ReferencedSecrets(), std::set<std::string>{"shop/shared"});
  EXPECT_FALSE(index.Remove("shop/c"));
}

// A server CA in a ConfigMap is tracked like a Secret, so its change reaches the pools naming it;
// one in a Secret is a referenced Secret.
TEST(PoolIndex, TracksWhichPoolsReferenceACaConfigMap) {
  PoolIndex index;
  auto with_ca = [](const std::string& name, const json& ca_ref) {
    json pool = Pool(name, "db", "t");
    pool["spec"]["tls"] = {{"server", {{"sslMode", "verify-full"}, {"caRef", ca_ref}}}};
    return pool;
  };
  index.Upsert(with_ca("a", {{"configMapName", "db-ca"}}));
  index.Upsert(with_ca("b", {{"configMapName", "db-ca"}}));
  index.Upsert(with_ca("c", {{"secretName", "db-ca"}}));
  EXPECT_EQ(index.KeysReferencingConfigMap("shop/db-ca"),
            (std::vector<std::string>{"shop/a", "shop/b"}));
  EXPECT_EQ(index.KeysReferencing("shop/db-ca"), std::vector<std::string>{"shop/c"});
  index.Upsert(with_ca("b", {{"configMapName", "other-ca"}}));
  EXPECT_EQ(index.KeysReferencingConfigMap("shop/db-ca"), std::vector<std::string>{"shop/a"});
  index.Remove("shop/a");
  EXPECT_TRUE(index.KeysReferencingConfigMap("shop/db-ca").empty());
  EXPECT_EQ(index.Find("shop/b")->config_maps, std::set<std::string>{"shop/other-ca"});
}

}  // namespace
}  // namespace poolkeeper::controller
