// PostgresServer: what a platform team declares, validated field by field, and the observation the
// operator records in its status read back.
#include "api/postgres_server.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace poolkeeper::api {
namespace {

using nlohmann::json;

json Minimal() {
  return json::parse(R"({"apiVersion":"poolkeeper.io/v1alpha1","kind":"PostgresServer",
      "metadata":{"name":"main"},"spec":{"host":"DB.example.internal.","maxConnections":200}})");
}

TEST(ParsePostgresServer, AppliesDefaults) {
  auto server = ParsePostgresServer(Minimal());
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ(server->spec.port, 5432);
  EXPECT_EQ(server->spec.policy, BudgetPolicy::kEnforce);
  EXPECT_EQ(server->spec.superuser_reserved_connections, 3);
  EXPECT_EQ(server->spec.observe_interval_seconds, 30);
  EXPECT_FALSE(server->spec.allowed_namespaces);
  EXPECT_FALSE(server->observed);
}

TEST(ParsePostgresServer, ReadsTenancyAliasesAndTls) {
  json input = Minimal();
  input["spec"].merge_patch(
      json::parse(R"({"aliases":[{"host":"198.18.0.5"},{"host":"db","port":6000}],
      "sslMode":"verify-full","caSecretRef":{"namespace":"ops","name":"db-ca"},
      "credentialsSecretRef":{"namespace":"ops","name":"observer"},"policy":"Warn",
      "allowedNamespaces":["a","b"],"namespaceQuotas":[{"namespace":"a","maxConnections":40}],
      "measureOverhead":true,"enforceRoleLimits":true})"));
  auto server = ParsePostgresServer(input);
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ(server->spec.aliases, (std::vector<std::string>{"198.18.0.5:5432", "db:6000"}));
  EXPECT_EQ(server->spec.ca_secret_ref->name, "db-ca");
  EXPECT_EQ(server->spec.policy, BudgetPolicy::kWarn);
  EXPECT_EQ(*server->spec.allowed_namespaces, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(server->spec.namespace_quotas.at("a"), 40);
  EXPECT_TRUE(server->spec.measure_overhead);
  EXPECT_TRUE(server->spec.enforce_role_limits);
}

TEST(ParsePostgresServer, RefusesBadInputNamingTheField) {
  struct Case {
    const char* patch;
    const char* field;
  };
  const Case cases[] = {
      {R"({"host":null})", "spec.host"},
      {R"({"host":"db port=1"})", "spec.host"},
      {R"({"maxConnections":null})", "spec.maxConnections"},
      {R"({"maxConnections":0})", "spec.maxConnections"},
      {R"({"sslMode":"verify-full"})", "spec.caSecretRef"},
      {R"({"sslMode":"always"})", "spec.sslMode"},
      {R"({"policy":"enforce"})", "spec.policy"},
      {R"({"overhead":"120%"})", "spec.overhead"},
      {R"({"enforceRoleLimits":true})", "spec.enforceRoleLimits"},
      {R"({"allowedNamespaces":["Not_A_Namespace"]})", "spec.allowedNamespaces[0]"},
      {R"({"namespaceQuotas":[{"namespace":"a","maxConnections":1},{"namespace":"a","maxConnections":2}]})",
       "spec.namespaceQuotas[1].namespace"},
      {R"({"credentialsSecretRef":{"name":"x"}})", "spec.credentialsSecretRef.namespace"},
      {R"({"observeIntervalSeconds":1})", "spec.observeIntervalSeconds"},
      {R"({"typo":1})", "spec.typo"},
      {R"({"authQuery":{"memberOf":"pooler"}})", "spec.authQuery.memberOf"},  // no credentials
      {R"({"credentialsSecretRef":{"namespace":"ops","name":"admin"},
           "authQuery":{"memberOf":"pooler users"}})",
       "spec.authQuery.memberOf"},
      {R"({"credentialsSecretRef":{"namespace":"ops","name":"admin"},
           "authQuery":{"memberOf":"pg_monitor"}})",
       "spec.authQuery.memberOf"},
      {R"({"credentialsSecretRef":{"namespace":"ops","name":"admin"},
           "authQuery":{"memberOf":"poolkeeper_auth"}})",
       "spec.authQuery.memberOf"},
      {R"({"credentialsSecretRef":{"namespace":"ops","name":"admin"},
           "authQuery":{"memberOf":""}})",
       "spec.authQuery.memberOf"},
      {R"({"authQuery":{"loginRole":"x"}})", "spec.authQuery.loginRole"},
  };
  for (const Case& c : cases) {
    json input = Minimal();
    input["spec"].merge_patch(json::parse(c.patch));
    auto server = ParsePostgresServer(input);
    ASSERT_FALSE(server) << c.patch;
    EXPECT_TRUE(std::ranges::any_of(server.error().fields,
                                    [&](const FieldIssue& f) { return f.field == c.field; }))
        << c.patch << ": " << server.error().message;
  }
}

// Unset, every login role the lookup allows may log in, as before the field existed.
TEST(ParsePostgresServer, ReadsTheAuthQueryMembershipGate) {
  json input = Minimal();
  input["spec"]["credentialsSecretRef"] = {{"namespace", "ops"}, {"name", "admin"}};
  auto open = ParsePostgresServer(input);
  ASSERT_TRUE(open) << open.error().message;
  EXPECT_EQ(open->spec.auth_query_member_of, "");
  input["spec"]["authQuery"] = {{"memberOf", "Pooler_Users"}};
  auto gated = ParsePostgresServer(input);
  ASSERT_TRUE(gated) << gated.error().message;
  EXPECT_EQ(gated->spec.auth_query_member_of, "Pooler_Users");  // case kept: it is quoted in SQL
}

// Whether the operator set authQuery up through this server (who manages a shared auth role).
TEST(ParsePostgresServer, ReadsWhetherAuthQueryIsRecordedAsSetUp) {
  struct Case {
    json status;
    bool set_up;
  };
  const std::vector<Case> cases = {
      {json::object(), false},
      {{{"authQuery", {{"databases", json::array()}, {"secret", ""}}}}, false},
      {{{"authQuery", {{"databases", {"orders"}}}}}, true},
      {{{"authQuery", {{"secret", "poolkeeper-system/poolkeeper-auth-main"}}}}, true},
      {{{"authQuery", "garbage"}}, false},
  };
  for (const auto& c : cases) {
    json input = Minimal();
    input["status"] = c.status;
    auto server = ParsePostgresServer(input);
    ASSERT_TRUE(server) << server.error().message;
    EXPECT_EQ(server->auth_query_set_up, c.set_up) << c.status.dump();
  }
}

TEST(ParsePostgresServer, ReadsTheRecordedObservationAndReachability) {
  ServerObservation seen{
      80, 3, 0, "15.18", "7001", 4, {{"app", 10}}, {{"shop", 20}}, "2026-11-30T06:00:00Z"};
  json input = Minimal();
  input["status"] = {{"observed", ObservationToJson(seen)},
                     {"conditions", {{{"type", "Reachable"}, {"status", "False"}}}}};
  auto server = ParsePostgresServer(input);
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_TRUE(server->observed);
  EXPECT_EQ(*server->observed, seen);
  EXPECT_TRUE(server->unreachable);
}

TEST(EndpointKey, OneNameWhateverTheCaseOrTrailingDot) {
  EXPECT_EQ(EndpointKey("DB.Example.internal.", 5432), "db.example.internal:5432");
  EXPECT_EQ(EndpointKey("db.example.internal", 5432), "db.example.internal:5432");
  EXPECT_EQ(ServerRefKey("main"), "postgresserver/main");
}

}  // namespace
}  // namespace poolkeeper::api
