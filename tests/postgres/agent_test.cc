// The pooler agent (operator/agent) against the Debian PgBouncer 1.18 and a real PostgreSQL 15:
// the agent in this process talks to PgBouncer's admin console over its Unix socket, as in a pod.
// A changed default_pool_size is RELOADed and SHOW CONFIG shows it while a client session opened
// before stays open; /metrics under load shows active and waiting figures; PAUSE holds a query
// until RESUME.
#include "agent/agent.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "agent/config_check.h"
#include "common/clock.h"
#include "harness.h"
#include "postgres/admin_console.h"

namespace poolkeeper::pgtest {
namespace {

constexpr char kAgentUser[] = "poolkeeper_agent";
constexpr char kAgentPassword[] = "agent-Pw-19ab";

class AgentTier : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = MissingPrerequisite()) GTEST_SKIP() << *missing;
    auto server = PostgresServer::Start({});
    ASSERT_TRUE(server) << server.error();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->CreateRole("app", "app-pw"));
    ASSERT_TRUE(server_->CreateDatabase("app", "app"));
  }

  // PgBouncer with pool size `pool_size`, the agent's user an admin, and the agent on its files.
  void StartPooler(int pool_size) {
    std::string ini = "[databases]\napp = host=127.0.0.1 port=" + std::to_string(server_->port()) +
                      " dbname=app\n\n[pgbouncer]\nauth_type = scram-sha-256\n"
                      "pool_mode = transaction\nmax_client_conn = 100\ndefault_pool_size = " +
                      std::to_string(pool_size) + "\nadmin_users = " + kAgentUser + "\n";
    std::string userlist =
        std::string("\"app\" \"app-pw\"\n\"") + kAgentUser + "\" \"" + kAgentPassword + "\"\n";
    auto bouncer = PgBouncer::Start(ini, userlist);
    ASSERT_TRUE(bouncer) << bouncer.error();
    bouncer_ = std::move(*bouncer);
    dir_ = agent::PgBouncerSection(bouncer_->ini()).at("unix_socket_dir");
    secrets_ = std::make_unique<TempDir>("agent-secret");
    password_file_ = secrets_->WriteFile("password", std::string(kAgentPassword) + "\n");
    WriteHash("hash-1");
    agent_ = std::make_unique<agent::Agent>(
        agent::AgentOptions{dir_, {}, kAgentUser, password_file_, std::chrono::seconds(5)}, *files_,
        postgres::MakeLibpqAdminConsole, clock_);
    agent_->Poll();
    ASSERT_EQ(agent_->NotReadyReason(), std::nullopt) << bouncer_->LogTail();
  }

  // Files rewritten in place, as PgBouncer (started with this path) reads them on RELOAD.
  void WriteIni(const std::string& ini) { std::ofstream(dir_ + "/pgbouncer.ini") << ini; }
  void WriteHash(const std::string& hash) { std::ofstream(dir_ + "/config-hash") << hash << "\n"; }
  void WritePaused(const std::string& paused) { std::ofstream(dir_ + "/paused") << paused; }

  std::string ShowConfig(const std::string& key) {
    auto tables =
        postgres::MakeLibpqAdminConsole({dir_, bouncer_->port(), kAgentUser, kAgentPassword})
            ->Run({"SHOW CONFIG"});
    if (!tables) return "error: " + tables.error().message;
    for (size_t row = 0; row < tables->front().rows.size(); ++row) {
      if (tables->front().Value(row, "key") == key) return tables->front().Value(row, "value");
    }
    return "";
  }

  Outcome<PgConnection> Client() {
    return PgConnection::Connect(bouncer_->ConnInfo("app", "app", "app-pw"));
  }

  std::unique_ptr<PostgresServer> server_;
  std::unique_ptr<PgBouncer> bouncer_;
  std::unique_ptr<TempDir> secrets_;
  std::string dir_;
  std::string password_file_;
  std::unique_ptr<agent::AgentFiles> files_ = agent::MakeDiskFiles();
  FakeClock clock_;
  std::unique_ptr<agent::Agent> agent_;
};

TEST_F(AgentTier, AChangedPoolSizeIsReloadedWhileAnOpenSessionStaysOpen) {
  StartPooler(2);
  auto client = Client();
  ASSERT_TRUE(client) << client.error();
  ASSERT_EQ(client->QueryValue("SELECT 1").value_or("?"), "1");
  ASSERT_EQ(ShowConfig("default_pool_size"), "2");

  std::string ini = bouncer_->ini();
  ini.replace(ini.find("default_pool_size = 2"), 21, "default_pool_size = 7");
  WriteIni(ini);
  WriteHash("hash-2");
  agent_->Poll();

  EXPECT_EQ(ShowConfig("default_pool_size"), "7");
  EXPECT_EQ(agent_->figures().reloads, 1u);
  EXPECT_EQ(agent_->figures().loaded_config_hash, "hash-2");
  EXPECT_TRUE(agent_->figures().config_current) << agent_->Status().dump();
  EXPECT_EQ(agent_->Status()["loadedConfigHash"], "hash-2");
  // The same client connection still answers: nothing restarted or dropped it.
  EXPECT_EQ(client->QueryValue("SELECT 2").value_or("dropped"), "2");
  EXPECT_TRUE(bouncer_->Running());  // the same process: a restart would have dropped the client
  // Nothing of the password reached what the agent reports.
  EXPECT_EQ(agent_->Status().dump().find(kAgentPassword), std::string::npos);
  EXPECT_EQ(agent_->Metrics().find(kAgentPassword), std::string::npos);
}

TEST_F(AgentTier, MetricsUnderLoadShowActiveServersAndWaitingClients) {
  StartPooler(1);
  constexpr int kClients = 3;
  std::atomic<int> done{0};
  std::vector<std::thread> load;
  for (int i = 0; i < kClients; ++i) {
    load.emplace_back([&] {
      auto client = Client();
      if (client) (void)client->Query("SELECT pg_sleep(1.5)");
      ++done;
    });
  }
  std::string metrics;
  bool seen = WaitFor(
      [&] {
        metrics = agent_->Metrics();
        return metrics.find(
                   "pgbouncer_pools_server_active_connections{database=\"app\",user="
                   "\"app\"} 1\n") != std::string::npos &&
               metrics.find(
                   "pgbouncer_pools_client_waiting_connections{database=\"app\",user="
                   "\"app\"} 0\n") == std::string::npos &&
               metrics.find(
                   "pgbouncer_pools_client_waiting_connections{database=\"app\",user="
                   "\"app\"}") != std::string::npos;
      },
      5s, 50ms);
  for (auto& thread : load) thread.join();
  EXPECT_TRUE(seen) << metrics;
  EXPECT_NE(metrics.find("pgbouncer_up 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("pgbouncer_version_info{version=\"PgBouncer 1.18"), std::string::npos);
  EXPECT_EQ(done.load(), kClients);
  nlohmann::json status = agent_->Status();
  EXPECT_EQ(status["consoleUp"], true);
}

TEST_F(AgentTier, PauseHoldsAQueryUntilResume) {
  StartPooler(2);
  WritePaused("true");
  agent_->Poll();
  agent_->ApplyPause();  // no transaction runs: PAUSE returns at once
  ASSERT_TRUE(agent_->figures().paused) << agent_->Status().dump();

  std::atomic<bool> answered{false};
  std::thread query([&] {
    auto client = Client();
    if (client && client->QueryValue("SELECT 42").value_or("") == "42") answered = true;
  });
  // Held: the client waits in its pool while PgBouncer is paused.
  bool waiting = WaitFor([&] { return agent_->Status()["clientsWaiting"] == 1; }, 5s, 50ms);
  EXPECT_TRUE(waiting) << agent_->Status().dump();
  EXPECT_FALSE(answered.load());

  WritePaused("false");
  agent_->Poll();
  agent_->ApplyPause();
  EXPECT_FALSE(agent_->figures().paused);
  EXPECT_TRUE(WaitFor([&] { return answered.load(); }, 5s));
  query.join();
}

}  // namespace
}  // namespace poolkeeper::pgtest
