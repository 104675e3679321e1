#include "kube/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

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

// A kubeconfig with one cluster and one user whose body is `user` (YAML flow or block, indented
// for the users list) and a cluster body `cluster`.
std::string WithUser(const std::string& user,
                     const std::string& cluster = "{server: 'https://10.0.0.1:6443'}") {
  return "current-context: c\n"
         "contexts: [{name: c, context: {cluster: k, user: dev}}]\n"
         "clusters: [{name: k, cluster: " +
         cluster +
         "}]\n"
         "users:\n- name: dev\n  user: " +
         user + "\n";
}

struct KubeconfigError {
  std::string name;
  std::string kubeconfig;
  std::string field;  // the field the error names
  std::string says;   // part of its message
};

TEST(ParseKubeconfig, RefusesWhatItCannotHonourNamingTheField) {
  const std::string exec = "client.authentication.k8s.io/v1";
  const std::vector<KubeconfigError> cases = {
      {"insecure with a CA",
       WithUser("{token: t}",
                "{server: 'https://k:6443', insecure-skip-tls-verify: true, "
                "certificate-authority-data: Q0E=}"),
       "clusters[\"k\"].cluster.insecure-skip-tls-verify",
       "specifying a root certificates file with the insecure flag is not allowed"},
      {"insecure with a CA file",
       WithUser("{token: t}",
                "{server: 'https://k:6443', insecure-skip-tls-verify: true, "
                "certificate-authority: ca.crt}"),
       "clusters[\"k\"].cluster.insecure-skip-tls-verify", "certificate-authority:"},
      {"auth-provider", WithUser("{auth-provider: {name: gcp, config: {}}}"),
       "users[\"dev\"].user.auth-provider", "\"gcp\" is not supported, use exec"},
      {"basic auth", WithUser("{username: admin, password: pw}"), "users[\"dev\"].user.username",
       "basic authentication is not supported"},
      {"impersonation", WithUser("{token: t, as: system:admin}"), "users[\"dev\"].user.as",
       "impersonation is not supported"},
      {"unknown auth field", WithUser("{token: t, magic-login: yes}"),
       "users[\"dev\"].user.magic-login", "unknown user field"},
      {"user missing",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: x}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://k'}}]\nusers: []\n",
       "contexts[\"c\"].context.user", "no user \"x\" in users"},
      {"cluster without server", WithUser("{token: t}", "{}"), "clusters[\"k\"].cluster.server",
       "has no server"},
      {"certificate without key", WithUser("{client-certificate-data: Q0VSVA==}"),
       "users[\"dev\"].user.client-key", "required with client-certificate"},
      {"CA not base64",
       WithUser("{token: t}", "{server: 'https://k', certificate-authority-data: '%%'}"),
       "clusters[\"k\"].cluster.certificate-authority-data", "not base64"},
      {"exec without command",
       WithUser("{exec: {apiVersion: " + exec + ", interactiveMode: Never}}"),
       "users[\"dev\"].user.exec.command", "required"},
      {"exec without apiVersion", WithUser("{exec: {command: aws, interactiveMode: Never}}"),
       "users[\"dev\"].user.exec.apiVersion", "is not supported"},
      {"exec v1alpha1",
       WithUser("{exec: {command: aws, apiVersion: client.authentication.k8s.io/v1alpha1}}"),
       "users[\"dev\"].user.exec.apiVersion", "v1alpha1\" is not supported"},
      {"exec v1 without interactiveMode",
       WithUser("{exec: {command: aws, apiVersion: " + exec + "}}"),
       "users[\"dev\"].user.exec.interactiveMode", "required for"},
      {"exec interactive Always",
       WithUser("{exec: {command: aws, apiVersion: " + exec + ", interactiveMode: Always}}"),
       "users[\"dev\"].user.exec.interactiveMode", "needs a terminal"},
      {"exec interactive unknown",
       WithUser("{exec: {command: aws, apiVersion: " + exec + ", interactiveMode: Sometimes}}"),
       "users[\"dev\"].user.exec.interactiveMode", "must be Never or IfAvailable"},
      {"exec env without value",
       WithUser("{exec: {command: aws, apiVersion: " + exec +
                ", interactiveMode: Never, env: [{name: A, value: b}, {name: B}]}}"),
       "users[\"dev\"].user.exec.env[1].value", "required"},
      {"exec with a token",
       WithUser("{token: t, exec: {command: aws, apiVersion: " + exec +
                ", interactiveMode: Never}}"),
       "users[\"dev\"].user.exec", "cannot be combined"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto config = ParseKubeconfig(c.kubeconfig, "/nowhere");
    ASSERT_FALSE(config.has_value());
    EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
    ASSERT_EQ(config.error().fields.size(), 1u) << config.error().message;
    EXPECT_EQ(config.error().fields[0].field, c.field);
    EXPECT_NE(config.error().ToString().find(c.says), std::string::npos)
        << config.error().ToString();
  }
}

TEST(ParseKubeconfig, ReadsAnExecPlugin) {
  auto config =
      ParseKubeconfig(WithUser(R"(
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: bin/get-token
      args: [eks, get-token, --cluster-name, prod]
      env: [{name: AWS_PROFILE, value: prod}]
      installHint: install the AWS CLI
      provideClusterInfo: true)",
                               R"({server: 'https://10.0.0.1:6443', tls-server-name: api.internal,
    extensions: [{name: client.authentication.k8s.io/exec, extension: {region: eu-west-1}}]})"),
                      "/etc/kube");
  ASSERT_TRUE(config.has_value()) << config.error().ToString();
  ASSERT_TRUE(config->exec.has_value());
  EXPECT_EQ(config->exec->user, "dev");
  EXPECT_EQ(config->exec->command, "/etc/kube/bin/get-token");
  EXPECT_EQ(config->exec->args,
            (std::vector<std::string>{"eks", "get-token", "--cluster-name", "prod"}));
  EXPECT_EQ(config->exec->env.at(0), (std::pair<std::string, std::string>{"AWS_PROFILE", "prod"}));
  EXPECT_EQ(config->exec->api_version, "client.authentication.k8s.io/v1beta1");
  EXPECT_EQ(config->exec->install_hint, "install the AWS CLI");
  EXPECT_TRUE(config->exec->provide_cluster_info);
  EXPECT_EQ(config->exec->cluster_config["region"], "eu-west-1");
  EXPECT_EQ(config->tls_server_name, "api.internal");
  EXPECT_TRUE(config->token.empty());
}

TEST(ParseKubeconfig, KeepsABareExecCommandForPathLookup) {
  auto config =
      ParseKubeconfig(WithUser("{exec: {command: gke-gcloud-auth-plugin, apiVersion: "
                               "client.authentication.k8s.io/v1, interactiveMode: IfAvailable}}"),
                      "/etc/kube");
  ASSERT_TRUE(config.has_value()) << config.error().ToString();
  EXPECT_EQ(config->exec->command, "gke-gcloud-auth-plugin");
}

TEST(ParseKubeconfig, InsecureWithoutCaIsAllowed) {
  auto config = ParseKubeconfig(
      WithUser("{token: t}", "{server: 'https://k:6443', insecure-skip-tls-verify: true}"), "/");
  ASSERT_TRUE(config.has_value()) << config.error().ToString();
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->ca_pem, "");
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
