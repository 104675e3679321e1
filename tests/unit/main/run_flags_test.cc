#include "main/run_flags.h"

#include <gtest/gtest.h>

namespace poolkeeper::cli {
namespace {

TEST(RunFlags, DefaultsSuitAnInClusterOperator) {
  auto options = ParseRunFlags({});
  ASSERT_TRUE(options);
  EXPECT_TRUE(options->namespaces.empty());
  EXPECT_EQ(options->workers, 4);
  EXPECT_EQ(options->http_address, "0.0.0.0:8080");
  EXPECT_FALSE(options->leader_elect);
  EXPECT_EQ(options->leader_election_id, "poolkeeper-leader");
}

TEST(RunFlags, ReadsEveryFlagInBothSpellings) {
  auto options =
      ParseRunFlags({"--kubeconfig", "/k", "--namespaces=a,b,a", "--workers", "8",
                     "--http-address=127.0.0.1:9090", "--leader-elect",
                     "--leader-election-namespace", "ops", "--log-format=json", "--log-level",
                     "debug", "--resync-seconds=30", "--watch-timeout-seconds", "5"});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->kubeconfig, "/k");
  EXPECT_EQ(options->namespaces, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(options->workers, 8);
  EXPECT_EQ(options->http_address, "127.0.0.1:9090");
  EXPECT_TRUE(options->leader_elect);
  EXPECT_EQ(options->leader_election_namespace, "ops");
  EXPECT_EQ(options->log_format, LogFormat::kJson);
  EXPECT_EQ(options->log_level, "debug");
  EXPECT_EQ(options->resync, std::chrono::seconds(30));
  EXPECT_EQ(options->watch_timeout, std::chrono::seconds(5));
}

TEST(RunFlags, AgentPollSeconds) {
  auto options = ParseRunFlags({});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->agent_poll, std::chrono::seconds(10));
  options = ParseRunFlags({"--agent-poll-seconds=3"});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->agent_poll, std::chrono::seconds(3));
}

TEST(RunFlags, DefaultImageAndItsVersionFromTheTag) {
  auto options = ParseRunFlags({"--default-pgbouncer-image", "registry.local/pgbouncer:1.22.1"});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->defaults.image, "registry.local/pgbouncer:1.22.1");
  EXPECT_EQ(options->defaults.image_version.ToString(), "1.22");
  options = ParseRunFlags(
      {"--default-pgbouncer-image=registry.local/pgb:stable", "--default-pgbouncer-version=1.18"});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->defaults.image_version.ToString(), "1.18");
  options = ParseRunFlags({"--default-pgbouncer-image="});  // the chart's "use the built-in"
  ASSERT_TRUE(options);
  EXPECT_EQ(options->defaults.image, api::kDefaultImage);
}

TEST(RunFlags, AgentImageReachesThePoolDefaultsAndThePodPolicy) {
  auto none = ParseRunFlags({});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->defaults.agent_image, "");  // no sidecar unless asked
  auto options = ParseRunFlags({"--agent-image", "localhost/poolkeeper:dev"});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->defaults.agent_image, "localhost/poolkeeper:dev");
  // The operator's own image runs in every pooler pod, whatever --allowed-pooler-images says.
  EXPECT_TRUE(options->policy.ImageAllowed("localhost/poolkeeper:dev"));
  EXPECT_FALSE(options->policy.ImageAllowed("localhost/poolkeeper:other"));
  auto bad = ParseRunFlags({"--agent-image", "has space"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().ToString().find("--agent-image"), std::string::npos);
}

TEST(RunFlags, MetricsNeedAnAllowedTokenUnlessNoneIsAsked) {
  auto defaults = ParseRunFlags({});
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->metrics_auth, "kubernetes");
  auto none = ParseRunFlags({"--metrics-auth=none"});
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_EQ(none->metrics_auth, "none");
  for (const char* bad : {"open", "", "Kubernetes"}) {
    auto refused = ParseRunFlags({"--metrics-auth", bad});
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message.find("--metrics-auth"), std::string::npos)
        << refused.error().message;
  }
}

TEST(RunFlags, PodPolicyDefaultsToTheDefaultImagesRepositoryAndRefusesSystemScheduling) {
  auto options = ParseRunFlags({});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->policy.AllowedImages(),
            "ghcr.io/cloudnative-pg/pgbouncer, ghcr.io/cloudnative-pg/pgbouncer:1.24.1");
  EXPECT_FALSE(options->policy.ImageAllowed("attacker.example/anything:1.18"));
  EXPECT_FALSE(options->policy.allow_blanket_tolerations);
  EXPECT_TRUE(options->policy.system_priority_classes.empty());
  // The default follows --default-pgbouncer-image; "" (the chart's unset list) keeps it.
  options = ParseRunFlags(
      {"--default-pgbouncer-image", "registry.local/pgbouncer:1.22.1", "--allowed-pooler-images="});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_TRUE(options->policy.ImageAllowed("registry.local/pgbouncer:1.18.0"));
  EXPECT_FALSE(options->policy.ImageAllowed(api::kDefaultImage));
  options = ParseRunFlags({"--allowed-pooler-images", "localhost/poolkeeper-test/*, r.example/pgb",
                           "--allowed-priority-classes=system-cluster-critical",
                           "--allow-blanket-tolerations"});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_TRUE(options->policy.ImageAllowed("localhost/poolkeeper-test/pgbouncer:1.24.1"));
  EXPECT_TRUE(options->policy.ImageAllowed("r.example/pgb:1.18"));
  EXPECT_FALSE(options->policy.ImageAllowed("r.example/pgb-evil:1.18"));
  EXPECT_EQ(options->policy.system_priority_classes,
            std::vector<std::string>{"system-cluster-critical"});
  EXPECT_TRUE(options->policy.allow_blanket_tolerations);
}

TEST(RunFlags, LastOfARepeatedFlagWinsAndNumbersAreDecimal) {
  auto options = ParseRunFlags({"--workers", "2", "--workers=010",
                                "--namespaces=", "--leader-elect", "--leader-elect=false"});
  ASSERT_TRUE(options) << options.error().ToString();
  EXPECT_EQ(options->workers, 10);
  EXPECT_TRUE(options->namespaces.empty());
  EXPECT_FALSE(options->leader_elect);
}

TEST(RunFlags, TheErrorSaysWhatWasWantedAndWhatWasGiven) {
  auto options = ParseRunFlags({"--workers", "0"});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().ToString(), "--workers: want an integer from 1 to 64, got \"0\"");
  options = ParseRunFlags({"--log-level=loud"});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().ToString(),
            "--log-level: want debug, info, warn or error, got \"loud\"");
  options = ParseRunFlags({"--kubeconfig"});
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().ToString(), "--kubeconfig: needs a value");
}

struct BadFlag {
  std::vector<std::string> args;
  std::string field;
};

class RunFlagsRejects : public ::testing::TestWithParam<BadFlag> {};

TEST_P(RunFlagsRejects, NamingTheFlag) {
  auto options = ParseRunFlags(GetParam().args);
  ASSERT_FALSE(options);
  ASSERT_EQ(options.error().fields.size(), 1u);
  EXPECT_EQ(options.error().fields[0].field, GetParam().field);
  EXPECT_EQ(options.error().next_step(), NextStep::kWaitForUser);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RunFlagsRejects,
    ::testing::Values(
        // integers out of range or not decimal integers
        BadFlag{{"--workers", "0"}, "--workers"}, BadFlag{{"--workers=lots"}, "--workers"},
        BadFlag{{"--workers", "65"}, "--workers"}, BadFlag{{"--workers", "-1"}, "--workers"},
        BadFlag{{"--workers", "0x10"}, "--workers"}, BadFlag{{"--workers="}, "--workers"},
        BadFlag{{"--resync-seconds", "0"}, "--resync-seconds"},
        BadFlag{{"--resync-seconds", "86401"}, "--resync-seconds"},
        BadFlag{{"--resync-seconds=1.5"}, "--resync-seconds"},
        BadFlag{{"--shutdown-timeout-seconds", "3601"}, "--shutdown-timeout-seconds"},
        BadFlag{{"--watch-timeout-seconds", " 5"}, "--watch-timeout-seconds"},
        BadFlag{{"--agent-poll-seconds", "0"}, "--agent-poll-seconds"},
        BadFlag{{"--agent-poll-seconds", "301"}, "--agent-poll-seconds"},
        // lists of names
        BadFlag{{"--namespaces", "Shop"}, "--namespaces"},
        BadFlag{{"--namespaces", "a,,b"}, "--namespaces"},
        BadFlag{{"--namespaces", "a,"}, "--namespaces"},
        BadFlag{{"--namespaces", "-a"}, "--namespaces"},
        BadFlag{{"--namespaces", std::string(64, 'a')}, "--namespaces"},
        // HOST:PORT
        BadFlag{{"--http-address", "8080"}, "--http-address"},
        BadFlag{{"--http-address", "host:99999"}, "--http-address"},
        BadFlag{{"--http-address", "host:"}, "--http-address"},
        BadFlag{{"--webhook-address", ":https"}, "--webhook-address"},
        // enums
        BadFlag{{"--log-format", "xml"}, "--log-format"},
        BadFlag{{"--log-format", "JSON"}, "--log-format"},
        BadFlag{{"--log-level", "loud"}, "--log-level"},
        BadFlag{{"--leader-elect=maybe"}, "--leader-elect"},
        BadFlag{{"--leader-elect=yes"}, "--leader-elect"},
        // empty where a value is needed
        BadFlag{{"--webhook-cert-dir="}, "--webhook-cert-dir"},
        BadFlag{{"--leader-election-id", ""}, "--leader-election-id"},
        // missing values, unknown flags, stray arguments
        BadFlag{{"--kubeconfig"}, "--kubeconfig"}, BadFlag{{"--workers"}, "--workers"},
        BadFlag{{"--frobnicate", "1"}, "--frobnicate"}, BadFlag{{"extra"}, "extra"},
        BadFlag{{"--leader-elect", "false"}, "false"}, BadFlag{{"--help"}, "--help"},
        // the default image and its version, checked together
        BadFlag{{"--default-pgbouncer-image", "pgb:stable"}, "--default-pgbouncer-version"},
        BadFlag{{"--default-pgbouncer-image", "pgb:1.12.0"}, "--default-pgbouncer-version"},
        BadFlag{{"--default-pgbouncer-version", "1.18"}, "--default-pgbouncer-version"},
        // the pod policy
        BadFlag{{"--allowed-pooler-images", "r.example/pgbouncer*"}, "--allowed-pooler-images"},
        BadFlag{{"--allowed-pooler-images", "R.example/UPPER"}, "--allowed-pooler-images"},
        BadFlag{{"--allowed-priority-classes", "high"}, "--allowed-priority-classes"},
        BadFlag{{"--allow-blanket-tolerations=yes"}, "--allow-blanket-tolerations"}));

}  // namespace
}  // namespace poolkeeper::cli
