#include "kube/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace poolkeeper::kube {
namespace {

constexpr char kKubeconfig[] = R"(
apiVersion: v1
kind: Config
current-context: admin
contexts:
- name: admin
  context: {cluster: local, user: admin, namespace: shop}
- name: robot
  context: {cluster: local, user: robot}
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDQS0tLS0t
users:
- name: admin
  user:
    client-certificate: certs/admin.crt
    client-key-data: a2V5
- name: robot
  user: {tokenFile: /var/run/token}
)";

TEST(ParseKubeconfig, ReadsTheCurrentContextWithInlineAndFileCredentials) {
  auto dir = std::filesystem::temp_directory_path() / "poolkeeper-kubeconfig-test";
  std::filesystem::create_directories(dir / "certs");
  std::ofstream(dir / "certs" / "admin.crt") << "CERT";
  auto config = ParseKubeconfig(kKubeconfig, dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->server, "https://127.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, "-----BEGIN CA-----");
  EXPECT_EQ(config->client_cert_pem, "CERT");
  EXPECT_EQ(config->client_key_pem, "key");
  EXPECT_EQ(config->namespace_, "shop");
}

TEST(ParseKubeconfig, PicksAnotherContextAndKeepsTokenFilesAsPaths) {
  auto config = ParseKubeconfig(kKubeconfig, "/nowhere", "robot");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->token_file, "/var/run/token");
  EXPECT_EQ(config->namespace_, "default");
}

TEST(ParseKubeconfig, NamesWhatIsMissing) {
  auto config = ParseKubeconfig(kKubeconfig, "/nowhere", "nope");
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("no context \"nope\""), std::string::npos);
  EXPECT_FALSE(ParseKubeconfig("current-context: [", "/").has_value());
}

TEST(InClusterConfig, UsesTheServiceAccountDirectory) {
  auto dir = std::filesystem::temp_directory_path() / "poolkeeper-sa-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ca.crt") << "CA";
  std::ofstream(dir / "namespace") << "poolkeeper-system";
  std::map<std::string, std::string> env{{"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
                                         {"KUBERNETES_SERVICE_PORT", "443"},
                                         {"POOLKEEPER_SERVICEACCOUNT_DIR", dir.string()}};
  auto getenv = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional(it->second);
  };
  auto config = LoadClusterConfig("", getenv);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->server, "https://10.0.0.1:443");
  EXPECT_EQ(config->ca_pem, "CA");
  EXPECT_EQ(config->namespace_, "poolkeeper-system");
  EXPECT_EQ(config->token_file, dir.string() + "/token");
  env.clear();
  EXPECT_FALSE(LoadClusterConfig("", getenv).has_value());
}

}  // namespace
}  // namespace poolkeeper::kube
