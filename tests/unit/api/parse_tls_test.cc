// spec.tls: defaults, what each field becomes, and the older spelling
// pooler.parameters.server_tls_sslmode. Cases that both the CRD schema and the operator refuse are
// in testdata/invalid_pools.yaml.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "api/parse.h"
#include "yaml/yaml.h"

namespace poolkeeper::api {
namespace {

using nlohmann::json;

json Pool(const std::string& patch) {
  std::ifstream in(std::string(POOLKEEPER_TESTDATA_DIR) + "/valid_pool.yaml");
  std::stringstream text;
  text << in.rdbuf();
  auto docs = yaml::ParseYamlDocuments(text.str(), "valid_pool.yaml");
  EXPECT_TRUE(docs.has_value());
  json pool = docs->front();
  pool.merge_patch(json::parse(patch));
  return pool;
}

std::string Fields(const Error& error) {
  std::string out;
  for (const auto& issue : error.fields) out += issue.field + ": " + issue.message + "\n";
  return out;
}

TEST(ParseTls, NoTlsBlockLeavesBothSidesToPgBouncer) {
  auto pool = ParseConnectionPool(Pool("{}"));
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  EXPECT_FALSE(pool->spec.tls.client.has_value());
  EXPECT_FALSE(pool->spec.tls.server.has_value());
}

TEST(ParseTls, ClientDefaultsToRequireAndTls12) {
  auto pool = ParseConnectionPool(
      Pool(R"({"spec":{"tls":{"client":{"certificateSecretRef":{"name":"orders-tls"}}}}})"));
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  ASSERT_TRUE(pool->spec.tls.client.has_value());
  EXPECT_EQ(pool->spec.tls.client->ssl_mode, SslMode::kRequire);
  EXPECT_EQ(pool->spec.tls.client->certificate_secret_name, "orders-tls");
  EXPECT_EQ(pool->spec.tls.client->min_version, TlsVersion::kTls12);
}

TEST(ParseTls, ReadsEveryField) {
  auto pool = ParseConnectionPool(Pool(R"({"spec":{"tls":{
      "client":{"sslMode":"verify-full","certificateSecretRef":{"name":"orders-tls"},
                "minProtocolVersion":"TLSv1.3"},
      "server":{"sslMode":"verify-full","caRef":{"configMapName":"db-ca","key":"root.pem"}}}}})"));
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  const TlsSpec& tls = pool->spec.tls;
  EXPECT_EQ(tls.client->ssl_mode, SslMode::kVerifyFull);
  EXPECT_EQ(tls.client->min_version, TlsVersion::kTls13);
  EXPECT_EQ(tls.server->ssl_mode, SslMode::kVerifyFull);
  ASSERT_TRUE(tls.server->ca_ref.has_value());
  EXPECT_EQ(tls.server->ca_ref->config_map_name, "db-ca");
  EXPECT_EQ(tls.server->ca_ref->secret_name, "");
  EXPECT_EQ(tls.server->ca_ref->key, "root.pem");
}

TEST(ParseTls, ServerCaKeyDefaultsToCaCrt) {
  auto pool = ParseConnectionPool(Pool(
      R"({"spec":{"tls":{"server":{"sslMode":"verify-ca","caRef":{"secretName":"db-ca"}}}}})"));
  ASSERT_TRUE(pool.has_value()) << pool.error().message;
  EXPECT_EQ(pool->spec.tls.server->ca_ref->secret_name, "db-ca");
  EXPECT_EQ(pool->spec.tls.server->ca_ref->key, "ca.crt");
}

// Pools written before spec.tls keep working: the parameter is read as spec.tls.server.sslMode,
// and is no longer a [pgbouncer] parameter of its own.
TEST(ParseTls, OlderServerSslModeParameterStillWorksForModesWithoutACa) {
  for (const char* mode : {"disable", "allow", "prefer", "require"}) {
    auto pool = ParseConnectionPool(
        Pool(std::string(R"({"spec":{"pooler":{"parameters":{"server_tls_sslmode":")") + mode +
             R"("}}}})"));
    ASSERT_TRUE(pool.has_value()) << mode << ": " << pool.error().message;
    ASSERT_TRUE(pool->spec.tls.server.has_value()) << mode;
    EXPECT_EQ(SslModeName(pool->spec.tls.server->ssl_mode), mode);
    EXPECT_FALSE(pool->spec.tls.server->ca_ref.has_value());
    EXPECT_FALSE(pool->spec.pooler.parameters.contains("server_tls_sslmode")) << mode;
  }
}

TEST(ParseTls, OlderServerSslModeParameterIsRefusedWhereItCannotWork) {
  struct Case {
    const char* patch;
    const char* message_part;
  };
  const Case cases[] = {
      {R"({"spec":{"pooler":{"parameters":{"server_tls_sslmode":"verify-full"}}}})",
       "spec.tls.server.caRef"},
      {R"({"spec":{"pooler":{"parameters":{"server_tls_sslmode":"sometimes"}}}})",
       "must be one of"},
      {R"({"spec":{"pooler":{"parameters":{"server_tls_sslmode":"require"}},
           "tls":{"server":{"sslMode":"require"}}}})",
       "spec.tls.server.sslMode only"},
  };
  for (const auto& c : cases) {
    auto pool = ParseConnectionPool(Pool(c.patch));
    ASSERT_FALSE(pool.has_value()) << c.patch;
    ASSERT_EQ(pool.error().fields.size(), 1u) << Fields(pool.error());
    EXPECT_EQ(pool.error().fields[0].field, "spec.pooler.parameters.server_tls_sslmode");
    EXPECT_NE(pool.error().fields[0].message.find(c.message_part), std::string::npos)
        << Fields(pool.error());
  }
}

// A verifying mode needs a CA: the pool's own caRef, or for a pool on a PostgresServer the
// server's (placement then checks the server names one: budget/servers_test.cc).
TEST(ParseTls, VerifyingServerModeNeedsACaOfThePoolOrOfItsPostgresServer) {
  struct Case {
    const char* name;
    const char* patch;
    bool valid;
  };
  const Case cases[] = {
      {"inline server, no caRef", R"({"spec":{"tls":{"server":{"sslMode":"verify-full"}}}})",
       false},
      {"inline server, verify-ca, no caRef",
       R"({"spec":{"tls":{"server":{"sslMode":"verify-ca"}}}})", false},
      {"inline server with caRef",
       R"({"spec":{"tls":{"server":{"sslMode":"verify-full","caRef":{"secretName":"db-ca"}}}}})",
       true},
      {"on a PostgresServer, no caRef",
       R"({"spec":{"server":null,"serverRef":{"name":"main"},
           "tls":{"server":{"sslMode":"verify-full"}}}})",
       true},
      {"on a PostgresServer with its own caRef",
       R"({"spec":{"server":null,"serverRef":{"name":"main"},
           "tls":{"server":{"sslMode":"verify-ca","caRef":{"configMapName":"db-ca"}}}}})",
       true},
      {"require needs none", R"({"spec":{"tls":{"server":{"sslMode":"require"}}}})", true},
  };
  for (const auto& c : cases) {
    auto pool = ParseConnectionPool(Pool(c.patch));
    ASSERT_EQ(pool.has_value(), c.valid) << c.name << ": " << (pool ? "" : Fields(pool.error()));
    if (c.valid) {
      EXPECT_FALSE(pool->spec.tls.server->ca_from_server) << c.name << ": only placement sets it";
      continue;
    }
    ASSERT_EQ(pool.error().fields.size(), 1u) << Fields(pool.error());
    EXPECT_EQ(pool.error().fields[0].field, "spec.tls.server.caRef");
    EXPECT_NE(pool.error().fields[0].message.find("spec.caSecretRef"), std::string::npos)
        << Fields(pool.error());
  }
}

TEST(ParseTls, UnknownFieldsAreNamed) {
  auto pool = ParseConnectionPool(Pool(R"({"spec":{"tls":{"clients":{}}}})"));
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().fields.at(0).field, "spec.tls.clients") << Fields(pool.error());
}

}  // namespace
}  // namespace poolkeeper::api
