// ResolveTls: the TLS Secrets of a pool follow the opt-in label like the passwords, the keys
// pgbouncer reads must be there, and the revision follows the certificates, never the key.
#include <gtest/gtest.h>

#include "secrets/secrets.h"

namespace poolkeeper::secrets {
namespace {

std::map<std::string, std::string> Labelled() {
  return {{std::string(kExposeLabel), std::string(kExposeValue)}};
}

api::ConnectionPool TlsPool(api::SslMode client_mode = api::SslMode::kRequire) {
  api::ConnectionPool pool;
  pool.metadata.namespace_ = "shop";
  pool.spec.tls.client =
      api::ClientTlsSpec{.ssl_mode = client_mode, .certificate_secret_name = "orders-tls"};
  pool.spec.tls.server =
      api::ServerTlsSpec{.ssl_mode = api::SslMode::kVerifyFull,
                         .ca_ref = api::CaRef{.secret_name = "db-ca", .key = "root.pem"}};
  return pool;
}

Secret Certificate(std::string crt = "CERT-1", std::string key = "KEY-1") {
  return {"shop",
          "orders-tls",
          "1",
          {{"tls.crt", crt}, {"tls.key", key}, {"ca.crt", "CA"}},
          Labelled()};
}
Secret DbCa(std::string pem = "DB-CA-1") {
  return {"shop", "db-ca", "1", {{"root.pem", pem}}, Labelled()};
}

Result<std::string> Resolve(const api::ConnectionPool& pool, std::vector<Secret> list) {
  SecretMap secrets;
  for (auto& secret : list) secrets.Put(std::move(secret));
  return ResolveTls(pool, secrets);
}

TEST(ResolveTls, NoTlsSecretsNoRevision) {
  api::ConnectionPool pool;
  pool.metadata.namespace_ = "shop";
  auto revision = Resolve(pool, {});
  ASSERT_TRUE(revision) << revision.error().message;
  EXPECT_EQ(*revision, "");
  // A server block without a CA, or with a ConfigMap CA, reads no Secret either.
  pool.spec.tls.server = api::ServerTlsSpec{.ssl_mode = api::SslMode::kVerifyCa,
                                            .ca_ref = api::CaRef{.config_map_name = "db-ca"}};
  revision = Resolve(pool, {});
  ASSERT_TRUE(revision) << revision.error().message;
  EXPECT_EQ(*revision, "");
}

TEST(ResolveTls, RevisionFollowsTheCertificatesNotTheKeyNorTheResourceVersion) {
  auto base = Resolve(TlsPool(), {Certificate(), DbCa()});
  ASSERT_TRUE(base) << base.error().message;
  EXPECT_TRUE(base->starts_with("tls=")) << *base;
  EXPECT_EQ(base->find("KEY-1"), std::string::npos);
  EXPECT_EQ(base->find("CERT-1"), std::string::npos);

  Secret touched = Certificate();
  touched.resource_version = "2";  // a label edit: nothing the pods read changed
  EXPECT_EQ(*Resolve(TlsPool(), {touched, DbCa()}), *base);
  EXPECT_NE(*Resolve(TlsPool(), {Certificate("CERT-2"), DbCa()}), *base) << "renewed certificate";
  EXPECT_NE(*Resolve(TlsPool(), {Certificate(), DbCa("DB-CA-2")}), *base) << "rotated server CA";
  EXPECT_EQ(*Resolve(TlsPool(), {Certificate("CERT-1", "KEY-2"), DbCa()}), *base)
      << "the key alone never reaches the revision (a renewal changes tls.crt with it)";
}

TEST(ResolveTls, MissingOrUnexposedSecretsAndKeysNameTheField) {
  Secret unlabelled = Certificate();
  unlabelled.labels.clear();
  unlabelled.data.clear();  // how the operator's cache returns an unexposed Secret
  Secret no_key = Certificate();
  no_key.data.erase("tls.key");
  Secret no_ca = Certificate();
  no_ca.data.erase("ca.crt");
  Secret wrong_ca_key = DbCa();
  wrong_ca_key.data = {{"ca.crt", "x"}};
  struct Case {
    const char* name;
    api::ConnectionPool pool;
    std::vector<Secret> secrets;
    ErrorCode code;
    const char* field;
    const char* message_part;
  };
  const Case cases[] = {
      {"no certificate Secret",
       TlsPool(),
       {DbCa()},
       ErrorCode::kNotFound,
       "spec.tls.client.certificateSecretRef.name",
       "not found"},
      {"unlabelled certificate",
       TlsPool(),
       {unlabelled, DbCa()},
       ErrorCode::kUnauthorized,
       "spec.tls.client.certificateSecretRef.name",
       "poolkeeper.io/expose-to-pools=true"},
      {"no tls.key",
       TlsPool(),
       {no_key, DbCa()},
       ErrorCode::kNotFound,
       "spec.tls.client.certificateSecretRef.name",
       "no key \"tls.key\""},
      {"verify-ca needs ca.crt",
       TlsPool(api::SslMode::kVerifyCa),
       {no_ca, DbCa()},
       ErrorCode::kNotFound,
       "spec.tls.client.certificateSecretRef.name",
       "no key \"ca.crt\""},
      {"no server CA Secret",
       TlsPool(),
       {Certificate()},
       ErrorCode::kNotFound,
       "spec.tls.server.caRef.secretName",
       "not found"},
      {"server CA key missing",
       TlsPool(),
       {Certificate(), wrong_ca_key},
       ErrorCode::kNotFound,
       "spec.tls.server.caRef.secretName",
       "no key \"root.pem\""},
  };
  for (const auto& c : cases) {
    auto revision = Resolve(c.pool, c.secrets);
    ASSERT_FALSE(revision) << c.name;
    EXPECT_EQ(revision.error().code, c.code) << c.name;
    ASSERT_EQ(revision.error().fields.size(), 1u) << c.name;
    EXPECT_EQ(revision.error().fields[0].field, c.field) << c.name;
    EXPECT_NE(revision.error().message.find(c.message_part), std::string::npos)
        << c.name << ": " << revision.error().message;
  }
  // Without a verifying client mode, ca.crt is not needed.
  EXPECT_TRUE(Resolve(TlsPool(api::SslMode::kRequire), {no_ca, DbCa()}));
}

// A CA in a ConfigMap follows the same label and joins the revision, when the caller looks
// ConfigMaps up (the operator does; the CLI's files hold none).
TEST(ResolveTls, ConfigMapCaFollowsTheLabelAndJoinsTheRevision) {
  api::ConnectionPool pool = TlsPool();
  pool.spec.tls.server->ca_ref = api::CaRef{.config_map_name = "db-ca", .key = "root.pem"};
  auto with_maps = [&](std::vector<Secret> maps) {
    SecretMap secrets, config_maps;
    secrets.Put(Certificate());
    for (auto& map : maps) config_maps.Put(std::move(map));
    return ResolveTls(pool, secrets, &config_maps);
  };
  auto base = with_maps({DbCa()});
  ASSERT_TRUE(base) << base.error().message;
  auto rotated = with_maps({DbCa("DB-CA-2")});
  ASSERT_TRUE(rotated);
  EXPECT_NE(*rotated, *base) << "a new CA in the ConfigMap rolls the pods";

  Secret unlabelled = DbCa();
  unlabelled.labels.clear();
  Secret wrong_key = DbCa();
  wrong_key.data = {{"ca.crt", "x"}};
  struct Case {
    const char* name;
    std::vector<Secret> maps;
    ErrorCode code;
    const char* message_part;
  };
  const Case cases[] = {
      {"missing", {}, ErrorCode::kNotFound, "ConfigMap shop/db-ca not found"},
      {"unlabelled", {unlabelled}, ErrorCode::kUnauthorized, "kubectl label configmap -n shop"},
      {"no key", {wrong_key}, ErrorCode::kNotFound, "ConfigMap shop/db-ca has no key"},
  };
  for (const auto& c : cases) {
    auto revision = with_maps(c.maps);
    ASSERT_FALSE(revision) << c.name;
    EXPECT_EQ(revision.error().code, c.code) << c.name;
    ASSERT_EQ(revision.error().fields.size(), 1u) << c.name;
    EXPECT_EQ(revision.error().fields[0].field, "spec.tls.server.caRef.configMapName");
    EXPECT_NE(revision.error().message.find(c.message_part), std::string::npos)
        << c.name << ": " << revision.error().message;
  }
}

TEST(ResolveServerCa, TakesTheCertificateOfThePostgresServersSecretWithoutALabel) {
  SecretMap secrets;
  secrets.Put({"ops", "db-ca", "1", {{"ca.crt", "SERVER-CA"}}, {}});
  secrets.Put({"ops", "no-ca", "1", {{"tls.crt", "x"}}, {}});
  auto ca = ResolveServerCa("main", "ops", "db-ca", secrets);
  ASSERT_TRUE(ca) << ca.error().message;
  EXPECT_EQ(*ca, "SERVER-CA");
  for (const char* name : {"absent", "no-ca"}) {
    auto missing = ResolveServerCa("main", "ops", name, secrets);
    ASSERT_FALSE(missing) << name;
    EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
    ASSERT_EQ(missing.error().fields.size(), 1u);
    EXPECT_EQ(missing.error().fields[0].field, "spec.tls.server.caRef");
    EXPECT_NE(missing.error().message.find("PostgresServer \"main\""), std::string::npos)
        << missing.error().message;
  }
}

TEST(ParseConfigMap, DataIsTakenAsTextWithTheLabels) {
  auto map = ParseConfigMap(nlohmann::json::parse(R"({"metadata":{"name":"db-ca",
      "namespace":"shop","resourceVersion":"7","labels":{"poolkeeper.io/expose-to-pools":"true"}},
      "data":{"ca.crt":"-----BEGIN CERTIFICATE-----"}})"));
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(map->data.at("ca.crt"), "-----BEGIN CERTIFICATE-----");
  EXPECT_TRUE(Exposed(*map));
  EXPECT_EQ(map->resource_version, "7");
}

}  // namespace
}  // namespace poolkeeper::secrets
