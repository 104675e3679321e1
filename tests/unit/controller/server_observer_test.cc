// The PostgresServer observer on a scripted API server, an in-memory database and a fake clock:
// what it reads (the credentials Secret), whom it asks (the server, as that role), what it records
// (the status, by server-side apply), and when (at once, then every interval; sooner when poked or
// when the server could not be reached).
#include "controller/server_observer.h"

#include <gtest/gtest.h>

#include "../kube/fake_transport.h"
#include "fake_database.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::FakeTransport;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kServers[] = "/apis/poolkeeper.io/v1alpha1/postgresservers";
constexpr char kStatus[] = "/apis/poolkeeper.io/v1alpha1/postgresservers/main/status";
constexpr char kSecret[] = "/api/v1/namespaces/ops/secrets/observer";

// Observes as a server with 60 connections, recording whom it was asked as.
class FakeDatabase : public testing::FakeDatabase {
 public:
  std::vector<postgres::Endpoint> asked;
  std::optional<Error> failure;
  Result<postgres::Observation> Observe(const postgres::Endpoint& endpoint,
                                        const std::set<std::string>&) override {
    asked.push_back(endpoint);
    if (failure) return std::unexpected(*failure);
    postgres::Observation seen;
    seen.max_connections = 60;
    seen.superuser_reserved_connections = 3;
    seen.system_identifier = "7001";
    return seen;
  }
};

json Server() {
  return {{"apiVersion", "poolkeeper.io/v1alpha1"},
          {"kind", "PostgresServer"},
          {"metadata", {{"name", "main"}, {"resourceVersion", "5"}, {"generation", 1}}},
          {"spec",
           {{"host", "db"},
            {"maxConnections", 100},
            {"observeIntervalSeconds", 30},
            {"credentialsSecretRef", {{"namespace", "ops"}, {"name", "observer"}}}}}};
}

json Secret() {
  // base64 of "watcher" and "s3cret"
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "observer"}, {"namespace", "ops"}, {"resourceVersion", "2"}}},
          {"data", {{"username", "d2F0Y2hlcg=="}, {"password", "czNjcmV0"}}}};
}

struct ObserverTest : ::testing::Test {
  void SetUp() override {
    transport.RespondJson("GET", kServers, 200,
                          {{"kind", "PostgresServerList"},
                           {"apiVersion", "poolkeeper.io/v1alpha1"},
                           {"metadata", {{"resourceVersion", "10"}}},
                           {"items", {Server()}}});
    (void)servers.Step();  // the LIST fills the cache; the unscripted watch then fails
    ASSERT_TRUE(servers.HasSynced());
    json stored = Server();
    registry.Update(nullptr, &stored);
  }
  // One observation's requests: the credentials, then the status.
  void ScriptPass() {
    transport.RespondJson("GET", kSecret, 200, Secret());
    transport.RespondJson("PATCH", kStatus, 200, Server());
  }
  json LastStatus() const {
    const auto requests = transport.Requests();
    for (auto it = requests.rbegin(); it != requests.rend(); ++it) {
      if (it->path.starts_with(kStatus)) return json::parse(it->body)["status"];
    }
    return nullptr;
  }

  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  kube::Informer servers{client, clock, {.type = kPostgresServerType}};
  ServerRegistry registry;
  PoolIndex pools;
  HoldingsIndex holdings{clock};
  FakeDatabase database;
  ServerObserver observer{
      {client, clock, database, servers, registry, pools, holdings, "/tmp/poolkeeper-ca-test"}};
};

TEST_F(ObserverTest, ObservesAtOnceAsTheSecretsRoleAndRecordsTheStatus) {
  ScriptPass();
  EXPECT_EQ(observer.RunDue(), 1);
  ASSERT_EQ(database.asked.size(), 1u);
  EXPECT_EQ(database.asked[0].host, "db");
  EXPECT_EQ(database.asked[0].user, "watcher");
  EXPECT_EQ(database.asked[0].password, "s3cret");
  json status = LastStatus();
  EXPECT_EQ(status["observed"]["maxConnections"], 60);
  EXPECT_EQ(status["budget"]["source"], "Observed");
  EXPECT_EQ(status["drift"][0], "maxConnections: declared 100, observed 60");
  for (const auto& request : transport.Requests()) {
    EXPECT_EQ(request.body.find("s3cret"), std::string::npos) << request.path;
  }
}

TEST_F(ObserverTest, WaitsForTheIntervalUnlessPoked) {
  ScriptPass();
  ASSERT_EQ(observer.RunDue(), 1);
  EXPECT_EQ(observer.RunDue(), 0);
  clock.Advance(29s);
  EXPECT_EQ(observer.RunDue(), 0);
  ScriptPass();
  clock.Advance(1s);
  EXPECT_EQ(observer.RunDue(), 1);
  ScriptPass();
  observer.Poke("main");
  EXPECT_EQ(observer.RunDue(), 1);
  EXPECT_EQ(database.asked.size(), 3u);
}

TEST_F(ObserverTest, AnUnreachableServerIsRetriedSoonerAndSaysWhy) {
  database.failure = Error{ErrorCode::kUnavailable, "db:5432: connection refused", {}, 0};
  ScriptPass();
  ASSERT_EQ(observer.RunDue(), 1);
  json status = LastStatus();
  ASSERT_TRUE(status["conditions"].is_array());
  bool unreachable = false;
  for (const auto& c : status["conditions"]) {
    if (c["type"] == "Reachable") unreachable = c["status"] == "False";
  }
  EXPECT_TRUE(unreachable) << status.dump();
  clock.Advance(10s);
  ScriptPass();
  EXPECT_EQ(observer.RunDue(), 1);  // not after the 30 s interval
}

TEST_F(ObserverTest, AMissingCredentialsSecretIsReportedNotObserved) {
  transport.Respond("GET", kSecret, 404, kube::testing::StatusBody(404, "NotFound"));
  transport.RespondJson("PATCH", kStatus, 200, Server());
  ASSERT_EQ(observer.RunDue(), 1);
  EXPECT_TRUE(database.asked.empty());
  EXPECT_NE(LastStatus().dump().find("CredentialsNotFound"), std::string::npos)
      << LastStatus().dump();
}

// authQuery: with an authQuery pool on the server, the observer sets the lookup up for the pool's
// databases with the auth role's Secret it creates, and records both in the server's status.
TEST_F(ObserverTest, SetsAuthQueryUpForThePoolsOnTheServerAndRecordsIt) {
  ServerObserver keeper{{client, clock, database, servers, registry, pools, holdings,
                         "/tmp/poolkeeper-ca-test", "poolkeeper-system"}};
  json pool = json::parse(R"({
    "apiVersion": "poolkeeper.io/v1alpha1", "kind": "ConnectionPool",
    "metadata": {"name": "orders", "namespace": "shop", "uid": "u1", "generation": 1,
                 "creationTimestamp": "2026-11-30T00:00:00Z"},
    "spec": {"serverRef": {"name": "main"}, "authentication": {"mode": "authQuery"},
             "databases": [{"name": "orders", "dbname": "orders_prod", "maxDbConnections": 5}]}})");
  (void)pools.Upsert(pool);
  constexpr char kAuthSecret[] =
      "/api/v1/namespaces/poolkeeper-system/secrets/poolkeeper-auth-main";
  ScriptPass();
  transport.Respond("GET", kAuthSecret, 404, kube::testing::StatusBody(404, "NotFound"));
  transport.RespondJson("PATCH", kAuthSecret, 200, json::object());
  ASSERT_EQ(keeper.RunDue(), 1);
  ASSERT_EQ(database.ensured.size(), 1u);
  EXPECT_EQ(database.ensured[0].databases, std::vector<std::string>{"orders_prod"});
  json status = LastStatus();
  EXPECT_EQ(status["authQuery"]["databases"], json::array({"orders_prod"}));
  EXPECT_EQ(status["authQuery"]["secret"], "poolkeeper-system/poolkeeper-auth-main");
  bool ready = false;
  for (const auto& c : status["conditions"]) {
    if (c["type"] == "AuthQueryReady") ready = c["status"] == "True";
  }
  EXPECT_TRUE(ready) << status.dump();
  // The generated password went to the Secret and the database, never into the status.
  EXPECT_EQ(status.dump().find(database.ensured[0].password), std::string::npos);
}

json AuthPool(const std::string& name, const std::string& server) {
  json pool = json::parse(R"({
    "apiVersion": "poolkeeper.io/v1alpha1", "kind": "ConnectionPool",
    "metadata": {"namespace": "shop", "generation": 1,
                 "creationTimestamp": "2026-11-30T00:00:00Z"},
    "spec": {"authentication": {"mode": "authQuery"},
             "databases": [{"name": "orders", "maxDbConnections": 5}]}})");
  pool["metadata"]["name"] = name;
  pool["metadata"]["uid"] = "uid-" + name;
  pool["spec"]["serverRef"] = {{"name", server}};
  return pool;
}

bool HasCondition(const json& status, const std::string& type, const std::string& reason) {
  for (const auto& c : status.value("conditions", json::array())) {
    if (c["type"] == type && c["reason"] == reason) return true;
  }
  return false;
}

// Two PostgresServers on one PostgreSQL (the same system identifier) with authQuery pools: "a",
// first by name, manages the one auth role; "main" writes nothing on the server, has no auth
// Secret to drop (its status records none: auth_query_test covers the drop) and says who manages.
// Once "a" is gone, "main" takes over at its next observation.
TEST_F(ObserverTest, AnAuthRoleSharedWithAnEarlierServerIsLeftToItUntilItIsGone) {
  ServerObserver keeper{{client, clock, database, servers, registry, pools, holdings,
                         "/tmp/poolkeeper-ca-test", "poolkeeper-system"}};
  json a = json::parse(R"({
    "apiVersion": "poolkeeper.io/v1alpha1", "kind": "PostgresServer",
    "metadata": {"name": "a", "resourceVersion": "7", "generation": 1},
    "spec": {"host": "db-primary", "maxConnections": 100},
    "status": {"observed": {"maxConnections": 60, "systemIdentifier": "7001"}}})");
  registry.Update(nullptr, &a);
  (void)pools.Upsert(AuthPool("on-a", "a"));
  (void)pools.Upsert(AuthPool("on-main", "main"));
  constexpr char kAuthSecret[] =
      "/api/v1/namespaces/poolkeeper-system/secrets/poolkeeper-auth-main";

  ScriptPass();
  ASSERT_EQ(keeper.RunDue(), 1);
  EXPECT_TRUE(database.ensured.empty());
  EXPECT_TRUE(database.removed.empty());
  json status = LastStatus();
  EXPECT_TRUE(HasCondition(status, "AuthQueryReady", "AuthRoleShared")) << status.dump();
  EXPECT_NE(status.dump().find("PostgresServer a "), std::string::npos) << status.dump();
  for (const auto& request : transport.Requests()) {
    EXPECT_FALSE(request.path.starts_with(kAuthSecret)) << request.method;
  }

  registry.Update(&a, nullptr);  // "a" deleted
  keeper.Poke("main");
  ScriptPass();
  transport.Respond("GET", kAuthSecret, 404, kube::testing::StatusBody(404, "NotFound"));
  transport.RespondJson("PATCH", kAuthSecret, 200, json::object());
  ASSERT_EQ(keeper.RunDue(), 1);
  ASSERT_EQ(database.ensured.size(), 1u);
  EXPECT_EQ(database.ensured[0].databases, std::vector<std::string>{"orders"});
  EXPECT_TRUE(HasCondition(LastStatus(), "AuthQueryReady", "SetUp")) << LastStatus().dump();
}

}  // namespace
}  // namespace poolkeeper::controller
