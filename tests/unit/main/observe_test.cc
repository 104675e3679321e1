// `check --observe`: plans on what the server reports, with credentials from the Secret in the
// files (or the environment), and fails naming the server when it cannot observe it.
#include "main/observe.h"

#include <gtest/gtest.h>

#include <sstream>

#include "manifests/manifests.h"

namespace poolkeeper::cli {
namespace {

class FakeServer : public postgres::ServerClient {
 public:
  std::optional<Error> failure;
  postgres::Endpoint seen_endpoint;
  Result<postgres::Observation> Observe(const postgres::Endpoint& endpoint,
                                        const std::set<std::string>&) override {
    seen_endpoint = endpoint;
    if (failure) return std::unexpected(*failure);
    postgres::Observation o;
    o.max_connections = 40;
    o.superuser_reserved_connections = 5;
    o.server_version = "15.18";
    o.system_identifier = "7001";
    return o;
  }
  Result<int64_t> SetRoleConnectionLimit(const postgres::Endpoint&, const std::string&,
                                         int64_t) override {
    return Fail(ErrorCode::kInternal, "not here");
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

constexpr char kFiles[] = R"(
apiVersion: poolkeeper.io/v1alpha1
kind: PostgresServer
metadata: {name: main}
spec:
  host: db.shop
  maxConnections: 100
  credentialsSecretRef: {namespace: ops, name: observer}
---
apiVersion: v1
kind: Secret
metadata: {name: observer, namespace: ops}
stringData: {username: watcher, password: "s3cret"}
)";

manifests::Manifests Load(std::string text) {
  auto manifests = manifests::LoadManifests({{"files.yaml", std::move(text)}});
  EXPECT_TRUE(manifests) << manifests.error().message;
  return *manifests;
}

TEST(CheckObserve, UsesTheSecretInTheFilesAndRecordsTheFigures) {
  FakeServer db;
  manifests::Manifests manifests = Load(kFiles);
  std::ostringstream out;
  auto none = [](const char*) -> std::optional<std::string> { return std::nullopt; };
  ASSERT_TRUE(ObserveServers(manifests, {db, none, "now"}, out));
  EXPECT_EQ(db.seen_endpoint.user, "watcher");
  EXPECT_EQ(db.seen_endpoint.password, "s3cret");
  ASSERT_TRUE(manifests.servers[0].observed);
  EXPECT_EQ(manifests.servers[0].observed->max_connections, 40);
  EXPECT_NE(out.str().find("observed PostgresServer main: max_connections 40"), std::string::npos);
  EXPECT_EQ(out.str().find("s3cret"), std::string::npos);
}

TEST(CheckObserve, FallsBackToTheEnvironmentAndOtherwiseSaysWhatIsMissing) {
  FakeServer db;
  std::string text = kFiles;
  text = text.substr(0, text.find("---"));  // no Secret
  manifests::Manifests manifests = Load(text);
  std::ostringstream out;
  auto env = [](const char* name) -> std::optional<std::string> {
    return std::string(name) == "PGUSER" ? std::optional<std::string>("from-env") : std::nullopt;
  };
  ASSERT_TRUE(ObserveServers(manifests, {db, env, "now"}, out));
  EXPECT_EQ(db.seen_endpoint.user, "from-env");
  EXPECT_EQ(db.seen_endpoint.password, "");  // libpq reads PGPASSWORD itself
  auto none = [](const char*) -> std::optional<std::string> { return std::nullopt; };
  Status missing = ObserveServers(manifests, {db, none, "now"}, out);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("PostgresServer main: no credentials"), std::string::npos);
}

TEST(CheckObserve, AServerThatCannotBeObservedIsAnErrorNamingIt) {
  FakeServer db;
  db.failure = Error{ErrorCode::kUnavailable, "db.shop:5432: connection refused", {}, 0};
  manifests::Manifests manifests = Load(kFiles);
  std::ostringstream out;
  auto none = [](const char*) -> std::optional<std::string> { return std::nullopt; };
  Status failed = ObserveServers(manifests, {db, none, "now"}, out);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "PostgresServer main: db.shop:5432: connection refused");
}

}  // namespace
}  // namespace poolkeeper::cli
