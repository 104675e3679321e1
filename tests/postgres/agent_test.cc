// The pooler agent (operator/agent) against the Debian PgBouncer 1.18 and a real PostgreSQL 15:
// the agent in this process talks to PgBouncer's admin console over its Unix socket, as in a pod.
// A changed default_pool_size is RELOADed and SHOW CONFIG shows it while a client session opened
// before stays open; /metrics under load shows active and waiting figures; PAUSE holds a query
// until RESUME.
#include "agent/agent.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
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

// The status code and body of GET `path` on 127.0.0.1:`port`, or {0, error}.
std::pair<int, std::string> Get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    if (fd >= 0) ::close(fd);
    return {0, "connect failed"};
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, request.data(), request.size());
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) response.append(buffer, n);
  ::close(fd);
  if (response.size() < 12) return {0, response};
  size_t body = response.find("\r\n\r\n");
  return {std::atoi(response.substr(9, 3).c_str()),
          body == std::string::npos ? "" : response.substr(body + 4)};
}

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

// `poolkeeper agent` itself: ready once PgBouncer runs its files; on SIGTERM not ready at once but
// still serving while PgBouncer runs (its drain is PgBouncer's own); gone, with status 0, once
// PgBouncer is.
TEST_F(AgentTier, TheBinaryStopsNotReadyFirstAndOutlivesPgBouncer) {
  StartPooler(2);
  const int port = FreeLoopbackPort();
  auto agent = ChildProcess::Spawn(
      {POOLKEEPER_BINARY, "agent", "--config-dir", dir_, "--password-file", password_file_,
       "--http-address", "127.0.0.1:" + std::to_string(port), "--poll-ms", "100"},
      secrets_->path() + "/agent.log", SIGTERM);
  ASSERT_TRUE(agent) << agent.error();
  ASSERT_TRUE(WaitFor([&] { return Get(port, "/readyz").first == 200; }, 10s))
      << (*agent)->LogTail() << Get(port, "/readyz").second;
  EXPECT_NE(Get(port, "/metrics").second.find("pgbouncer_up 1\n"), std::string::npos);
  EXPECT_NE(Get(port, "/status").second.find("\"loadedConfigHash\":\"hash-1\""), std::string::npos);

  ::kill((*agent)->pid(), SIGTERM);
  EXPECT_TRUE(WaitFor([&] { return Get(port, "/readyz").first == 503; }, 5s));
  EXPECT_NE(Get(port, "/metrics").second.find("pgbouncer_up 1\n"), std::string::npos);
  EXPECT_TRUE((*agent)->Running());

  bouncer_.reset();  // PgBouncer is gone
  EXPECT_TRUE(WaitFor([&] { return !(*agent)->Running(); }, 10s)) << (*agent)->LogTail();
  ASSERT_TRUE((*agent)->exit_status().has_value());
  EXPECT_TRUE(WIFEXITED(*(*agent)->exit_status()) && WEXITSTATUS(*(*agent)->exit_status()) == 0)
      << (*agent)->LogTail();
  EXPECT_EQ((*agent)->LogTail(100000).find(kAgentPassword), std::string::npos);
}

}  // namespace
}  // namespace poolkeeper::pgtest
