#include "api/parse.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "yaml/yaml.h"

namespace poolkeeper::api {
namespace {

using nlohmann::json;

json LoadYaml(const std::string& file) {
  std::ifstream in(std::string(POOLKEEPER_TESTDATA_DIR) + "/" + file);
  std::stringstream text;
  text << in.rdbuf();
  auto docs = yaml::ParseYamlDocuments(text.str(), file);
  EXPECT_TRUE(docs.has_value()) << docs.error().message;
  return docs->front();
}

TEST(ParseConnectionPool, AppliesDocumentedDefaults) {
  auto pool = ParseConnectionPool(LoadYaml("valid_pool.yaml"));
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  const auto& spec = pool->spec;
  EXPECT_EQ(spec.server.port, 5432);
  EXPECT_EQ(spec.server.superuser_reserved_connections, 3);
  EXPECT_EQ(spec.server.reserved_connections, 0);
  EXPECT_EQ(spec.server.overhead.Resolve(200), 20);
  EXPECT_EQ(spec.pooler.max_surge, 1);
  EXPECT_EQ(spec.pooler.port, 6432);
  EXPECT_EQ(spec.pooler.pool_mode, PoolMode::kTransaction);
  EXPECT_EQ(spec.pooler.max_client_conn, 1000);
  EXPECT_EQ(spec.pooler.default_pool_size, 20);
  EXPECT_EQ(spec.pooler.reserve_pool_timeout_seconds, 5);
  EXPECT_FALSE(spec.pooler.max_db_connections.has_value());
  EXPECT_EQ(spec.databases[0].dbname, "orders");
  EXPECT_EQ(spec.users[0].password_secret_ref.key, "password");
  EXPECT_EQ(spec.budget_policy, BudgetPolicy::kEnforce);
  EXPECT_EQ((spec.pooler.pgbouncer_version), (PgBouncerVersion{1, 18}));
  EXPECT_FALSE(spec.paused);
}

TEST(ParseConnectionPool, PausedIsABooleanAndAnythingElseNamesTheField) {
  json input = LoadYaml("valid_pool.yaml");
  input["spec"]["paused"] = true;
  auto paused = ParseConnectionPool(input);
  ASSERT_TRUE(paused.has_value()) << paused.error().message;
  EXPECT_TRUE(paused->spec.paused);
  input["spec"]["paused"] = "yes";
  auto bad = ParseConnectionPool(input);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("spec.paused: must be a boolean, not a string"),
            std::string::npos)
      << bad.error().message;
}

TEST(ParseConnectionPool, DefaultsImageAndReadsVersionFromImageTag) {
  json base = LoadYaml("valid_pool.yaml");
  json no_image = base;
  no_image["spec"]["pooler"].erase("image");
  no_image["spec"]["pooler"].erase("pgbouncerVersion");
  auto pool = ParseConnectionPool(no_image);
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  EXPECT_EQ(pool->spec.pooler.image, kDefaultImage);
  EXPECT_EQ(pool->spec.pooler.pgbouncer_version, kDefaultImageVersion);

  json tagged = base;
  tagged["spec"]["pooler"].erase("pgbouncerVersion");
  tagged["spec"]["pooler"]["image"] = "registry:5000/team/pgbouncer:v1.21.0-p2";
  pool = ParseConnectionPool(tagged);
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  EXPECT_EQ(pool->spec.pooler.pgbouncer_version, (PgBouncerVersion{1, 21}));
}

// Found by the fuzz target render: `apiVersion:` followed only by a comment is null, and
// nlohmann's value() threw on it out of check. Identity fields of another type are errors.
TEST(ParseConnectionPool, IdentityFieldsOfAnotherTypeAreErrorsNotExceptions) {
  for (const char* text : {R"({"apiVersion": null, "kind": "ConnectionPool", "spec": {}})",
                           R"({"apiVersion": "poolkeeper.io/v1alpha1", "kind": 7, "spec": {}})",
                           R"({"apiVersion": ["x"], "kind": null, "metadata": null})"}) {
    auto pool = ParseConnectionPool(json::parse(text));
    ASSERT_FALSE(pool.has_value()) << text;
    EXPECT_FALSE(pool.error().message.empty()) << text;
  }
}

TEST(ParseConnectionPool, PercentOverheadRoundsUp) {
  EXPECT_EQ((Overhead{20, true}.Resolve(101)), 21);
  EXPECT_EQ((Overhead{20, true}.Resolve(100)), 20);
  EXPECT_EQ((Overhead{7, false}.Resolve(100)), 7);
}

// Every case names the field at fault; the same table feeds the CRD schema test.
TEST(ParseConnectionPool, RejectsEveryInvalidCaseNamingTheField) {
  json base = LoadYaml("valid_pool.yaml");
  json cases = LoadYaml("invalid_pools.yaml");
  ASSERT_GT(cases.size(), 40u);
  for (const auto& c : cases) {
    json input = base;
    input.merge_patch(c["patch"]);
    auto pool = ParseConnectionPool(input);
    std::string name = c["case"];
    ASSERT_FALSE(pool.has_value()) << name;
    EXPECT_EQ(pool.error().code, ErrorCode::kInvalid) << name;
    std::string field = c["field"];
    bool named = std::ranges::any_of(pool.error().fields,
                                     [&](const FieldIssue& issue) { return issue.field == field; });
    EXPECT_TRUE(named) << name << ": expected " << field << ", got: " << pool.error().message;
  }
}

TEST(ParseConnectionPool, ReportsAllProblemsAtOnce) {
  json input = LoadYaml("valid_pool.yaml");
  input.merge_patch(json::parse(R"({"spec":{"server":{"port":0},"pooler":{"instances":-2}}})"));
  auto pool = ParseConnectionPool(input);
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().fields.size(), 2u) << pool.error().message;
}

TEST(ParseConnectionPool, AcceptsQuotableNamesAndKnownParameters) {
  json input = LoadYaml("valid_pool.yaml");
  input.merge_patch(json::parse(R"({"spec":{
      "databases":[{"name":"order-db.v2","dbname":"orders_v2","poolSize":5}],
      "users":[{"name":"svc.orders","passwordSecretRef":{"name":"orders-db","key":"pw"}}]}})"));
  auto pool = ParseConnectionPool(input);
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  EXPECT_EQ(pool->spec.databases[0].name, "order-db.v2");
  EXPECT_EQ(pool->spec.users[0].password_secret_ref.key, "pw");
}

// A pool in authQuery mode on a PostgresServer, with a cap on its database.
json AuthQueryInput(const std::string& users_json) {
  json input = LoadYaml("valid_pool.yaml");
  input["spec"].erase("server");
  input["spec"]["serverRef"] = {{"name", "main"}};
  input["spec"]["authentication"] = {{"mode", "authQuery"}};
  input["spec"]["databases"][0]["maxDbConnections"] = 30;
  if (users_json.empty()) {
    input["spec"].erase("users");
  } else {
    input["spec"]["users"] = json::parse(users_json);
  }
  return input;
}

TEST(ParseConnectionPool, AuthenticationDefaultsToUserlist) {
  auto pool = ParseConnectionPool(LoadYaml("valid_pool.yaml"));
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  EXPECT_EQ(pool->spec.auth_mode, AuthMode::kUserlist);
}

TEST(ParseConnectionPool, AuthQueryNeedsNoUsersAndNoPasswordSecrets) {
  struct Case {
    std::string name, users;
    size_t expected_users;
  };
  for (const Case& c : std::vector<Case>{
           {"no users at all", "", 0},
           {"an empty list", "[]", 0},
           {"per-user settings without a Secret", R"([{"name":"app","maxUserConnections":5}])", 1},
           {"a Secret reference is accepted and ignored",
            R"([{"name":"app","passwordSecretRef":{"name":"s"}}])", 1},
       }) {
    auto pool = ParseConnectionPool(AuthQueryInput(c.users));
    ASSERT_TRUE(pool.has_value()) << c.name << ": " << pool.error().message;
    EXPECT_EQ(pool->spec.auth_mode, AuthMode::kAuthQuery) << c.name;
    EXPECT_EQ(pool->spec.users.size(), c.expected_users) << c.name;
  }
}

TEST(ParseConnectionPool, AuthQueryRefusesTheAuthUsersNameAsAUser) {
  auto pool = ParseConnectionPool(AuthQueryInput(R"([{"name":"poolkeeper_auth"}])"));
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().fields.at(0).field, "spec.users[0].name") << pool.error().message;
}

TEST(ParseConnectionPool, TheAgentsUserIsNotAUserNameAndItsImageComesOnlyFromTheOperator) {
  json input = LoadYaml("valid_pool.yaml");
  input["spec"]["users"][0]["name"] = "poolkeeper_agent";
  auto refused = ParseConnectionPool(input);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().fields.at(0).field, "spec.users[0].name") << refused.error().message;

  ParseDefaults defaults;
  defaults.agent_image = "localhost/poolkeeper:dev";
  auto pool = ParseConnectionPool(LoadYaml("valid_pool.yaml"), defaults);
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  EXPECT_EQ(pool->spec.pooler.agent_image, "localhost/poolkeeper:dev");
  EXPECT_EQ(ParseConnectionPool(LoadYaml("valid_pool.yaml"))->spec.pooler.agent_image, "");
}

TEST(ParseConnectionPool, AuthQueryAcceptsThePoolerWideCap) {
  json input = AuthQueryInput("");
  input["spec"]["databases"][0].erase("maxDbConnections");
  input["spec"]["pooler"]["maxDbConnections"] = 12;
  auto pool = ParseConnectionPool(input);
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
}

TEST(ParseConnectionPool, UserlistModeStillNeedsUsersWithSecrets) {
  json input = LoadYaml("valid_pool.yaml");
  input["spec"]["authentication"] = {{"mode", "userlist"}};
  input["spec"].erase("users");
  auto pool = ParseConnectionPool(input);
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().fields.at(0).field, "spec.users") << pool.error().message;
}

TEST(ParsePgBouncerVersion, ReadsVersionsFromTags) {
  struct Case {
    std::string_view text;
    std::optional<PgBouncerVersion> want;
  };
  for (const Case& c : std::vector<Case>{{"1.18", PgBouncerVersion{1, 18}},
                                         {"1.18.0", PgBouncerVersion{1, 18}},
                                         {"v1.24.1-p1", PgBouncerVersion{1, 24}},
                                         {"latest", std::nullopt},
                                         {"1", std::nullopt}}) {
    EXPECT_EQ(ParsePgBouncerVersion(c.text), c.want) << c.text;
  }
  EXPECT_EQ(VersionFromImage("localhost:5000/pgbouncer"), std::nullopt);
  EXPECT_EQ(VersionFromImage("pgbouncer:1.23.1@sha256:abc"), (PgBouncerVersion{1, 23}));
}

}  // namespace
}  // namespace poolkeeper::api
