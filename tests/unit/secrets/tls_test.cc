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

}  // namespace
}  // namespace poolkeeper::secrets
