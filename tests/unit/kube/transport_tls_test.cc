// The real transport (Boost.Beast over OpenSSL) against a real TLS server on loopback: which
// certificates it accepts, and that a refused one never sees the request or its token.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "kube/credentials.h"
#include "kube/transport.h"
#include "tls_test_server.h"

namespace poolkeeper::kube {
namespace {

using testing::KeyAndCert;
using testing::MakeCert;
using testing::TlsServer;

constexpr char kToken[] = "s3cret-token-value";

// Points OpenSSL's default verify paths (what cpprestsdk loads into every context) at `ca`, as a
// system store that holds some other CA would be, and puts them back afterwards.
class DefaultStore {
 public:
  explicit DefaultStore(const KeyAndCert& ca) {
    dir_ = std::filesystem::temp_directory_path() /
           ("poolkeeper-default-store-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_ / "certs");
    std::ofstream(dir_ / "ca.pem") << ca.CertPem();
    for (const char* name : {"SSL_CERT_FILE", "SSL_CERT_DIR"}) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    }
    setenv("SSL_CERT_FILE", (dir_ / "ca.pem").c_str(), 1);
    setenv("SSL_CERT_DIR", (dir_ / "certs").c_str(), 1);
  }
  ~DefaultStore() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
    std::filesystem::remove_all(dir_);
  }

 private:
  std::filesystem::path dir_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

ClusterConfig Config(const TlsServer& server, const std::string& ca_pem) {
  ClusterConfig config;
  config.server = "https://127.0.0.1:" + std::to_string(server.port());
  config.ca_pem = ca_pem;
  config.ca_origin = "clusters[\"test\"].cluster.certificate-authority-data";
  config.token = kToken;
  return config;
}

Result<HttpResponse> Get(const ClusterConfig& config) {
  auto transport = MakeHttpTransport(config);
  if (!transport) return std::unexpected(transport.error());
  return (*transport)->Send({.method = "GET", .path = "/api", .timeout = std::chrono::seconds(10)});
}

bool SawToken(TlsServer& server) {
  for (const auto& connection : server.Connections()) {
    if (connection.request.find(kToken) != std::string::npos) return true;
  }
  return false;
}

TEST(HttpTransportTls, RefusesAServerFromTheDefaultStoreWhenTheKubeconfigNamesAnotherCa) {
  KeyAndCert other_ca = MakeCert("other CA", nullptr);      // X: in the system store
  KeyAndCert cluster_ca = MakeCert("cluster CA", nullptr);  // Y: the kubeconfig's
  TlsServer server(MakeCert("impostor", &other_ca, "IP:127.0.0.1"));
  DefaultStore store(other_ca);

  auto response = Get(Config(server, cluster_ca.CertPem()));

  ASSERT_FALSE(response.has_value()) << "status " << response->status;
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(response.error().message, "GET /api: TLS handshake: certificate verify failed");
  EXPECT_FALSE(SawToken(server));
  for (const auto& connection : server.Connections()) EXPECT_EQ(connection.request, "");
}

TEST(HttpTransportTls, TrustsTheConfiguredCaAndSendsTheToken) {
  KeyAndCert cluster_ca = MakeCert("cluster CA", nullptr);
  TlsServer server(MakeCert("apiserver", &cluster_ca, "IP:127.0.0.1"));

  auto response = Get(Config(server, cluster_ca.CertPem()));

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(SawToken(server));
}

TEST(HttpTransportTls, RefusesACertificateOfTheRightCaForAnotherName) {
  KeyAndCert cluster_ca = MakeCert("cluster CA", nullptr);
  TlsServer server(MakeCert("elsewhere", &cluster_ca, "DNS:elsewhere.example,IP:10.9.9.9"));

  auto response = Get(Config(server, cluster_ca.CertPem()));

  ASSERT_FALSE(response.has_value());
  EXPECT_FALSE(SawToken(server));
}

TEST(HttpTransportTls, ChecksAndSendsTlsServerNameInsteadOfTheUrlHost) {
  KeyAndCert cluster_ca = MakeCert("cluster CA", nullptr);
  TlsServer server(MakeCert("apiserver", &cluster_ca, "DNS:kubernetes.default.svc"));
  ClusterConfig config = Config(server, cluster_ca.CertPem());

  ASSERT_FALSE(Get(config).has_value()) << "the certificate does not name 127.0.0.1";
  config.tls_server_name = "kubernetes.default.svc";
  auto response = Get(config);

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(server.Connections().back().server_name, "kubernetes.default.svc");
}

TEST(HttpTransportTls, InsecureSkipTlsVerifyWithoutCaStillConnects) {
  KeyAndCert unknown_ca = MakeCert("unknown CA", nullptr);
  TlsServer server(MakeCert("apiserver", &unknown_ca, "DNS:elsewhere.example"));
  ClusterConfig config = Config(server, "");
  config.insecure_skip_tls_verify = true;

  auto response = Get(config);

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

TEST(HttpTransportTls, ACaWithoutCertificatesIsAnErrorNamingItsField) {
  ClusterConfig config;
  config.server = "https://127.0.0.1:1";
  config.ca_pem = "not a certificate";
  config.ca_origin = "clusters[\"test\"].cluster.certificate-authority-data";

  auto transport = MakeHttpTransport(config);

  ASSERT_FALSE(transport.has_value());
  EXPECT_EQ(transport.error().code, ErrorCode::kInvalid);
  EXPECT_NE(transport.error().ToString().find("certificate-authority-data"), std::string::npos);
}

// A plugin that hands out "token-1", "token-2", ... on each run.
class CountingPlugin : public ProcessRunner {
 public:
  Result<ProcessResult> Run(const ProcessSpec& /*spec*/) override {
    ++runs;
    return ProcessResult{
        0,
        R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)"
        R"("status":{"token":"token-)" +
            std::to_string(runs) + R"("}})",
        ""};
  }
  int runs = 0;
};

struct PluginFixture {
  KeyAndCert ca = MakeCert("cluster CA", nullptr);
  TlsServer server{MakeCert("apiserver", &ca, "IP:127.0.0.1")};
  std::shared_ptr<CountingPlugin> plugin = std::make_shared<CountingPlugin>();
  std::unique_ptr<Transport> transport;

  PluginFixture() {
    ClusterConfig config = Config(server, ca.CertPem());
    config.token.clear();
    config.exec = ExecConfig{
        .user = "eks", .command = "aws", .api_version = "client.authentication.k8s.io/v1"};
    auto credentials = std::make_shared<Credentials>(config, plugin, [] { return 1000; });
    transport = std::move(*MakeHttpTransport(config, credentials));
  }
  Result<HttpResponse> Get() {
    return transport->Send({.method = "GET", .path = "/api", .timeout = std::chrono::seconds(10)});
  }
};

TEST(HttpTransportExec, RunsThePluginAgainAndRetriesOnceWhenItsTokenIsRefused) {
  PluginFixture f;
  f.server.Answer({401, 200});

  auto response = f.Get();

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(f.plugin->runs, 2);
  auto connections = f.server.Connections();
  ASSERT_EQ(connections.size(), 2u);
  EXPECT_NE(connections[0].request.find("Bearer token-1"), std::string::npos)
      << connections[0].request;
  EXPECT_NE(connections[1].request.find("Bearer token-2"), std::string::npos);
}

TEST(HttpTransportExec, ReturnsTheSecond401InsteadOfLooping) {
  PluginFixture f;
  f.server.Answer({401, 401, 401});

  auto response = f.Get();

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 401);
  EXPECT_EQ(f.plugin->runs, 2);
  EXPECT_EQ(f.server.Connections().size(), 2u);
}

TEST(HttpTransportExec, KeepsTheCredentialAcrossRequests) {
  PluginFixture f;

  ASSERT_TRUE(f.Get().has_value());
  ASSERT_TRUE(f.Get().has_value());

  EXPECT_EQ(f.plugin->runs, 1);
}

}  // namespace
}  // namespace poolkeeper::kube
