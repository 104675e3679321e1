#include "main/commands.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

namespace poolkeeper::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kPool[] = R"(
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: NAME, namespace: shop}
spec:
  server: {host: db.shop, maxConnections: MAXCONN, overhead: 2}
  pooler: {instances: 2, maxSurge: 1, pgbouncerVersion: "1.18", image: "pgbouncer:1.18.0", defaultPoolSize: 10}
  databases: [{name: orders, maxDbConnections: 10}]
  users: [{name: app, passwordSecretRef: {name: app-db}}]
---
apiVersion: v1
kind: Secret
metadata: {name: app-db, namespace: shop, labels: {poolkeeper.io/expose-to-pools: "true"}}
stringData: {password: "pa\"ss"}
)";

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("poolkeeper-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, std::string text) {
    fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::string Pool(const std::string& name, int max_connections) {
    std::string text = kPool;
    text.replace(text.find("NAME"), 4, name);
    text.replace(text.find("MAXCONN"), 7, std::to_string(max_connections));
    return text;
  }
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    return RunCli(args, out_, err_);
  }

  fs::path dir_;
  std::ostringstream out_, err_;
};

TEST_F(CommandsTest, CheckExitsZeroWithinBudgetAndPrintsTheArithmetic) {
  // (2 + 1) x 10 = 30 <= 40 - 3 - 2 = 35
  std::string file = Write("ok.yaml", Pool("orders", 40));
  EXPECT_EQ(Run({"check", "-f", file}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("(2 instances + 1 surge) x 10 per instance = 30"), std::string::npos)
      << out_.str();
}

TEST_F(CommandsTest, CheckExitsOneOverBudgetWithTheJsonShape) {
  std::string file = Write("over.yaml", Pool("orders", 30));
  EXPECT_EQ(Run({"check", "-f", file, "--output", "json"}), kExitOverBudget);
  auto report = nlohmann::json::parse(out_.str());
  ASSERT_EQ(report["servers"].size(), 1u);
  EXPECT_EQ(report["servers"][0]["server"], "db.shop:5432");
  EXPECT_EQ(report["servers"][0]["usable"], 25);
  EXPECT_EQ(report["pools"][0]["verdict"], "BudgetExceeded");
  EXPECT_EQ(report["pools"][0]["worstCase"], 30);
  for (const char* key :
       {"namespace", "name", "server", "instances", "maxSurge", "perInstance", "worstCase",
        "verdict", "databases", "clientDemand", "clientCapacity", "findings"}) {
    EXPECT_TRUE(report["pools"][0].contains(key)) << key;
  }
}

TEST_F(CommandsTest, CheckExitsTwoOnInvalidInputNamingEveryField) {
  std::string text = Pool("orders", 40);
  text.replace(text.find("defaultPoolSize: 10"), 19, "defaultPoolSize: 0");
  text.replace(text.find("[{name: orders"), 14, "[{name: \"a;b\"");
  std::string file = Write("bad.yaml", text);
  EXPECT_EQ(Run({"check", "-f", file}), kExitInvalid);
  EXPECT_NE(err_.str().find("spec.pooler.defaultPoolSize"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("spec.databases[0].name"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, CheckAccountsPoolsOnTheSameServerTogether) {
  // Each fits alone (30 <= 35); together they need 60.
  std::string file = Write("two.yaml", Pool("first", 40) + "---\n" + Pool("second", 40));
  EXPECT_EQ(Run({"check", "-f", file, "-o", "json"}), kExitOverBudget);
  auto report = nlohmann::json::parse(out_.str());
  EXPECT_EQ(report["pools"][0]["verdict"], "WithinBudget");
  EXPECT_EQ(report["pools"][1]["verdict"], "BudgetExceeded");
}

// Issue 12's reproduction offline: with the operator's policy flags, a pool that would mount its
// users' passwords into an image of its author's choosing is reported with its field and left out;
// render writes nothing of it.
TEST_F(CommandsTest, CheckAndRenderApplyThePodPolicyWhenGivenItsFlags) {
  std::string text = Pool("thief", 40);
  text.replace(text.find("\"pgbouncer:1.18.0\""), 18, "\"attacker.example/anything:1.18\"");
  std::string file = Write("thief.yaml", text);
  EXPECT_EQ(Run({"check", "-f", file}), kExitOk) << "no policy flag: the arithmetic alone";
  EXPECT_EQ(Run({"check", "-f", file, "--allowed-pooler-images", "pgbouncer"}), kExitOverBudget);
  EXPECT_EQ(err_.str(),
            "error: shop/thief: refused by the pod policy: spec.pooler.image: "
            "\"attacker.example/anything:1.18\" is not an allowed image (the operator allows: "
            "pgbouncer, ghcr.io/cloudnative-pg/pgbouncer:1.24.1; --allowed-pooler-images)\n");
  EXPECT_EQ(out_.str().find("thief"), std::string::npos) << "left out of the plan: " << out_.str();
  // Any one flag applies the whole policy, the others at the operator's defaults.
  EXPECT_EQ(Run({"check", "-f", file, "--allow-blanket-tolerations"}), kExitOverBudget);
  EXPECT_NE(err_.str().find("spec.pooler.image"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"check", "-f", file, "--allowed-pooler-images=attacker.example/*"}), kExitOk)
      << err_.str();
  fs::path out = dir_ / "out";
  EXPECT_EQ(Run({"render", "-f", file, "--allowed-pooler-images=pgbouncer", "--output-dir",
                 out.string()}),
            kExitOverBudget);
  EXPECT_FALSE(fs::exists(out)) << "nothing written";
  EXPECT_EQ(out_.str().find("pa"), std::string::npos);
  EXPECT_EQ(Run({"check", "-f", file, "--allowed-pooler-images=bad*"}), kExitInvalid);
  EXPECT_NE(err_.str().find("--allowed-pooler-images"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, RenderWritesEveryFileOfEveryPool) {
  std::string file = Write("ok.yaml", Pool("orders", 40));
  fs::path out = dir_ / "out";
  ASSERT_EQ(Run({"render", "-f", file, "--output-dir", out.string()}), kExitOk) << err_.str();
  for (const char* name : {"pgbouncer.ini", "userlist.txt", "objects.yaml"}) {
    EXPECT_TRUE(fs::exists(out / "shop" / "orders" / name)) << name;
  }
  std::ifstream userlist(out / "shop" / "orders" / "userlist.txt");
  std::string line;
  std::getline(userlist, line);
  EXPECT_EQ(line, R"("app" "pa""ss")");
}

TEST_F(CommandsTest, RenderWritesNothingWhenAnyPoolFails) {
  std::string file = Write("mixed.yaml", Pool("first", 40) + "---\n" + Pool("second", 40));
  fs::path out = dir_ / "out";
  EXPECT_EQ(Run({"render", "-f", file, "--output-dir", out.string()}), kExitOverBudget);
  EXPECT_FALSE(fs::exists(out / "shop" / "first"));
}

TEST_F(CommandsTest, RenderNamesTheMissingPasswordSecret) {
  std::string text = Pool("orders", 40);
  text = text.substr(0, text.find("---"));
  std::string file = Write("nosecret.yaml", text);
  EXPECT_EQ(Run({"render", "-f", file}), kExitInvalid);
  EXPECT_NE(err_.str().find("spec.users[0].passwordSecretRef.name"), std::string::npos)
      << err_.str();
}

// Issue 12: render put any Secret's value into the userlist. Offline as in the cluster, a Secret
// without the opt-in label is refused, naming it and the label; its value is printed nowhere.
TEST_F(CommandsTest, RenderRefusesAnUnlabelledSecretNamingItAndTheLabel) {
  std::string text = Pool("orders", 40);
  const std::string labels = ", labels: {poolkeeper.io/expose-to-pools: \"true\"}";
  text.replace(text.find(labels), labels.size(), "");
  std::string file = Write("unlabelled.yaml", text);
  EXPECT_EQ(Run({"render", "-f", file}), kExitInvalid);
  EXPECT_NE(err_.str().find("spec.users[0].passwordSecretRef.name: Secret shop/app-db is not "
                            "labelled poolkeeper.io/expose-to-pools=true"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(out_.str().find("pa\"ss"), std::string::npos);
  EXPECT_EQ(err_.str().find("pa\"ss"), std::string::npos);
}

TEST_F(CommandsTest, RenderPrintsObjectsWithoutThePasswordInClearText) {
  std::string file = Write("ok.yaml", Pool("orders", 40));
  ASSERT_EQ(Run({"render", "-f", file}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("kind: ConfigMap"), std::string::npos);
  EXPECT_NE(out_.str().find("kind: Pod"), std::string::npos);
  EXPECT_EQ(out_.str().find("pa\"ss"), std::string::npos);
}

TEST_F(CommandsTest, RejectsUnknownCommandsAndFlags) {
  EXPECT_EQ(Run({"frobnicate"}), kExitInvalid);
  EXPECT_EQ(Run({"check", "--bogus"}), kExitInvalid);
  EXPECT_EQ(Run({"check"}), kExitInvalid);
  EXPECT_EQ(Run({}), kExitInvalid);
  EXPECT_NE(err_.str().find("Usage: poolkeeper"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, HelpOfEveryCommandWithItsFlagsAndExitStatus) {
  ASSERT_EQ(Run({"--help"}), kExitOk);
  for (const char* command : {"check", "render", "run", "version"}) {
    EXPECT_NE(out_.str().find(std::string("\n  ") + command), std::string::npos) << command;
  }
  ASSERT_EQ(Run({"help"}), kExitOk);
  EXPECT_NE(out_.str().find("Usage: poolkeeper [OPTIONS] [SUBCOMMAND]"), std::string::npos);
  struct Case {
    std::string command;
    std::vector<std::string> flags;
  };
  for (const auto& [command, flags] : std::vector<Case>{
           {"check", {"-f,--filename FILE", "-o,--output FORMAT", "--observe", "Exit status: 0"}},
           {"render", {"-f,--filename FILE", "--output-dir DIR", "Exit status: 0"}},
           {"run",
            {"--workers N", "concurrent reconciles, 1-64 (default 4)", "--http-address HOST:PORT",
             "--leader-elect", "--default-pgbouncer-version X.Y", "Exit status: 0"}}}) {
    ASSERT_EQ(Run({command, "--help"}), kExitOk) << command;
    EXPECT_TRUE(out_.str().starts_with("Usage: poolkeeper " + command + " [OPTIONS]"))
        << out_.str();
    for (const auto& flag : flags) EXPECT_NE(out_.str().find(flag), std::string::npos) << flag;
  }
}

TEST_F(CommandsTest, VersionAsCommandAndFlag) {
  ASSERT_EQ(Run({"version"}), kExitOk);
  EXPECT_TRUE(std::regex_match(out_.str(), std::regex("poolkeeper [0-9]+\\.[0-9]+\\.[0-9]+\n")))
      << out_.str();
  std::string version = out_.str();
  ASSERT_EQ(Run({"--version"}), kExitOk);
  EXPECT_EQ(out_.str(), version);
}

struct BadUsage {
  std::vector<std::string> args;  // FILE stands for a valid manifest
  std::string named;              // what the error names
};

class CommandsRejects : public CommandsTest, public ::testing::WithParamInterface<BadUsage> {};

TEST_P(CommandsRejects, ExitingTwoAndNamingTheFlag) {
  std::vector<std::string> args = GetParam().args;
  std::string file = Write("ok.yaml", Pool("orders", 40));
  for (auto& arg : args) {
    if (arg == "FILE") arg = file;
  }
  EXPECT_EQ(Run(args), kExitInvalid);
  std::string named = GetParam().named == "FILE" ? file : GetParam().named;
  EXPECT_TRUE(err_.str().starts_with("error: " + named + ": ")) << err_.str();
  EXPECT_EQ(out_.str(), "");
}

INSTANTIATE_TEST_SUITE_P(
    Table, CommandsRejects,
    ::testing::Values(BadUsage{{"frobnicate"}, "frobnicate"}, BadUsage{{"--bogus"}, "--bogus"},
                      BadUsage{{"check"}, "--filename"}, BadUsage{{"check", "-f"}, "--filename"},
                      BadUsage{{"check", "--bogus", "-f", "FILE"}, "--bogus"},
                      BadUsage{{"check", "-f", "FILE", "-o", "xml"}, "--output"},
                      BadUsage{{"check", "-f", "FILE", "--output=yaml"}, "--output"},
                      BadUsage{{"check", "-f", "FILE", "FILE"}, "FILE"},
                      BadUsage{{"check", "-f", "FILE", "render"}, "render"},
                      BadUsage{{"check", "-f", "FILE", "--output-dir", "x"}, "--output-dir"},
                      BadUsage{{"render", "-f", "FILE", "--observe"}, "--observe"},
                      BadUsage{{"render", "-f", "FILE", "-o", "json"}, "-o"},
                      BadUsage{{"render", "--output-dir"}, "--output-dir"},
                      BadUsage{{"run", "--workers", "0"}, "--workers"},
                      BadUsage{{"run", "--log-format=xml"}, "--log-format"},
                      BadUsage{{"run", "--default-pgbouncer-version", "1.18"},
                               "--default-pgbouncer-version"},
                      BadUsage{{"version", "extra"}, "extra"}));

}  // namespace
}  // namespace poolkeeper::cli
