#include "agent/agent.h"

#include <gtest/gtest.h>

#include "fakes.h"

namespace poolkeeper::agent {
namespace {

using namespace std::chrono_literals;

constexpr char kIniV1[] =
    "[databases]\napp = host=db port=5432\n\n[pgbouncer]\nlisten_port = 6432\n"
    "unix_socket_dir = /var/run/pgbouncer\ndefault_pool_size = 10\nmax_client_conn = 100\n";
constexpr char kIniV2[] =
    "[databases]\napp = host=db port=5432\n\n[pgbouncer]\nlisten_port = 6432\n"
    "unix_socket_dir = /var/run/pgbouncer\ndefault_pool_size = 20\nmax_client_conn = 100\n";

// A pod's mounts as the kubelet lays them out, and PgBouncer running the first configuration.
class AgentTest : public ::testing::Test {
 protected:
  AgentTest()
      : agent_(
            {"/etc/pgbouncer",
             {"/etc/poolkeeper-agent"},
             "poolkeeper_agent",
             "/etc/poolkeeper-agent/password",
             5s,
             "/etc/poolkeeper-pod"},
            files_,
            [this](const postgres::ConsoleEndpoint& endpoint) {
              endpoints_.push_back(endpoint);
              return std::make_unique<FakeConsole>(bouncer_);
            },
            clock_) {
    Mount("..2026_11_30_01", kIniV1, "hash-1", "");
    files_.links["/etc/poolkeeper-agent/..data"] = "..2026_11_30_01";
    files_.files["/etc/poolkeeper-agent/password"] = "s3cret\n";
    Run(kIniV1);
  }

  void Mount(const std::string& data, const std::string& ini, const std::string& hash,
             const std::string& paused) {
    files_.links["/etc/pgbouncer/..data"] = data;
    files_.files["/etc/pgbouncer/pgbouncer.ini"] = ini;
    files_.files["/etc/pgbouncer/config-hash"] = hash + "\n";
    if (paused.empty()) {
      files_.files.erase("/etc/pgbouncer/paused");
    } else {
      files_.files["/etc/pgbouncer/paused"] = paused;
    }
  }
  // What PgBouncer runs after it (re)reads `ini`.
  void Run(const std::string& ini) {
    for (const auto& [key, value] : PgBouncerSection(ini)) {
      bouncer_.config[key] = {value, key != "listen_port" && key != "unix_socket_dir"};
    }
  }
  std::vector<std::string> TakeCommands() {
    std::lock_guard guard(bouncer_.mutex);
    return std::exchange(bouncer_.commands, {});
  }

  FakeFiles files_;
  FakePgBouncer bouncer_;
  FakeClock clock_;
  std::vector<postgres::ConsoleEndpoint> endpoints_;
  Agent agent_;
};

TEST_F(AgentTest, FirstPollConfirmsWithoutReloadingAndBecomesReady) {
  EXPECT_EQ(agent_.NotReadyReason().value_or(""), "the PgBouncer console has not answered");
  agent_.Poll();
  EXPECT_EQ(TakeCommands(), std::vector<std::string>{"SHOW CONFIG"});
  EXPECT_EQ(agent_.NotReadyReason(), std::nullopt);
  EXPECT_EQ(agent_.figures().loaded_config_hash, "hash-1");
  EXPECT_EQ(agent_.figures().reloads, 0u);
  ASSERT_FALSE(endpoints_.empty());
  EXPECT_EQ(endpoints_.back().socket_dir, "/var/run/pgbouncer");  // from the ini
  EXPECT_EQ(endpoints_.back().port, 6432);
  EXPECT_EQ(endpoints_.back().user, "poolkeeper_agent");
  EXPECT_EQ(endpoints_.back().password, "s3cret");  // the file's newline is not part of it
}

TEST_F(AgentTest, NothingChangedMeansNoConsoleCommands) {
  agent_.Poll();
  TakeCommands();
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(1s);
    agent_.Poll();
  }
  EXPECT_TRUE(TakeCommands().empty());
}

TEST_F(AgentTest, ASwappedDataLinkReloadsConfirmsAndReloadsOnceMoreAfterSettling) {
  agent_.Poll();
  TakeCommands();
  Mount("..2026_11_30_02", kIniV2, "hash-2", "");
  Run(kIniV2);  // PgBouncer applies it on RELOAD
  agent_.Poll();
  EXPECT_EQ(TakeCommands(), (std::vector<std::string>{"RELOAD", "SHOW CONFIG"}));
  EXPECT_EQ(agent_.figures().loaded_config_hash, "hash-2");
  EXPECT_EQ(agent_.figures().reloads, 1u);
  EXPECT_TRUE(agent_.figures().config_current);

  clock_.Advance(4s);
  agent_.Poll();
  EXPECT_TRUE(TakeCommands().empty());
  clock_.Advance(1s);
  agent_.Poll();  // the userlist may have landed after the ConfigMap
  EXPECT_EQ(TakeCommands(), (std::vector<std::string>{"RELOAD", "SHOW CONFIG"}));
  clock_.Advance(10s);
  agent_.Poll();
  EXPECT_TRUE(TakeCommands().empty());
}

TEST_F(AgentTest, APasswordMountSwapReloadsToo) {
  agent_.Poll();
  TakeCommands();
  files_.links["/etc/poolkeeper-agent/..data"] = "..2026_11_30_02";
  files_.files["/etc/poolkeeper-agent/password"] = "n3w";
  agent_.Poll();
  EXPECT_EQ(TakeCommands(), (std::vector<std::string>{"RELOAD", "SHOW CONFIG"}));
  EXPECT_EQ(endpoints_.back().password, "n3w");
}

TEST_F(AgentTest, ShowConfigMismatchIsReportedAndNotReady) {
  agent_.Poll();
  TakeCommands();
  Mount("..2026_11_30_02", kIniV2, "hash-2", "");  // PgBouncer keeps running V1
  agent_.Poll();
  EXPECT_EQ(TakeCommands(), (std::vector<std::string>{"RELOAD", "SHOW CONFIG"}));
  EXPECT_EQ(agent_.mismatches(), (std::vector<Mismatch>{{"default_pool_size", "20", "10", true}}));
  EXPECT_FALSE(agent_.figures().config_current);
  EXPECT_EQ(agent_.figures().loaded_config_hash, "hash-1");  // not the one it failed to load
  EXPECT_EQ(agent_.figures().reload_failures, 1u);
  EXPECT_NE(agent_.NotReadyReason().value_or("").find("default_pool_size"), std::string::npos);
  nlohmann::json status = agent_.Status();
  EXPECT_EQ(status["mismatches"][0]["key"], "default_pool_size");
  EXPECT_EQ(status["configCurrent"], false);

  Run(kIniV2);  // it applies it on the retry after settling
  clock_.Advance(5s);
  agent_.Poll();
  EXPECT_TRUE(agent_.figures().config_current);
  EXPECT_EQ(agent_.figures().loaded_config_hash, "hash-2");
  EXPECT_EQ(agent_.NotReadyReason(), std::nullopt);
}

TEST_F(AgentTest, ARestartOnlySettingIsReportedAsSuchAndNotRetried) {
  agent_.Poll();
  std::string moved = kIniV1;
  moved.replace(moved.find("6432"), 4, "7432");
  Mount("..2026_11_30_02", moved, "hash-2", "");
  agent_.Poll();
  ASSERT_EQ(agent_.mismatches().size(), 1u);
  EXPECT_FALSE(agent_.mismatches()[0].changeable);
  EXPECT_EQ(agent_.Status()["mismatches"][0]["restartNeeded"], true);
  clock_.Advance(30s);
  agent_.Poll();  // the one settling RELOAD after a change
  TakeCommands();
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(30s);
    agent_.Poll();
  }
  EXPECT_TRUE(TakeCommands().empty());  // no retries: only a new pod applies listen_port
}

TEST_F(AgentTest, AConsoleThatIsDownIsRetriedAtTheNextPoll) {
  bouncer_.down = true;
  agent_.Poll();
  EXPECT_NE(agent_.NotReadyReason().value_or("").find("connection refused"), std::string::npos);
  bouncer_.down = false;
  agent_.Poll();
  EXPECT_EQ(agent_.NotReadyReason(), std::nullopt);
  Mount("..2026_11_30_02", kIniV2, "hash-2", "");
  bouncer_.refuse["RELOAD"] = "boom";
  agent_.Poll();
  EXPECT_EQ(agent_.figures().reload_failures, 1u);
  bouncer_.refuse.clear();
  Run(kIniV2);
  TakeCommands();
  agent_.Poll();
  EXPECT_EQ(TakeCommands(), (std::vector<std::string>{"RELOAD", "SHOW CONFIG"}));
  EXPECT_EQ(agent_.figures().loaded_config_hash, "hash-2");
}

TEST_F(AgentTest, PauseAndResumeFollowTheConfigMapOnceEach) {
  struct Step {
    std::string paused_file;
    std::vector<std::string> commands;
    bool paused;
  };
  agent_.Poll();
  TakeCommands();
  int version = 2;
  for (const Step& step : std::vector<Step>{
           {"", {}, false},
           {"true", {"PAUSE"}, true},
           {"true", {}, true},
           {"false", {"RESUME"}, false},
           {"", {}, false},
           {"true", {"PAUSE"}, true},
           {"", {"RESUME"}, false},
       }) {
    Mount("..v" + std::to_string(version++), kIniV1, "hash-1", step.paused_file);
    agent_.Poll();
    TakeCommands();  // the reload of the new ..data
    agent_.ApplyPause();
    agent_.ApplyPause();
    EXPECT_EQ(TakeCommands(), step.commands) << "paused file: " << step.paused_file;
    EXPECT_EQ(agent_.figures().paused, step.paused) << "paused file: " << step.paused_file;
    EXPECT_EQ(agent_.Status()["paused"], step.paused);
  }
}

TEST_F(AgentTest, PauseRefusedAsAlreadyPausedCountsAsPaused) {
  agent_.Poll();
  Mount("..v2", kIniV1, "hash-1", "true");
  agent_.Poll();
  bouncer_.refuse["PAUSE"] = "already suspended/paused";
  agent_.ApplyPause();
  EXPECT_TRUE(agent_.figures().paused);
  Mount("..v3", kIniV1, "hash-1", "false");
  agent_.Poll();
  bouncer_.refuse["RESUME"] = "connection lost";
  agent_.ApplyPause();
  EXPECT_TRUE(agent_.figures().paused);  // still paused: retried at the next call
}

TEST_F(AgentTest, StatusSumsServerConnectionsWaitingClientsAndTheLongestWait) {
  agent_.Poll();
  bouncer_.tables["SHOW POOLS"] = {
      {"database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used",
       "sv_tested", "sv_login", "maxwait", "maxwait_us"},
      {{"app", "alice", "3", "2", "3", "1", "0", "0", "1", "1", "500000"},
       {"app", "bob", "1", "0", "1", "0", "2", "0", "0", "0", "0"},
       {"pgbouncer", "pgbouncer", "1", "0", "0", "0", "0", "0", "0", "0", "0"}}};
  nlohmann::json status = agent_.Status();
  EXPECT_EQ(status["serverConnections"], 8);  // 3+1+1 and 1+2: every state a budget charges
  EXPECT_EQ(status["clientsWaiting"], 2);
  EXPECT_EQ(status["longestWaitSeconds"], 1.5);
  EXPECT_EQ(status["pools"].size(), 2u);
  EXPECT_EQ(status["pools"][0]["serverConnections"], 5);
  EXPECT_EQ(status["loadedConfigHash"], "hash-1");
  EXPECT_EQ(status["consoleUp"], true);
  EXPECT_EQ(status.dump().find("s3cret"), std::string::npos);
}

TEST_F(AgentTest, StoppingIsNotReady) {
  agent_.Poll();
  EXPECT_EQ(agent_.NotReadyReason(), std::nullopt);
  agent_.BeginStop();
  EXPECT_EQ(agent_.NotReadyReason().value_or(""), "stopping");
  EXPECT_TRUE(agent_.ConsoleAnswers());
  bouncer_.down = true;
  EXPECT_FALSE(agent_.ConsoleAnswers());
}

// The downward API files as the kubelet writes them: the value alone, empty for a missing
// annotation. Read at each scrape, so a figure lowered in place shows at the next one.
TEST_F(AgentTest, MetricsCarryThePodsBudgetFromTheDownwardApiFilesWhenThereAreAny) {
  const std::string figure = "poolkeeper_agent_budget_server_connections";
  const std::string info = "poolkeeper_agent_pool_info";
  struct Case {
    std::string name;
    std::map<std::string, std::string> files;  // in /etc/poolkeeper-pod
    std::vector<std::string> want;             // lines of /metrics
    std::vector<std::string> absent;           // families it must not have
  };
  for (const Case& c : std::vector<Case>{
           {"no files (outside a pod)", {}, {}, {figure, info}},
           {"every file",
            {{"connections-per-pod", "14"}, {"server", "db.shop:5432"}, {"pool", "orders"}},
            {figure + "{pool=\"orders\",server=\"db.shop:5432\"} 14\n",
             info + "{pool=\"orders\",server=\"db.shop:5432\"} 1\n"},
            {}},
           {"the figure lowered in place",
            {{"connections-per-pod", "9"}, {"server", "db.shop:5432"}, {"pool", "orders"}},
            {figure + "{pool=\"orders\",server=\"db.shop:5432\"} 9\n"},
            {}},
           {"annotations missing: their files are empty",
            {{"connections-per-pod", ""}, {"server", ""}, {"pool", "orders"}},
            {info + "{pool=\"orders\",server=\"\"} 1\n"},
            {figure}},
           {"a figure that is not a count",
            {{"connections-per-pod", "-3"}, {"pool", "orders"}},
            {info + "{pool=\"orders\",server=\"\"} 1\n"},
            {figure}},
       }) {
    std::erase_if(files_.files,
                  [](const auto& file) { return file.first.starts_with("/etc/poolkeeper-pod/"); });
    for (const auto& [name, content] : c.files) {
      files_.files["/etc/poolkeeper-pod/" + name] = content;
    }
    agent_.Poll();
    std::string text = agent_.Metrics();
    EXPECT_NE(text.find("pgbouncer_up 1\n"), std::string::npos) << c.name;
    for (const std::string& line : c.want) {
      EXPECT_NE(text.find(line), std::string::npos) << c.name << ": missing " << line;
    }
    for (const std::string& family : c.absent) {
      EXPECT_EQ(text.find(family), std::string::npos) << c.name << ": has " << family;
    }
  }
}

TEST(AgentPlainDirectories, ContentChangesAreNoticedWithoutADataLink) {
  FakeFiles files;
  FakePgBouncer bouncer;
  FakeClock clock;
  files.files["/cfg/pgbouncer.ini"] = kIniV1;
  for (const auto& [key, value] : PgBouncerSection(kIniV1)) bouncer.config[key] = {value, true};
  Agent agent(
      {"/cfg", {}, "admin", "", 5s}, files,
      [&](const postgres::ConsoleEndpoint&) { return std::make_unique<FakeConsole>(bouncer); },
      clock);
  agent.Poll();
  files.files["/cfg/pgbouncer.ini"] = kIniV2;
  for (const auto& [key, value] : PgBouncerSection(kIniV2)) bouncer.config[key] = {value, true};
  agent.Poll();
  EXPECT_EQ(agent.figures().reloads, 1u);
  EXPECT_TRUE(agent.figures().config_current);
}

}  // namespace
}  // namespace poolkeeper::agent
