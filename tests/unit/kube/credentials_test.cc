#include "kube/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace poolkeeper::kube {
namespace {

constexpr char kV1[] = "client.authentication.k8s.io/v1";

std::string ExecCredential(const std::string& status_json, const std::string& api_version = kV1) {
  return R"({"apiVersion":")" + api_version + R"(","kind":"ExecCredential","status":)" +
         status_json + "}";
}

// A plugin that answers each run from a script and records what it was asked to run.
class FakePlugin : public ProcessRunner {
 public:
  Result<ProcessResult> Run(const ProcessSpec& spec) override {
    specs.push_back(spec);
    if (answers.empty()) return Fail(ErrorCode::kInternal, "unscripted run");
    auto answer = answers.front();
    answers.pop_front();
    return answer;
  }
  void Prints(const std::string& out) { answers.push_back(ProcessResult{0, out, ""}); }
  std::deque<Result<ProcessResult>> answers;
  std::vector<ProcessSpec> specs;
};

ClusterConfig PluginConfig() {
  ClusterConfig config;
  config.server = "https://10.0.0.1:6443";
  config.ca_pem = "CA PEM";
  ExecConfig exec;
  exec.user = "eks-admin";
  exec.command = "aws";
  exec.args = {"eks", "get-token", "--cluster-name", "prod"};
  exec.env = {{"AWS_PROFILE", "prod"}};
  exec.api_version = kV1;
  exec.install_hint = "Install the AWS CLI: https://aws.amazon.com/cli/";
  config.exec = exec;
  return config;
}

struct Fixture {
  std::shared_ptr<FakePlugin> plugin = std::make_shared<FakePlugin>();
  int64_t now = 1'800'000'000;  // 2027-01-15T08:00:00Z
  Credentials credentials;
  explicit Fixture(ClusterConfig config = PluginConfig())
      : credentials(std::move(config), plugin, [this] { return now; }) {}
};

TEST(ExecCredentials, RunsThePluginWithoutAShellAndReadsItsToken) {
  Fixture f;
  f.plugin->Prints(ExecCredential(R"({"token":"k8s-aws-v1.abc"})"));

  auto credential = f.credentials.Current();

  ASSERT_TRUE(credential.has_value()) << credential.error().message;
  EXPECT_EQ(credential->token, "k8s-aws-v1.abc");
  ASSERT_EQ(f.plugin->specs.size(), 1u);
  EXPECT_EQ(f.plugin->specs[0].argv,
            (std::vector<std::string>{"aws", "eks", "get-token", "--cluster-name", "prod"}));
  EXPECT_EQ(f.plugin->specs[0].env[0],
            (std::pair<std::string, std::string>{"AWS_PROFILE", "prod"}));
  EXPECT_EQ(f.plugin->specs[0].env[1].first, "KUBERNETES_EXEC_INFO");
  auto info = nlohmann::json::parse(f.plugin->specs[0].env[1].second);
  EXPECT_EQ(info["apiVersion"], kV1);
  EXPECT_EQ(info["kind"], "ExecCredential");
  EXPECT_EQ(info["spec"]["interactive"], false);
  EXPECT_FALSE(info["spec"].contains("cluster")) << "provideClusterInfo is off";
}

TEST(ExecCredentials, PassesTheClusterWhenAskedTo) {
  ClusterConfig config = PluginConfig();
  config.exec->provide_cluster_info = true;
  config.exec->cluster_config = {{"region", "eu-west-1"}};
  config.tls_server_name = "api.internal";
  Fixture f(config);

  auto info = nlohmann::json::parse(f.credentials.ExecInfo());

  EXPECT_EQ(info["spec"]["cluster"]["server"], "https://10.0.0.1:6443");
  EXPECT_EQ(info["spec"]["cluster"]["certificate-authority-data"], "Q0EgUEVN");
  EXPECT_EQ(info["spec"]["cluster"]["tls-server-name"], "api.internal");
  EXPECT_EQ(info["spec"]["cluster"]["config"]["region"], "eu-west-1");
}

TEST(ExecCredentials, ReadsAClientCertificateAndKey) {
  Fixture f;
  f.plugin->Prints(ExecCredential(R"({"clientCertificateData":"CERT","clientKeyData":"KEY"})"));

  auto credential = f.credentials.Current();

  ASSERT_TRUE(credential.has_value()) << credential.error().message;
  EXPECT_EQ(credential->token, "");
  EXPECT_EQ(credential->client_cert_pem, "CERT");
  EXPECT_EQ(credential->client_key_pem, "KEY");
}

TEST(ExecCredentials, KeepsTheCredentialUntilShortlyBeforeItExpires) {
  Fixture f;  // now is 08:00:00; the first token lives 15 minutes
  f.plugin->Prints(
      ExecCredential(R"({"token":"first","expirationTimestamp":"2027-01-15T08:15:00Z"})"));
  f.plugin->Prints(
      ExecCredential(R"({"token":"second","expirationTimestamp":"2027-01-15T08:30:00Z"})"));

  EXPECT_EQ(f.credentials.Current()->token, "first");
  f.now += 14 * 60;  // 08:14:00, a minute left
  EXPECT_EQ(f.credentials.Current()->token, "first");
  f.now += 31;  // 08:14:31, under 30 s left: run again before it lapses
  EXPECT_EQ(f.credentials.Current()->token, "second");
  EXPECT_EQ(f.plugin->specs.size(), 2u);
}

TEST(ExecCredentials, ACredentialWithoutExpiryIsKeptUntilTheServerRefusesIt) {
  Fixture f;
  f.plugin->Prints(ExecCredential(R"({"token":"first"})"));
  f.plugin->Prints(ExecCredential(R"({"token":"second"})"));

  auto first = f.credentials.Current();
  f.now += 86400;
  EXPECT_EQ(f.credentials.Current()->token, "first");
  EXPECT_TRUE(f.credentials.Rejected(*first));
  EXPECT_EQ(f.credentials.Current()->token, "second");
  // A late 401 for the old credential does not throw the new one away.
  EXPECT_TRUE(f.credentials.Rejected(*first));
  EXPECT_EQ(f.credentials.Current()->token, "second");
  EXPECT_EQ(f.plugin->specs.size(), 2u);
}

TEST(ExecCredentials, StaticCredentialsAreNotRetriedOn401) {
  ClusterConfig config;
  config.token = "static";
  Fixture f(config);

  auto credential = f.credentials.Current();

  ASSERT_TRUE(credential.has_value());
  EXPECT_EQ(credential->token, "static");
  EXPECT_FALSE(f.credentials.Rejected(*credential));
  EXPECT_TRUE(f.plugin->specs.empty());
}

TEST(ExecCredentials, AFailedRefreshUsesTheCredentialWhileItIsStillValid) {
  Fixture f;
  f.plugin->Prints(
      ExecCredential(R"({"token":"first","expirationTimestamp":"2027-01-15T08:15:00Z"})"));
  f.plugin->answers.push_back(ProcessResult{1, "", "network down"});
  f.plugin->answers.push_back(ProcessResult{1, "", "network down"});

  EXPECT_EQ(f.credentials.Current()->token, "first");
  f.now += 14 * 60 + 45;  // 15 s left
  EXPECT_EQ(f.credentials.Current()->token, "first");
  f.now += 20;  // expired
  EXPECT_FALSE(f.credentials.Current().has_value());
}

struct FailureCase {
  std::string name;
  Result<ProcessResult> ran;
  std::vector<std::string> message_has;
  ErrorCode code;
};

TEST(ExecCredentials, AFailingPluginIsAnErrorNamingTheUserAndCommand) {
  const std::vector<FailureCase> cases = {
      {"not installed",
       Fail(ErrorCode::kNotFound, "aws: No such file or directory"),
       {"user \"eks-admin\"", "exec plugin \"aws\"", "No such file", "Install the AWS CLI"},
       ErrorCode::kInvalid},
      {"exits non-zero",
       ProcessResult{255, "", "Unable to locate credentials\n"},
       {"user \"eks-admin\"", "\"aws\"", "exited with 255", "Unable to locate credentials"},
       ErrorCode::kUnavailable},
      {"hangs",
       Fail(ErrorCode::kTimeout, "aws: still running after 60s, killed"),
       {"user \"eks-admin\"", "still running"},
       ErrorCode::kTimeout},
      {"prints no JSON",
       ProcessResult{0, "hello", ""},
       {"\"aws\"", "not a JSON object"},
       ErrorCode::kInvalid},
      {"another apiVersion",
       ProcessResult{0, ExecCredential(R"({"token":"t"})", "client.authentication.k8s.io/v1beta1"),
                     ""},
       {"\"aws\"", "v1beta1", "configured for"},
       ErrorCode::kInvalid},
      {"no status",
       ProcessResult{0,
                     R"({"apiVersion":"client.authentication.k8s.io/v1",)"
                     R"("kind":"ExecCredential"})",
                     ""},
       {"no status"},
       ErrorCode::kInvalid},
      {"no credential",
       ProcessResult{0, ExecCredential("{}"), ""},
       {"neither status.token nor"},
       ErrorCode::kInvalid},
      {"certificate without key",
       ProcessResult{0, ExecCredential(R"({"clientCertificateData":"CERT"})"), ""},
       {"only one of"},
       ErrorCode::kInvalid},
      {"bad expiry",
       ProcessResult{0, ExecCredential(R"({"token":"t","expirationTimestamp":"tomorrow"})"), ""},
       {"expirationTimestamp \"tomorrow\""},
       ErrorCode::kInvalid},
      {"already expired",
       ProcessResult{
           0, ExecCredential(R"({"token":"t","expirationTimestamp":"2020-01-01T00:00:00Z"})"), ""},
       {"has expired"},
       ErrorCode::kUnavailable},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Fixture f;
    f.plugin->answers.push_back(c.ran);

    auto credential = f.credentials.Current();

    ASSERT_FALSE(credential.has_value());
    EXPECT_EQ(credential.error().code, c.code);
    for (const auto& part : c.message_has) {
      EXPECT_NE(credential.error().message.find(part), std::string::npos)
          << credential.error().message << " lacks " << part;
    }
    EXPECT_EQ(credential.error().message.find("token\":\"t"), std::string::npos);
  }
}

TEST(TokenFileCredentials, ReReadTheFileOnEveryRequest) {
  auto path = std::filesystem::temp_directory_path() / "poolkeeper-token-file-test";
  std::ofstream(path) << "first\n";
  ClusterConfig config;
  config.token_file = path.string();
  Fixture f(config);

  EXPECT_EQ(f.credentials.Current()->token, "first");
  std::ofstream(path) << "rotated\n";
  EXPECT_EQ(f.credentials.Current()->token, "rotated");
  std::filesystem::remove(path);
}

// The one test that runs a real plugin: a script, executed directly (no shell in between), that
// echoes what it was given.
TEST(ExecCredentials, RunsARealScriptPlugin) {
  auto dir = std::filesystem::temp_directory_path() /
             ("poolkeeper-exec-plugin-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto script = dir / "plugin.sh";
  std::ofstream(script) << R"sh(#!/bin/sh
# Proves: args arrive unsplit and unexpanded, env and KUBERNETES_EXEC_INFO are set, stdin is empty.
[ "$1" = 'two words $(id)' ] || { echo "bad arg: $1" >&2; exit 3; }
[ "$PLUGIN_ENV" = set ] || { echo "no env" >&2; exit 4; }
case "$KUBERNETES_EXEC_INFO" in *'"interactive":false'*) ;; *) echo "no info" >&2; exit 5;; esac
[ -z "$(cat)" ] || { echo "stdin not empty" >&2; exit 6; }
echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'
echo ' "status":{"token":"from-script","expirationTimestamp":"2999-01-01T00:00:00Z"}}'
)sh";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  ClusterConfig config;
  config.server = "https://127.0.0.1:6443";
  config.exec = ExecConfig{.user = "script",
                           .command = script.string(),
                           .args = {"two words $(id)"},
                           .env = {{"PLUGIN_ENV", "set"}},
                           .api_version = "client.authentication.k8s.io/v1beta1"};
  Credentials credentials(config, std::make_shared<PosixProcessRunner>());

  auto credential = credentials.Current();

  ASSERT_TRUE(credential.has_value()) << credential.error().message;
  EXPECT_EQ(credential->token, "from-script");

  config.exec->args = {"other"};
  Credentials failing(config, std::make_shared<PosixProcessRunner>());
  auto failed = failing.Current();
  ASSERT_FALSE(failed.has_value());
  EXPECT_NE(failed.error().message.find("exited with 3: bad arg: other"), std::string::npos)
      << failed.error().message;

  config.exec->command = (dir / "missing-plugin").string();
  config.exec->install_hint = "install the missing plugin";
  Credentials missing(config, std::make_shared<PosixProcessRunner>());
  auto not_found = missing.Current();
  ASSERT_FALSE(not_found.has_value());
  EXPECT_NE(not_found.error().message.find("install the missing plugin"), std::string::npos)
      << not_found.error().message;
  std::filesystem::remove_all(dir);
}

TEST(PosixProcessRunner, KillsAProgramThatOutlivesItsTimeout) {
  PosixProcessRunner runner;
  auto ran = runner.Run({.argv = {"sleep", "30"}, .timeout = std::chrono::seconds(1)});
  ASSERT_FALSE(ran.has_value());
  EXPECT_EQ(ran.error().code, ErrorCode::kTimeout);
}

}  // namespace
}  // namespace poolkeeper::kube
