// spec.tls in pgbouncer.ini and the pod: golden files, fixed file paths, the volumes' modes, and
// nothing from the referenced objects' names in the ini.
#include <gtest/gtest.h>

#include <string>

#include "pools.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace {

using nlohmann::json;
using testing::ExpectGolden;
using testing::OrdersPasswords;
using testing::OrdersPlan;
using testing::OrdersPool;

// orders with both sides verified: clients present certificates, the server's is checked against
// a CA under a key of the user's choosing.
api::ConnectionPool TlsPool() {
  api::ConnectionPool pool = OrdersPool();
  pool.spec.tls.client = api::ClientTlsSpec{.ssl_mode = api::SslMode::kVerifyFull,
                                            .certificate_secret_name = "orders-tls"};
  pool.spec.tls.server =
      api::ServerTlsSpec{.ssl_mode = api::SslMode::kVerifyFull,
                         .ca_ref = api::CaRef{.secret_name = "db-ca", .key = "root.pem"}};
  return pool;
}

OwnedObjects Build(const api::ConnectionPool& pool) {
  auto objects = BuildObjects(pool, OrdersPlan(), OrdersPasswords(), "rev-1");
  EXPECT_TRUE(objects.has_value()) << objects.error().message;
  return objects.value_or(OwnedObjects{});
}

const json* Find(const json& list, const std::string& name) {
  for (const auto& item : list) {
    if (item.value("name", "") == name) return &item;
  }
  return nullptr;
}

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(RenderTls, GoldenIni) {
  ExpectGolden("orders_tls_1.18.ini", RenderIni(TlsPool(), OrdersPlan()));
}

TEST(RenderTls, GoldenPodSpec) {
  ExpectGolden("orders_tls_1.18.pod.json", Build(TlsPool()).pod_template["spec"].dump(2) + "\n");
}

TEST(RenderTls, WithoutTlsNothingTlsIsRendered) {
  const std::string ini = RenderIni(OrdersPool(), OrdersPlan());
  EXPECT_FALSE(Contains(ini, "tls")) << ini;
  const json spec = Build(OrdersPool()).pod_template["spec"];
  EXPECT_EQ(spec["volumes"].size(), 2u);
  EXPECT_EQ(spec["containers"][0]["volumeMounts"].size(), 2u);
}

TEST(RenderTls, ClientModesProtocolsAndCaFile) {
  struct Case {
    api::SslMode mode;
    api::TlsVersion min_version;
    bool ca_file;
    const char* protocols;
  };
  const Case cases[] = {
      {api::SslMode::kPrefer, api::TlsVersion::kTls12, false, "tlsv1.2,tlsv1.3"},
      {api::SslMode::kRequire, api::TlsVersion::kTls12, false, "tlsv1.2,tlsv1.3"},
      {api::SslMode::kRequire, api::TlsVersion::kTls13, false, "tlsv1.3"},
      {api::SslMode::kVerifyCa, api::TlsVersion::kTls12, true, "tlsv1.2,tlsv1.3"},
      {api::SslMode::kVerifyFull, api::TlsVersion::kTls12, true, "tlsv1.2,tlsv1.3"},
  };
  for (const auto& c : cases) {
    api::ConnectionPool pool = OrdersPool();
    pool.spec.tls.client = api::ClientTlsSpec{
        .ssl_mode = c.mode, .certificate_secret_name = "orders-tls", .min_version = c.min_version};
    const std::string mode(api::SslModeName(c.mode));
    const std::string ini = RenderIni(pool, OrdersPlan());
    EXPECT_TRUE(Contains(ini, "\nclient_tls_sslmode = " + mode + "\n")) << mode;
    EXPECT_TRUE(Contains(ini, "\nclient_tls_cert_file = /etc/pgbouncer-tls/client/tls.crt\n"));
    EXPECT_TRUE(Contains(ini, "\nclient_tls_key_file = /etc/pgbouncer-tls/client/tls.key\n"));
    EXPECT_TRUE(Contains(ini, "\nclient_tls_protocols = " + std::string(c.protocols) + "\n"));
    // Below verify-ca the certificate stands in for a CA that is never used (PgBouncer would
    // otherwise load the system bundle, which a minimal image lacks).
    EXPECT_TRUE(Contains(ini, c.ca_file
                                  ? "\nclient_tls_ca_file = /etc/pgbouncer-tls/client/ca.crt\n"
                                  : "\nclient_tls_ca_file = /etc/pgbouncer-tls/client/tls.crt\n"))
        << mode;
    EXPECT_FALSE(Contains(ini, "server_tls")) << "no server block: PgBouncer's defaults";

    const json spec = Build(pool).pod_template["spec"];
    const json* volume = Find(spec["volumes"], "client-tls");
    ASSERT_NE(volume, nullptr);
    EXPECT_EQ((*volume)["secret"]["secretName"], "orders-tls");
    EXPECT_EQ((*volume)["secret"]["defaultMode"], 0440) << "the key: owner and fsGroup only";
    EXPECT_EQ((*volume)["secret"]["items"].size(), c.ca_file ? 3u : 2u) << mode;
    const json* mount = Find(spec["containers"][0]["volumeMounts"], "client-tls");
    ASSERT_NE(mount, nullptr);
    EXPECT_EQ((*mount)["mountPath"], "/etc/pgbouncer-tls/client");
    EXPECT_EQ((*mount)["readOnly"], true);
  }
}

// The user's key name becomes the fixed file ca.crt: nothing of the resource reaches the ini.
TEST(RenderTls, ServerCaFromASecretOrAConfigMapIsProjectedToAFixedName) {
  for (bool secret : {true, false}) {
    api::ConnectionPool pool = OrdersPool();
    api::CaRef ca{.key = "root.pem"};
    (secret ? ca.secret_name : ca.config_map_name) = "db-ca";
    pool.spec.tls.server = api::ServerTlsSpec{.ssl_mode = api::SslMode::kVerifyCa, .ca_ref = ca};
    const std::string ini = RenderIni(pool, OrdersPlan());
    EXPECT_TRUE(Contains(ini, "\nserver_tls_sslmode = verify-ca\n"));
    EXPECT_TRUE(Contains(ini, "\nserver_tls_ca_file = /etc/pgbouncer-tls/server-ca/ca.crt\n"));
    EXPECT_FALSE(Contains(ini, "root.pem"));
    EXPECT_FALSE(Contains(ini, "db-ca"));

    const json spec = Build(pool).pod_template["spec"];
    const json* volume = Find(spec["volumes"], "server-ca");
    ASSERT_NE(volume, nullptr);
    const json& source = secret ? (*volume)["secret"] : (*volume)["configMap"];
    ASSERT_TRUE(source.is_object()) << volume->dump();
    EXPECT_EQ(source[secret ? "secretName" : "name"], "db-ca");
    EXPECT_EQ(source["defaultMode"], secret ? 0440 : 0444);
    EXPECT_EQ(source["items"], json::parse(R"([{"key":"root.pem","path":"ca.crt"}])"));
    const json* mount = Find(spec["containers"][0]["volumeMounts"], "server-ca");
    ASSERT_NE(mount, nullptr);
    EXPECT_EQ((*mount)["mountPath"], "/etc/pgbouncer-tls/server-ca");
    EXPECT_EQ((*mount)["readOnly"], true);
  }
}

// The PostgresServer's CA (placement set ca_from_server): copied into the pool's own ConfigMap,
// projected like any ConfigMap CA, and hashed, so a new CA rolls the pods; without it nothing is
// built.
TEST(RenderTls, ServerCaFromThePostgresServerIsCopiedIntoTheConfigMapAndHashed) {
  api::ConnectionPool pool = OrdersPool();
  pool.spec.tls.server = api::ServerTlsSpec{
      .ssl_mode = api::SslMode::kVerifyFull,
      .ca_ref = api::CaRef{.config_map_name = "orders-config", .key = api::kServerCaKey},
      .ca_from_server = true};
  auto built = BuildObjects(pool, OrdersPlan(), OrdersPasswords(), "rev-1", "CA-1");
  ASSERT_TRUE(built) << built.error().message;
  EXPECT_EQ(built->config_map["data"][api::kServerCaKey], "CA-1");
  EXPECT_TRUE(Contains(built->config_map["data"]["pgbouncer.ini"].get<std::string>(),
                       "\nserver_tls_ca_file = /etc/pgbouncer-tls/server-ca/ca.crt\n"));
  const json* volume = Find(built->pod_template["spec"]["volumes"], "server-ca");
  ASSERT_NE(volume, nullptr);
  EXPECT_EQ((*volume)["configMap"]["name"], "orders-config");
  EXPECT_EQ((*volume)["configMap"]["items"],
            json::parse(R"([{"key":"server-ca.crt","path":"ca.crt"}])"));

  auto renewed = BuildObjects(pool, OrdersPlan(), OrdersPasswords(), "rev-1", "CA-2");
  ASSERT_TRUE(renewed);
  EXPECT_NE(renewed->config_hash, built->config_hash) << "a new CA rolls the pods";
  EXPECT_EQ(renewed->pod_template["spec"], built->pod_template["spec"]);

  auto missing = BuildObjects(pool, OrdersPlan(), OrdersPasswords(), "rev-1", "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  ASSERT_EQ(missing.error().fields.size(), 1u);
  EXPECT_EQ(missing.error().fields[0].field, "spec.tls.server.caRef");

  // A pool that does not take the server's CA ignores one given, and its hash is as before.
  api::ConnectionPool own = TlsPool();
  auto ignored = BuildObjects(own, OrdersPlan(), OrdersPasswords(), "rev-1", "CA-1");
  ASSERT_TRUE(ignored);
  EXPECT_FALSE(ignored->config_map["data"].contains(api::kServerCaKey));
  EXPECT_EQ(ignored->config_hash, Build(own).config_hash);
}

TEST(RenderTls, ServerModeWithoutACaMountsNothing) {
  api::ConnectionPool pool = OrdersPool();
  pool.spec.tls.server = api::ServerTlsSpec{.ssl_mode = api::SslMode::kRequire};
  const std::string ini = RenderIni(pool, OrdersPlan());
  EXPECT_TRUE(Contains(ini, "\nserver_tls_sslmode = require\n"));
  EXPECT_FALSE(Contains(ini, "server_tls_ca_file"));
  EXPECT_EQ(Find(Build(pool).pod_template["spec"]["volumes"], "server-ca"), nullptr);
}

// A TLS change changes the ini, hence the config hash: the pods roll onto it.
TEST(RenderTls, ChangingTlsChangesTheConfigHash) {
  api::ConnectionPool pool = TlsPool();
  const std::string before = Build(pool).config_hash;
  pool.spec.tls.client->ssl_mode = api::SslMode::kRequire;
  EXPECT_NE(Build(pool).config_hash, before);
}

}  // namespace
}  // namespace poolkeeper::render
