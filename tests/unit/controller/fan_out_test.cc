// The informers' handlers as the work queue sees them: which pools each change queues. Pools
// "a" and "b" share the server db:5432, "c" is alone on other:5432; "a" and "c" use the Secret
// shop/app-db, "b" uses shop/b-db.
#include "controller/fan_out.h"

#include <gtest/gtest.h>

#include <functional>

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

json Pool(const std::string& name, const std::string& host, int64_t generation = 1,
          const std::string& secret = "app-db") {
  return {{"apiVersion", "poolkeeper.io/v1alpha1"},
          {"kind", "ConnectionPool"},
          {"metadata",
           {{"name", name},
            {"namespace", "shop"},
            {"generation", generation},
            {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
          {"spec",
           {{"server", {{"host", host}, {"maxConnections", 100}}},
            {"pooler",
             {{"pgbouncerVersion", "1.18"}, {"image", "ghcr.io/cloudnative-pg/pgbouncer:1.18.0"}}},
            {"databases", {{{"name", "app"}}}},
            {"users", {{{"name", "app"}, {"passwordSecretRef", {{"name", secret}}}}}}}}};
}

json Pod(const std::string& pool, const std::string& phase) {
  return {{"metadata",
           {{"name", pool + "-0"},
            {"namespace", "shop"},
            {"labels", {{"poolkeeper.io/pool", pool}}},
            {"annotations",
             {{"poolkeeper.io/server", "db:5432"}, {"poolkeeper.io/connections-per-pod", "5"}}}}},
          {"status", {{"phase", phase}}}};
}

json ConfigMap(const std::string& pool, int planned) {
  return {{"metadata",
           {{"name", pool + "-config"},
            {"namespace", "shop"},
            {"labels", {{"poolkeeper.io/pool", pool}}},
            {"annotations",
             {{"poolkeeper.io/server", "db:5432"},
              {"poolkeeper.io/planned-connections", std::to_string(planned)}}},
            {"ownerReferences",
             {{{"apiVersion", "poolkeeper.io/v1alpha1"},
               {"kind", "ConnectionPool"},
               {"name", pool}}}}}}};
}

json Server(const std::string& name, int64_t generation) {
  return {{"apiVersion", "poolkeeper.io/v1alpha1"},
          {"kind", "PostgresServer"},
          {"metadata", {{"name", name}, {"generation", generation}}},
          {"spec", {{"host", "db"}, {"maxConnections", 100}}}};
}

kube::ObjectPtr Ptr(json object) { return std::make_shared<const json>(std::move(object)); }

// The indexes the handlers keep, with pools a, b and c known, and what the handlers asked for.
struct Harness {
  Harness() {
    fan_out.OnPool(nullptr, Ptr(Pool("a", "db")));
    fan_out.OnPool(nullptr, Ptr(Pool("b", "db", 1, "b-db")));
    fan_out.OnPool(nullptr, Ptr(Pool("c", "other")));
    queued.clear();
  }

  FakeClock clock;
  PoolIndex pools;
  HoldingsIndex holdings{clock};
  ServerRegistry registry;
  std::set<std::string> queued;
  std::vector<std::string> observed;
  FanOut fan_out{{.pools = pools,
                  .holdings = holdings,
                  .registry = registry,
                  .enqueue = [this](const std::string& key) { queued.insert(key); },
                  .observe_server = [this](const std::string& name) { observed.push_back(name); },
                  .watch_server_cas =
                      [this](const std::set<std::string>& keys) { ca_watched.push_back(keys); }}};
  std::vector<std::set<std::string>> ca_watched;
};

struct Case {
  const char* behaviour;
  std::function<void(FanOut&)> change;
  std::set<std::string> queued;
};

TEST(FanOut, EachChangeQueuesThePoolsWhoseReconcileItCanChange) {
  const std::vector<Case> cases = {
      {"a new pool queues only itself",
       [](FanOut& f) { f.OnPool(nullptr, Ptr(Pool("d", "db"))); },
       {"shop/d"}},
      {"a status-only update (same generation) queues only the pool",
       [](FanOut& f) { f.OnPool(Ptr(Pool("a", "db")), Ptr(Pool("a", "db"))); },
       {"shop/a"}},
      {"a spec change queues every pool sharing its server",
       [](FanOut& f) { f.OnPool(Ptr(Pool("a", "db")), Ptr(Pool("a", "db", 2))); },
       {"shop/a", "shop/b"}},
      {"a pool moved to another server queues the pools of both",
       [](FanOut& f) { f.OnPool(Ptr(Pool("a", "db")), Ptr(Pool("a", "other", 2))); },
       {"shop/a", "shop/b", "shop/c"}},
      {"a deleted pool queues the others of its server, not itself",
       [](FanOut& f) { f.OnPool(Ptr(Pool("a", "db")), nullptr); },
       {"shop/b"}},
      {"a running pod's update queues only its pool",
       [](FanOut& f) { f.OnPod(Ptr(Pod("a", "Running")), Ptr(Pod("a", "Running"))); },
       {"shop/a"}},
      {"a pod that finishes queues every pool of its server",
       [](FanOut& f) { f.OnPod(Ptr(Pod("a", "Running")), Ptr(Pod("a", "Failed"))); },
       {"shop/a", "shop/b"}},
      {"a pod that is gone queues every pool of its server",
       [](FanOut& f) { f.OnPod(Ptr(Pod("a", "Running")), nullptr); },
       {"shop/a", "shop/b"}},
      {"an owned object's update queues its owner",
       [](FanOut& f) { f.OnOwned(false, Ptr(ConfigMap("c", 10)), Ptr(ConfigMap("c", 8))); },
       {"shop/c"}},
      {"a smaller admitted figure queues every pool of its server",
       [](FanOut& f) { f.OnOwned(true, Ptr(ConfigMap("a", 10)), Ptr(ConfigMap("a", 8))); },
       {"shop/a", "shop/b"}},
      {"an unchanged admitted figure queues only its owner",
       [](FanOut& f) { f.OnOwned(true, Ptr(ConfigMap("a", 10)), Ptr(ConfigMap("a", 10))); },
       {"shop/a"}},
      {"a Secret's change queues the pools that use it",
       [](FanOut& f) { f.OnSecret("shop/app-db"); },
       {"shop/a", "shop/c"}},
      {"a Secret no pool uses queues nothing", [](FanOut& f) { f.OnSecret("shop/unused"); }, {}},
      {"a PostgresServer naming a pool's server queues the pools of that budget",
       [](FanOut& f) { f.OnServer(nullptr, Ptr(Server("main", 1))); },
       {"shop/a", "shop/b"}},
  };
  for (const Case& c : cases) {
    Harness h;
    c.change(h.fan_out);
    EXPECT_EQ(h.queued, c.queued) << c.behaviour;
  }
}

TEST(FanOut, ASecretChangeQueuesExactlyThePoolsThatReferenceItNow) {
  Harness h;
  h.fan_out.OnSecret("shop/b-db");
  EXPECT_EQ(h.queued, std::set<std::string>{"shop/b"});
  h.fan_out.OnPool(Ptr(Pool("b", "db", 1, "b-db")), Ptr(Pool("b", "db", 2, "app-db")));
  h.queued.clear();
  h.fan_out.OnSecret("shop/b-db");
  EXPECT_TRUE(h.queued.empty()) << "b no longer references b-db";
  h.fan_out.OnSecret("shop/app-db");
  EXPECT_EQ(h.queued, (std::set<std::string>{"shop/a", "shop/b", "shop/c"}));
}

// Issue 15: a PostgresServer's CA Secret is watched (ServerCaWatch), and its change queues the
// pools placed on the servers that name it, not the other pools of the budget.
TEST(FanOut, AServerCaSecretIsWatchedAndItsChangeQueuesThePoolsOfItsServers) {
  Harness h;
  json with_ca = Server("main", 1);
  with_ca["spec"]["caSecretRef"] = {{"namespace", "ops"}, {"name", "db-ca"}};
  json on_main = Pool("m", "db");
  on_main["spec"].erase("server");
  on_main["spec"]["serverRef"] = {{"name", "main"}};
  h.fan_out.OnPool(nullptr, Ptr(on_main));
  h.fan_out.OnServer(nullptr, Ptr(with_ca));
  ASSERT_FALSE(h.ca_watched.empty());
  EXPECT_EQ(h.ca_watched.back(), std::set<std::string>{"ops/db-ca"});
  h.queued.clear();

  h.fan_out.OnServerCaSecret("ops/db-ca");
  EXPECT_EQ(h.queued, std::set<std::string>{"shop/m"}) << "a and b share the budget, not the CA";
  h.queued.clear();
  h.fan_out.OnServerCaSecret("ops/another");
  EXPECT_TRUE(h.queued.empty());

  // The server no longer names it: no longer watched, and its change queues nothing.
  h.fan_out.OnServer(Ptr(with_ca), Ptr(Server("main", 2)));
  EXPECT_TRUE(h.ca_watched.back().empty());
  h.queued.clear();
  h.fan_out.OnServerCaSecret("ops/db-ca");
  EXPECT_TRUE(h.queued.empty());
}

TEST(FanOut, ObservesAPostgresServerWhenNewOrItsSpecChanges) {
  Harness h;
  h.fan_out.OnServer(nullptr, Ptr(Server("main", 1)));
  h.fan_out.OnServer(Ptr(Server("main", 1)), Ptr(Server("main", 1)));  // status only
  h.fan_out.OnServer(Ptr(Server("main", 1)), Ptr(Server("main", 2)));
  h.fan_out.OnServer(Ptr(Server("main", 2)), nullptr);
  EXPECT_EQ(h.observed, (std::vector<std::string>{"main", "main"}));
}

TEST(FanOut, AnAuthQueryPoolThatComesChangesOrGoesObservesItsServer) {
  Harness h;
  auto auth_pool = [](int64_t generation) {
    json pool = Pool("q", "db", generation);
    pool["spec"].erase("server");
    pool["spec"]["serverRef"] = {{"name", "main"}};
    pool["spec"]["authentication"] = {{"mode", "authQuery"}};
    pool["spec"]["databases"][0]["maxDbConnections"] = 5;
    return pool;
  };
  h.fan_out.OnPool(nullptr, Ptr(auth_pool(1)));            // new: set up its databases
  h.fan_out.OnPool(Ptr(auth_pool(1)), Ptr(auth_pool(1)));  // status only: nothing
  h.fan_out.OnPool(Ptr(auth_pool(1)), Ptr(auth_pool(2)));  // spec: before and after
  h.fan_out.OnPool(Ptr(auth_pool(2)), nullptr);            // gone: remove what it needed
  EXPECT_EQ(h.observed, (std::vector<std::string>{"main", "main", "main", "main"}));
  // A userlist pool never asks for an observation.
  h.observed.clear();
  h.fan_out.OnPool(nullptr, Ptr(Pool("u", "db")));
  EXPECT_TRUE(h.observed.empty());
}

}  // namespace
}  // namespace poolkeeper::controller
