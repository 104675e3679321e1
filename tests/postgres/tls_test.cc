// The postgres tier for spec.tls (issue 15): the real PgBouncer 1.18 runs the pgbouncer.ini that
// render::RenderIni writes for a pool with TLS, its certificate files laid out as the pod mounts
// them (render.h's kClientTlsDir and kServerCaDir, rewritten to a test directory like every other
// path the harness rewrites), in front of a real PostgreSQL. Certificates come from a throwaway CA
// made with the openssl command line.
#include <gtest/gtest.h>
#include <spdlog/fmt/fmt.h>

#include <fstream>
#include <sstream>

#include "api/connection_pool.h"
#include "budget/planner.h"
#include "harness.h"
#include "render/render.h"

namespace poolkeeper::pgtest {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

constexpr char kOpenssl[] = "/usr/bin/openssl";  // RunToCompletion takes a path, not a name

// A CA and the certificates it signs, made with `openssl` as the service user in a temp dir.
class TestCa {
 public:
  static Outcome<std::unique_ptr<TestCa>> Make(const std::string& name) {
    std::unique_ptr<TestCa> ca(new TestCa(name));
    auto done = ca->Run({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca->Path("ca.key"),
                         "-out", ca->Path("ca.crt"), "-days", "2", "-subj", "/CN=" + name});
    if (!done) return std::unexpected(done.error());
    return ca;
  }
  std::string Path(const std::string& file) const { return dir_.path() + "/" + file; }
  std::string CaPem() const { return ReadAll(Path("ca.crt")); }

  // `stem`.crt and `stem`.key, for subject alternative names like "IP:127.0.0.1,DNS:db".
  Outcome<void> Issue(const std::string& stem, const std::string& sans) {
    dir_.WriteFile(stem + ".ext", "subjectAltName=" + sans + "\n", 0644);
    auto request =
        Run({kOpenssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", Path(stem + ".key"), "-out", Path(stem + ".csr"), "-subj", "/CN=" + stem});
    if (!request) return request;
    return Run({kOpenssl, "x509", "-req", "-in", Path(stem + ".csr"), "-CA", Path("ca.crt"),
                "-CAkey", Path("ca.key"), "-CAcreateserial", "-out", Path(stem + ".crt"), "-days",
                "2", "-extfile", Path(stem + ".ext")});
  }

 private:
  explicit TestCa(const std::string& name) : dir_("ca-" + name) {}
  Outcome<void> Run(const std::vector<std::string>& argv) {
    return RunToCompletion(argv, dir_.path() + "/openssl.log", 30s);
  }
  TempDir dir_;
};

// What a pod mounts for spec.tls: <dir>/client/{tls.crt,tls.key,ca.crt}, <dir>/server-ca/ca.crt.
class TlsMounts {
 public:
  TlsMounts() : dir_("tls-mounts") {
    dir_.Subdir("client");
    dir_.Subdir("server-ca");
  }
  void Client(const TestCa& ca, const std::string& stem) {
    dir_.WriteFile("client/tls.crt", ReadAll(ca.Path(stem + ".crt")), 0440);
    dir_.WriteFile("client/tls.key", ReadAll(ca.Path(stem + ".key")), 0440);
    dir_.WriteFile("client/ca.crt", ca.CaPem(), 0440);
  }
  void ServerCa(const TestCa& ca) { dir_.WriteFile("server-ca/ca.crt", ca.CaPem(), 0440); }
  // The rendered ini with the pod's mount paths pointing here.
  std::string Rewrite(const std::string& ini) const {
    std::string out = Replace(ini, render::kClientTlsDir, dir_.path() + "/client");
    return Replace(out, render::kServerCaDir, dir_.path() + "/server-ca");
  }

 private:
  TempDir dir_;
};

api::ConnectionPool PoolFor(const PostgresServer& server) {
  api::ConnectionPool pool;
  pool.metadata.name = "tls";
  pool.metadata.namespace_ = "pg-tier";
  pool.spec.server.host = "127.0.0.1";
  pool.spec.server.port = server.port();
  pool.spec.server.max_connections = server.options().max_connections;
  pool.spec.server.superuser_reserved_connections = server.options().superuser_reserved_connections;
  pool.spec.pooler.instances = 1;
  pool.spec.pooler.max_surge = 0;
  pool.spec.pooler.pgbouncer_version = {1, 18};
  pool.spec.pooler.timeouts.query_wait_timeout = 5;  // a client waiting on a failing server
  pool.spec.databases = {{.name = "appdb", .dbname = "appdb"}};
  pool.spec.users = {{.name = "app_user", .password_secret_ref = {"app", "password"}}};
  return pool;
}

constexpr char kPassword[] = "tls-tier-password";

struct Pooler {
  std::string ini;  // as rendered
  std::unique_ptr<PgBouncer> bouncer;
};

Outcome<Pooler> StartPooler(PostgresServer& server, const api::ConnectionPool& pool,
                            const TlsMounts& mounts) {
  if (auto role = server.CreateRole("app_user", kPassword); !role)
    return std::unexpected(role.error());
  if (auto db = server.CreateDatabase("appdb", "app_user"); !db) return std::unexpected(db.error());
  auto plan = budget::PlanPools({pool});
  if (plan.pools.size() != 1) return std::unexpected("PlanPools: expected one pool");
  Pooler pooler{render::RenderIni(pool, plan.pools.front()), nullptr};
  auto userlist = render::RenderUserlist(pool, {{"app_user", kPassword}});
  if (!userlist) return std::unexpected(userlist.error().ToString());
  auto bouncer = PgBouncer::Start(mounts.Rewrite(pooler.ini), *userlist);
  if (!bouncer) return std::unexpected(bouncer.error());
  pooler.bouncer = std::move(*bouncer);
  return pooler;
}

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

class TlsTier : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = MissingPrerequisite()) GTEST_SKIP() << *missing;
  }
};

// Clients -> pgbouncer: the pool's certificate verifies under verify-full (the pooler's address is
// an IP SAN), another CA does not, and `require` turns plaintext clients away.
TEST_F(TlsTier, ClientVerifyFullWorksWithThePoolsCaOnlyAndRequireRefusesPlaintext) {
  auto server = PostgresServer::Start({.max_connections = 30});
  ASSERT_TRUE(server) << server.error();
  auto pool_ca = TestCa::Make("pool-ca");
  ASSERT_TRUE(pool_ca) << pool_ca.error();
  ASSERT_TRUE((*pool_ca)->Issue("pooler", "IP:127.0.0.1,DNS:tls.pg-tier.svc"));
  auto other_ca = TestCa::Make("other-ca");
  ASSERT_TRUE(other_ca) << other_ca.error();
  TlsMounts mounts;
  mounts.Client(**pool_ca, "pooler");

  api::ConnectionPool pool = PoolFor(**server);
  pool.spec.tls.client =
      api::ClientTlsSpec{.ssl_mode = api::SslMode::kRequire, .certificate_secret_name = "tls"};
  auto pooler = StartPooler(**server, pool, mounts);
  ASSERT_TRUE(pooler) << pooler.error();
  EXPECT_TRUE(Has(pooler->ini, "client_tls_sslmode = require\n")) << pooler->ini;
  EXPECT_TRUE(Has(pooler->ini, "client_tls_protocols = tlsv1.2,tlsv1.3\n")) << pooler->ini;
  const std::string base = pooler->bouncer->ConnInfo("appdb", "app_user", kPassword);

  auto verified = PgConnection::Connect(
      base + " sslmode=verify-full sslrootcert=" + (*pool_ca)->Path("ca.crt"));
  ASSERT_TRUE(verified) << verified.error() << "\n" << pooler->bouncer->LogTail();
  auto answer = verified->QueryValue("SELECT 6 * 7");
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(*answer, "42");

  auto wrong_ca = PgConnection::Connect(
      base + " sslmode=verify-full sslrootcert=" + (*other_ca)->Path("ca.crt"));
  ASSERT_FALSE(wrong_ca);
  EXPECT_TRUE(Has(wrong_ca.error(), "certificate verify failed")) << wrong_ca.error();

  auto plaintext = PgConnection::Connect(base + " sslmode=disable");
  ASSERT_FALSE(plaintext);
  EXPECT_TRUE(Has(plaintext.error(), "SSL required")) << plaintext.error();

  // TLS 1.1 is not offered (TLS 1.2+ only).
  auto old_tls = PgConnection::Connect(base + " sslmode=require ssl_max_protocol_version=TLSv1.1");
  EXPECT_FALSE(old_tls);
}

// With minProtocolVersion TLSv1.3 a TLS 1.2 client is turned away.
TEST_F(TlsTier, ClientMinimumTls13RefusesTls12) {
  auto server = PostgresServer::Start({.max_connections = 30});
  ASSERT_TRUE(server) << server.error();
  auto ca = TestCa::Make("pool-ca");
  ASSERT_TRUE(ca) << ca.error();
  ASSERT_TRUE((*ca)->Issue("pooler", "IP:127.0.0.1"));
  TlsMounts mounts;
  mounts.Client(**ca, "pooler");
  api::ConnectionPool pool = PoolFor(**server);
  pool.spec.tls.client = api::ClientTlsSpec{.ssl_mode = api::SslMode::kRequire,
                                            .certificate_secret_name = "tls",
                                            .min_version = api::TlsVersion::kTls13};
  auto pooler = StartPooler(**server, pool, mounts);
  ASSERT_TRUE(pooler) << pooler.error();
  const std::string base = pooler->bouncer->ConnInfo("appdb", "app_user", kPassword) +
                           " sslmode=verify-full sslrootcert=" + (*ca)->Path("ca.crt");
  EXPECT_TRUE(PgConnection::Connect(base + " ssl_min_protocol_version=TLSv1.3"));
  EXPECT_FALSE(PgConnection::Connect(base + " ssl_max_protocol_version=TLSv1.2"));
}

// pgbouncer -> PostgreSQL: the server takes TCP logins only over TLS (hostssl), with a
// certificate from the test CA; pgbouncer verifies it (verify-full, CA from spec.tls.server.caRef)
// and logs in, and refuses a server whose certificate names another host.
Outcome<std::unique_ptr<PostgresServer>> StartTlsServer(const TestCa& ca, const std::string& stem) {
  return PostgresServer::Start(
      {.max_connections = 30,
       .settings = {"ssl=on", "ssl_cert_file=" + ca.Path(stem + ".crt"),
                    "ssl_key_file=" + ca.Path(stem + ".key")},
       .hba = "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"});
}

api::ConnectionPool VerifyFullPool(const PostgresServer& server) {
  api::ConnectionPool pool = PoolFor(server);
  pool.spec.tls.server = api::ServerTlsSpec{.ssl_mode = api::SslMode::kVerifyFull,
                                            .ca_ref = api::CaRef{.secret_name = "db-ca"}};
  return pool;
}

TEST_F(TlsTier, PoolerLogsInToATlsOnlyServerWithVerifyFull) {
  auto ca = TestCa::Make("db-ca");
  ASSERT_TRUE(ca) << ca.error();
  ASSERT_TRUE((*ca)->Issue("db", "IP:127.0.0.1,DNS:db.example"));
  auto server = StartTlsServer(**ca, "db");
  ASSERT_TRUE(server) << server.error();
  // The server refuses plaintext TCP: what gets through below went over TLS.
  auto plaintext = PgConnection::Connect((*server)->SuperuserConnInfo() + " sslmode=disable");
  ASSERT_FALSE(plaintext);
  EXPECT_TRUE(Has(plaintext.error(), "no encryption")) << plaintext.error();

  TlsMounts mounts;
  mounts.ServerCa(**ca);
  auto pooler = StartPooler(**server, VerifyFullPool(**server), mounts);
  ASSERT_TRUE(pooler) << pooler.error();
  EXPECT_TRUE(Has(pooler->ini, "server_tls_sslmode = verify-full\n")) << pooler->ini;
  EXPECT_TRUE(Has(pooler->ini, "server_tls_ca_file = /etc/pgbouncer-tls/server-ca/ca.crt\n"));

  auto client = PgConnection::Connect(pooler->bouncer->ConnInfo("appdb", "app_user", kPassword));
  ASSERT_TRUE(client) << client.error() << "\n" << pooler->bouncer->LogTail();
  auto ssl = client->QueryValue("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  ASSERT_TRUE(ssl) << ssl.error() << "\n" << pooler->bouncer->LogTail();
  EXPECT_EQ(*ssl, "t");
}

TEST_F(TlsTier, PoolerRefusesAServerWhoseCertificateNamesAnotherHost) {
  auto ca = TestCa::Make("db-ca");
  ASSERT_TRUE(ca) << ca.error();
  ASSERT_TRUE((*ca)->Issue("elsewhere", "DNS:db.example"));  // valid CA, wrong name
  auto server = StartTlsServer(**ca, "elsewhere");
  ASSERT_TRUE(server) << server.error();
  TlsMounts mounts;
  mounts.ServerCa(**ca);
  auto pooler = StartPooler(**server, VerifyFullPool(**server), mounts);
  ASSERT_TRUE(pooler) << pooler.error();

  // PgBouncer accepts the client, then cannot log in to the server: the client gets an error
  // (at login or at its first query) and never an answer from that server.
  auto client = PgConnection::Connect(pooler->bouncer->ConnInfo("appdb", "app_user", kPassword) +
                                      " connect_timeout=15");
  std::string error;
  if (client) {
    auto answer = client->QueryValue("SELECT 1");
    ASSERT_FALSE(answer) << "a query reached a server whose certificate names another host";
    error = answer.error();
  } else {
    error = client.error();
  }
  EXPECT_FALSE(error.empty());
  std::string log = pooler->bouncer->LogTail(20000);
  EXPECT_TRUE(Has(log, "TLS") || Has(log, "tls") || Has(log, "certificate")) << log;
  EXPECT_TRUE(pooler->bouncer->Running()) << "a bad server certificate must not stop pgbouncer";
}

}  // namespace
}  // namespace poolkeeper::pgtest
