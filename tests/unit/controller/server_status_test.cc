// A PostgresServer's status: observed vs declared figures and their drift, the budget and each
// pool's allocation, the servers sharing the budget, and Reachable, which keeps the last good
// observation when the server cannot be read.
#include "controller/server_status.h"

#include <gtest/gtest.h>

#include "controller/server_registry.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

json Stored(const std::string& name = "main", json status = json::object()) {
  return {{"apiVersion", "poolkeeper.io/v1alpha1"},
          {"kind", "PostgresServer"},
          {"metadata", {{"name", name}, {"generation", 2}}},
          {"spec",
           {{"host", "db"},
            {"maxConnections", 200},
            {"overhead", 10},
            {"credentialsSecretRef", {{"namespace", "ops"}, {"name", "observer"}}}}},
          {"status", std::move(status)}};
}

api::ServerObservation Seen(int64_t max_connections) {
  return {max_connections, 3, 0, "15.18", "7001", 2, {}, {}, "2026-11-30T06:00:00Z"};
}

api::ConnectionPool PoolOn(const std::string& name) {
  api::ConnectionPool pool;
  pool.metadata = {.name = name, .namespace_ = "shop"};
  pool.spec.server_ref = "main";
  pool.spec.pooler.default_pool_size = 10;
  pool.spec.databases = {{.name = "app", .dbname = "app"}};
  pool.spec.users = {{.name = "app"}};
  return pool;
}

json Build(const json& stored, std::optional<Result<api::ServerObservation>> observation) {
  ServerStatusInputs in{stored,
                        api::ParsePostgresServer(stored),
                        std::move(observation),
                        nullptr,
                        {},
                        "2026-11-30T06:00:05Z"};
  api::PostgresServer fresh = *in.server;
  if (in.observation && *in.observation) fresh.observed = **in.observation;
  fresh.unreachable = in.observation && !*in.observation;
  const budget::ServerDirectory directory({fresh});
  in.directory = &directory;
  in.plan = budget::PlanOnServers({PoolOn("a")}, directory);
  return BuildServerStatus(in);
}

const json* Condition(const json& status, const std::string& type) {
  for (const auto& c : status["conditions"]) {
    if (c["type"] == type) return &c;
  }
  return nullptr;
}

TEST(ServerStatus, ShowsObservedFiguresDriftBudgetAndPools) {
  json status = Build(Stored(), Seen(100));
  EXPECT_EQ(status["observed"]["maxConnections"], 100);
  EXPECT_EQ(status["drift"], json::array({"maxConnections: declared 200, observed 100"}));
  EXPECT_EQ(status["budget"]["source"], "Observed");
  EXPECT_EQ(status["budget"]["usable"], 100 - 3 - 10);
  EXPECT_EQ(status["budget"]["allocated"], 20);
  EXPECT_EQ(status["pools"][0]["name"], "a");
  EXPECT_EQ(status["pools"][0]["allocated"], 20);
  EXPECT_EQ(status["endpoint"], "db:5432");
  EXPECT_EQ(status["budgetKey"], "postgresserver/main");
  ASSERT_NE(Condition(status, "Reachable"), nullptr);
  EXPECT_EQ((*Condition(status, "Reachable"))["status"], "True");
  EXPECT_EQ((*Condition(status, "Ready"))["status"], "True");
}

TEST(ServerStatus, UnreachableKeepsTheLastObservationAndSaysSo) {
  json first = Build(Stored(), Seen(100));
  json status = Build(Stored("main", first),
                      std::unexpected(Error{ErrorCode::kUnavailable, "db:5432: refused", {}, 0}));
  EXPECT_EQ(status["observed"], first["observed"]);
  const json& reachable = *Condition(status, "Reachable");
  EXPECT_EQ(reachable["status"], "False");
  EXPECT_EQ(reachable["reason"], "Unreachable");
  EXPECT_NE(reachable["message"].get<std::string>().find("nothing is admitted beyond"),
            std::string::npos);
  // The transition is stamped now; the stored one was the earlier pass's.
  EXPECT_EQ(reachable["lastTransitionTime"], "2026-11-30T06:00:05Z");
  EXPECT_TRUE(api::ParsePostgresServer(Stored("main", status))->unreachable);
}

TEST(ServerStatus, RefusedLoginIsUnauthorized) {
  json status =
      Build(Stored(),
            std::unexpected(Error{ErrorCode::kUnauthorized, "db:5432: password refused", {}, 0}));
  EXPECT_EQ((*Condition(status, "Reachable"))["reason"], "Unauthorized");
  EXPECT_EQ(status["budget"]["source"], "Declared");
  EXPECT_EQ(status["budget"]["maxConnections"], 200);
}

TEST(ServerStatus, WithoutCredentialsPlansOnDeclaredFigures) {
  json stored = Stored();
  stored["spec"].erase("credentialsSecretRef");
  json status = Build(stored, std::nullopt);
  EXPECT_EQ((*Condition(status, "Reachable"))["status"], "Unknown");
  EXPECT_EQ(status["budget"]["usable"], 200 - 3 - 10);
  EXPECT_FALSE(status.contains("observed"));
}

TEST(ServerStatus, InvalidSpecIsReportedAndKeepsTheObservation) {
  json first = Build(Stored(), Seen(100));
  json stored = Stored("main", first);
  stored["spec"]["sslMode"] = "always";
  ServerStatusInputs in{stored, api::ParsePostgresServer(stored), std::nullopt, nullptr, {}, "now"};
  json status = BuildServerStatus(in);
  EXPECT_EQ((*Condition(status, "Ready"))["reason"], "InvalidSpec");
  EXPECT_NE((*Condition(status, "Ready"))["message"].get<std::string>().find("spec.sslMode"),
            std::string::npos);
  EXPECT_EQ(status["observed"], first["observed"]);
}

TEST(ServerRegistry, RecordingOnlyTheTimeOfAnObservationReplansNothing) {
  ServerRegistry registry;
  json first = Stored("main", {{"observed", api::ObservationToJson(Seen(100))}});
  EXPECT_FALSE(registry.Update(nullptr, &first).empty());
  json later = first;
  later["status"]["observed"]["time"] = "2026-11-30T06:00:35Z";
  EXPECT_TRUE(registry.Update(&first, &later).empty());
  json lower = later;
  lower["status"]["observed"]["maxConnections"] = 50;
  std::set<std::string> touched = registry.Update(&later, &lower);
  EXPECT_TRUE(touched.contains("postgresserver/main"));
  EXPECT_TRUE(touched.contains("db:5432"));
  EXPECT_EQ(registry.Directory()->GroupLimits("main")->max_connections, 50);
}

}  // namespace
}  // namespace poolkeeper::controller
