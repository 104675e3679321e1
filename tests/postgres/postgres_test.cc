// The postgres tier: the product's planner and renderer, run against a real PostgreSQL 15 and the
// Debian PgBouncer 1.18 started on loopback by each test (harness.h). ConnectionPools are built as
// C++ values (parsing is the api module's business and tested there), planned with
// budget::PlanPools, rendered with render::RenderIni / RenderUserlist, and PgBouncer runs exactly
// those files (only the listen address, port and file paths are rewritten for loopback).
#include <gtest/gtest.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <latch>
#include <mutex>
#include <thread>

#include "api/connection_pool.h"
#include "budget/planner.h"
#include "harness.h"
#include "render/render.h"

namespace poolkeeper::pgtest {
namespace {

// ---------------------------------------------------------------------------------------------
// Pools as a user would declare them, pointed at a test server.

api::ConnectionPool PoolFor(const PostgresServer& server, const std::string& name) {
  api::ConnectionPool pool;
  pool.metadata.name = name;
  pool.metadata.namespace_ = "pg-tier";
  api::ServerSpec& target = pool.spec.server;
  target.host = "127.0.0.1";
  target.port = server.port();
  target.max_connections = server.options().max_connections;
  target.superuser_reserved_connections = server.options().superuser_reserved_connections;
  api::PoolerSpec& pooler = pool.spec.pooler;
  pooler.instances = 1;
  pooler.max_surge = 0;
  pooler.pgbouncer_version = {1, 18};  // the Debian bookworm package the tests run
  pooler.pool_mode = api::PoolMode::kTransaction;
  return pool;
}

api::DatabaseSpec Database(const std::string& name) {
  api::DatabaseSpec database;
  database.name = name;
  database.dbname = name;
  return database;
}

api::UserSpec User(const std::string& name) {
  api::UserSpec user;
  user.name = name;
  user.password_secret_ref = {name + "-credentials", "password"};
  return user;
}

// Every user of the pool as a login role with its password, every database owned by the first
// user (PUBLIC may connect to a new database, so every user can log in to each).
Outcome<void> Provision(PostgresServer& server, const api::ConnectionPool& pool,
                        const render::Passwords& passwords) {
  for (const api::UserSpec& user : pool.spec.users) {
    if (auto done = server.CreateRole(user.name, passwords.at(user.name)); !done) return done;
  }
  for (const api::DatabaseSpec& database : pool.spec.databases) {
    auto done = server.CreateDatabase(database.dbname, pool.spec.users.front().name);
    if (!done) return done;
  }
  return {};
}

// What the operator would roll out for `pool`: its plan and the two files PgBouncer reads.
struct Rendered {
  budget::PoolPlan plan;
  int64_t usable = 0;  // the server's usable connections, from the plan
  std::string ini;
  std::string userlist;
};

Outcome<Rendered> PlanAndRender(const api::ConnectionPool& pool,
                                const render::Passwords& passwords) {
  auto plan = budget::PlanPools({pool});
  if (plan.pools.size() != 1 || plan.servers.size() != 1) {
    return std::unexpected("PlanPools: expected one pool on one server");
  }
  Rendered rendered{plan.pools.front(), plan.servers.front().usable, {}, {}};
  if (rendered.plan.verdict != budget::Verdict::kWithinBudget) {
    std::string findings;
    for (const auto& finding : rendered.plan.findings) findings += "\n  " + finding.message;
    return std::unexpected("the test pool is over budget:" + findings);
  }
  rendered.ini = render::RenderIni(pool, rendered.plan);
  auto userlist = render::RenderUserlist(pool, passwords);
  if (!userlist) return std::unexpected("RenderUserlist: " + userlist.error().ToString());
  rendered.userlist = *userlist;
  return rendered;
}

// The admin console's rows, keyed by their first column (the name), each a column -> value map.
using ConsoleTable = std::map<std::string, std::map<std::string, std::string>>;

Outcome<ConsoleTable> ShowOnConsole(const PgBouncer& bouncer, const std::string& user,
                                    const std::string& password, const std::string& what) {
  auto console = PgConnection::Connect(bouncer.ConnInfo("pgbouncer", user, password));
  if (!console) return std::unexpected(console.error());
  auto rows = console->QueryWithHeader("SHOW " + what);
  if (!rows) return std::unexpected(rows.error());
  ConsoleTable table;
  const std::vector<std::string>& header = rows->front();
  for (size_t r = 1; r < rows->size(); ++r) {
    auto& entry = table[(*rows)[r][0]];
    for (size_t c = 0; c < header.size(); ++c) entry[header[c]] = (*rows)[r][c];
  }
  return table;
}

// PostgreSQL refuses a connection for lack of slots with one of two messages: "sorry, too many
// clients already" when no backend slot is free at all, and "remaining connection slots are
// reserved ..." when only the superuser-reserved ones are.
bool IsOutOfSlots(const std::string& error) {
  return error.find("too many clients") != std::string::npos ||
         error.find("remaining connection slots are reserved") != std::string::npos;
}

class PostgresTier : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = MissingPrerequisite()) GTEST_SKIP() << *missing;
  }
};

// ---------------------------------------------------------------------------------------------
// Logging in through the rendered pooler

TEST_F(PostgresTier, ClientLogsInWithScramThroughRenderedPooler) {
  auto server = PostgresServer::Start({.max_connections = 50});
  ASSERT_TRUE(server) << server.error();
  api::ConnectionPool pool = PoolFor(**server, "shop");
  pool.spec.databases = {Database("appdb")};
  pool.spec.users = {User("app_user")};
  // Quotes and spaces: the userlist must double the `"` for PgBouncer to read the password back.
  render::Passwords passwords = {{"app_user", R"(correct "horse" battery staple)"}};
  ASSERT_TRUE(Provision(**server, pool, passwords));
  auto rendered = PlanAndRender(pool, passwords);
  ASSERT_TRUE(rendered) << rendered.error();
  EXPECT_NE(rendered->ini.find("auth_type = scram-sha-256"), std::string::npos) << rendered->ini;

  auto bouncer = PgBouncer::Start(rendered->ini, rendered->userlist);
  ASSERT_TRUE(bouncer) << bouncer.error();
  auto client =
      PgConnection::Connect((*bouncer)->ConnInfo("appdb", "app_user", passwords["app_user"]));
  ASSERT_TRUE(client) << client.error() << "\n" << (*bouncer)->LogTail();

  // The server only accepts SCRAM (initdb -A scram-sha-256), so an answer here means PgBouncer
  // logged in to it with the password from the rendered userlist.
  auto rows = client->Query(
      "SELECT current_user, current_database(), current_setting('password_encryption')");
  ASSERT_TRUE(rows) << rows.error();
  EXPECT_EQ((*rows)[0][0], "app_user");
  EXPECT_EQ((*rows)[0][1], "appdb");
  EXPECT_EQ((*rows)[0][2], "scram-sha-256");

  // Several transactions on the same client connection, as a pooled application runs them; in
  // transaction mode each keeps one server connection from BEGIN to COMMIT.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client->Query("BEGIN"));
    auto first = client->QueryValue("SELECT pg_backend_pid()");
    auto second = client->QueryValue("SELECT pg_backend_pid()");
    ASSERT_TRUE(client->Query("COMMIT"));
    ASSERT_TRUE(first && second);
    EXPECT_EQ(*first, *second);
  }
  auto answer = client->QueryValue("SELECT 6 * 7");
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(*answer, "42");
}

TEST_F(PostgresTier, WrongPasswordIsRefused) {
  auto server = PostgresServer::Start({.max_connections = 50});
  ASSERT_TRUE(server) << server.error();
  api::ConnectionPool pool = PoolFor(**server, "shop");
  pool.spec.databases = {Database("appdb")};
  pool.spec.users = {User("app_user")};
  render::Passwords passwords = {{"app_user", "the-right-one"}};
  ASSERT_TRUE(Provision(**server, pool, passwords));
  auto rendered = PlanAndRender(pool, passwords);
  ASSERT_TRUE(rendered) << rendered.error();
  auto bouncer = PgBouncer::Start(rendered->ini, rendered->userlist);
  ASSERT_TRUE(bouncer) << bouncer.error();

  auto wrong = PgConnection::Connect((*bouncer)->ConnInfo("appdb", "app_user", "the-wrong-one"));
  ASSERT_FALSE(wrong) << "logged in with a wrong password";
  EXPECT_TRUE(wrong.error().find("authentication failed") != std::string::npos) << wrong.error();

  // A role that exists on the server but not in the pool's userlist is refused by the pooler too.
  ASSERT_TRUE((*server)->CreateRole("outsider", "outsider-password"));
  auto outsider =
      PgConnection::Connect((*bouncer)->ConnInfo("appdb", "outsider", "outsider-password"));
  EXPECT_FALSE(outsider) << "a user outside the pool logged in";

  // The refusals did not break the pooler for the right password.
  auto right = PgConnection::Connect((*bouncer)->ConnInfo("appdb", "app_user", "the-right-one"));
  ASSERT_TRUE(right) << right.error();
  EXPECT_EQ(right->QueryValue("SELECT current_user").value_or(""), "app_user");
}

// ---------------------------------------------------------------------------------------------
// The rendered ini is one PgBouncer 1.18 accepts, and runs with the planned caps

TEST_F(PostgresTier, RenderedIniFor118StartsDebianPgBouncer) {
  auto server = PostgresServer::Start({.max_connections = 60});
  ASSERT_TRUE(server) << server.error();
  api::ConnectionPool pool = PoolFor(**server, "shop");
  api::PoolerSpec& pooler = pool.spec.pooler;
  pooler.instances = 2;
  pooler.max_surge = 1;
  pooler.max_client_conn = 200;
  pooler.default_pool_size = 5;
  pooler.min_pool_size = 1;
  pooler.reserve_pool_size = 2;
  pooler.reserve_pool_timeout_seconds = 3;
  pooler.timeouts.server_idle_timeout = 60;
  pooler.timeouts.server_connect_timeout = 10;
  pooler.timeouts.query_wait_timeout = 30;
  pooler.timeouts.client_login_timeout = 30;
  pooler.parameters = {{"ignore_startup_parameters", "extra_float_digits"},
                       {"log_connections", "0"},
                       {"application_name_add_host", "1"}};
  api::DatabaseSpec orders = Database("orders");
  orders.pool_size = 4;
  orders.reserve_pool_size = 1;
  orders.max_db_connections = 6;
  api::DatabaseSpec billing = Database("billing");  // no cap: the planner derives one
  billing.dbname = "billing_db";
  billing.pool_mode = api::PoolMode::kSession;
  pool.spec.databases = {orders, billing};
  api::UserSpec app = User("app");
  app.pool_mode = api::PoolMode::kSession;  // a [users] section entry
  api::UserSpec batch = User("batch");
  batch.max_user_connections = 3;
  pool.spec.users = {app, batch};
  render::Passwords passwords = {{"app", "app-password"}, {"batch", "batch-password"}};
  ASSERT_TRUE(Provision(**server, pool, passwords));
  auto rendered = PlanAndRender(pool, passwords);
  ASSERT_TRUE(rendered) << rendered.error();
  ASSERT_EQ(rendered->plan.databases.size(), 2u);
  EXPECT_TRUE(rendered->plan.databases[1].derived);

  // stats_users only lets the test read the admin console; everything else runs as rendered.
  auto bouncer = PgBouncer::Start(rendered->ini, rendered->userlist, {{"stats_users", "app"}});
  ASSERT_TRUE(bouncer) << bouncer.error() << "\n--- rendered:\n" << rendered->ini;

  for (auto [database, user] : {std::pair{"orders", "app"},
                                {"orders", "batch"},
                                {"billing", "app"},
                                {"billing", "batch"}}) {
    auto client = PgConnection::Connect((*bouncer)->ConnInfo(database, user, passwords[user]));
    ASSERT_TRUE(client) << database << "/" << user << ": " << client.error();
    auto rows = client->Query("SELECT current_database(), current_user");
    ASSERT_TRUE(rows) << rows.error();
    EXPECT_EQ((*rows)[0][1], user);
    EXPECT_EQ((*rows)[0][0], std::string(database) == "billing" ? "billing_db" : "orders");
  }

  // PgBouncer's own view of the databases: the declared and the derived caps, reserve, pool size.
  auto databases = ShowOnConsole(**bouncer, "app", passwords["app"], "DATABASES");
  ASSERT_TRUE(databases) << databases.error();
  ASSERT_TRUE(databases->contains("orders") && databases->contains("billing"));
  EXPECT_EQ((*databases)["orders"]["pool_size"], "4");
  EXPECT_EQ((*databases)["orders"]["reserve_pool"], "1");
  EXPECT_EQ((*databases)["orders"]["max_connections"], "6");
  EXPECT_EQ((*databases)["billing"]["database"], "billing_db");
  EXPECT_EQ((*databases)["billing"]["pool_mode"], "session");
  EXPECT_EQ((*databases)["billing"]["max_connections"],
            std::to_string(rendered->plan.databases[1].max_db_connections));

  auto users = ShowOnConsole(**bouncer, "app", passwords["app"], "USERS");
  ASSERT_TRUE(users) << users.error();
  EXPECT_EQ((*users)["app"]["pool_mode"], "session");

  auto config = ShowOnConsole(**bouncer, "app", passwords["app"], "CONFIG");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ((*config)["ignore_startup_parameters"]["value"], "extra_float_digits");
  EXPECT_EQ((*config)["application_name_add_host"]["value"], "1");
  EXPECT_EQ((*config)["reserve_pool_size"]["value"], "2");
  EXPECT_EQ((*config)["query_wait_timeout"]["value"], "30");
  EXPECT_EQ((*config)["max_client_conn"]["value"], "200");
  EXPECT_EQ((*config)["auth_type"]["value"], "scram-sha-256");
  EXPECT_TRUE((*bouncer)->Running());
  // 1.18 skips some settings it dislikes with only a warning: the rendered file must draw none.
  std::string log = (*bouncer)->LogTail(100000);
  EXPECT_EQ(log.find(" WARNING "), std::string::npos) << log;
  EXPECT_EQ(log.find(" ERROR "), std::string::npos) << log;
}

// ---------------------------------------------------------------------------------------------
// Under load: the server never sees more connections than the plan

// A server with room for 27 non-superuser connections, and a pool whose declared sizes would
// open far more (3 databases x 3 users x (10 + 2), per instance): the plan's caps must hold it.
struct LoadSetup {
  static constexpr int kMaxConnections = 30;
  static constexpr int kClients = 60;  // more than the server has slots for
  std::unique_ptr<PostgresServer> server;
  api::ConnectionPool pool;
  render::Passwords passwords;
  std::vector<std::pair<std::string, std::string>> logins;  // (database, user)
};

Outcome<LoadSetup> PrepareLoad() {
  LoadSetup setup;
  auto server = PostgresServer::Start(
      {.max_connections = LoadSetup::kMaxConnections, .superuser_reserved_connections = 3});
  if (!server) return std::unexpected(server.error());
  setup.server = std::move(*server);
  api::ConnectionPool& pool = setup.pool = PoolFor(*setup.server, "load");
  // Kept out of the budget: the sampler's and the harness's own (superuser) connections.
  pool.spec.server.overhead = {.value = 2};
  api::PoolerSpec& pooler = pool.spec.pooler;
  pooler.instances = 2;
  pooler.max_surge = 0;
  pooler.max_client_conn = 500;
  pooler.default_pool_size = 10;
  pooler.reserve_pool_size = 2;
  pooler.reserve_pool_timeout_seconds = 1;   // clients queue longer than that: reserves open
  pooler.timeouts.query_wait_timeout = 120;  // clients queue in pgbouncer, they are not dropped
  api::DatabaseSpec billing = Database("billing");
  billing.pool_size = 4;
  api::DatabaseSpec reports = Database("reports");
  reports.max_db_connections = 2;
  pool.spec.databases = {Database("orders"), billing, reports};
  api::UserSpec batch = User("batch");
  batch.max_user_connections = 3;
  pool.spec.users = {User("app"), batch, User("reader")};
  for (const auto& user : pool.spec.users) setup.passwords[user.name] = user.name + "-pw";
  for (const auto& database : pool.spec.databases) {
    for (const auto& user : pool.spec.users) setup.logins.emplace_back(database.name, user.name);
  }
  if (auto done = Provision(*setup.server, pool, setup.passwords); !done) {
    return std::unexpected(done.error());
  }
  return setup;
}

// The largest value a probe returned, probed from its own thread as fast as it answers until
// Finish(). The probe owns whatever connections it needs.
class MaxSampler {
 public:
  using Probe = std::function<Outcome<int64_t>()>;
  explicit MaxSampler(Probe probe) : probe_(std::move(probe)), thread_([this] { Run(); }) {}
  ~MaxSampler() { Finish(); }
  void Finish() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t max() const { return max_; }
  int64_t samples() const { return samples_; }
  const std::string& error() const { return error_; }  // read after Finish()

 private:
  void Run() {
    while (!done_) {
      auto value = probe_();
      if (!value) {
        error_ = value.error();
        return;
      }
      max_ = std::max<int64_t>(max_, *value);
      ++samples_;
    }
  }
  Probe probe_;
  std::atomic<bool> done_ = false;
  std::atomic<int64_t> max_ = 0;
  std::atomic<int64_t> samples_ = 0;
  std::string error_;
  std::thread thread_;  // last: starts once the members above exist
};

// The server's view: its client backends for anyone but the superuser (whose connections, like
// this probe's own, are outside the pool).
MaxSampler::Probe ServerBackends(PgConnection connection) {
  auto shared = std::make_shared<PgConnection>(std::move(connection));
  return [shared]() -> Outcome<int64_t> {
    auto count = shared->QueryValue(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid() AND usename IS DISTINCT FROM 'postgres'");
    if (!count) return std::unexpected(count.error());
    return std::stoll(*count);
  };
}

// The poolers' view: the server connections every pgbouncer holds (SHOW POOLS: active, idle,
// used, tested and logging in), summed over the instances. `per_instance_max` keeps each
// instance's own maximum.
MaxSampler::Probe PoolerServerConnections(std::vector<PgConnection> consoles,
                                          std::shared_ptr<std::vector<int64_t>> per_instance_max) {
  auto shared = std::make_shared<std::vector<PgConnection>>(std::move(consoles));
  per_instance_max->assign(shared->size(), 0);
  return [shared, per_instance_max]() -> Outcome<int64_t> {
    int64_t total = 0;
    for (size_t i = 0; i < shared->size(); ++i) {
      auto rows = (*shared)[i].QueryWithHeader("SHOW POOLS");
      if (!rows) return std::unexpected(rows.error());
      const std::vector<std::string>& header = rows->front();
      int64_t held = 0;
      for (size_t r = 1; r < rows->size(); ++r) {
        if ((*rows)[r][0] == "pgbouncer") continue;  // the admin console has no server side
        for (size_t c = 0; c < header.size(); ++c) {
          if (header[c].starts_with("sv_")) held += std::stoll((*rows)[r][c]);
        }
      }
      (*per_instance_max)[i] = std::max((*per_instance_max)[i], held);
      total += held;
    }
    return total;
  };
}

// How many server connections a pgbouncer closed to open one for another pool (its log says
// "closing because: evicted"): PgBouncer does this when a database or user is at its cap and a
// client of another pool of that database waits.
int64_t Evictions(const PgBouncer& bouncer) {
  std::string log = bouncer.LogTail(std::string::npos);
  int64_t count = 0;
  for (size_t at = log.find("closing because: evicted"); at != std::string::npos;
       at = log.find("closing because: evicted", at + 1)) {
    ++count;
  }
  return count;
}

// What happened to a batch of concurrent clients.
struct ClientOutcomes {
  std::atomic<int> completed = 0;
  std::mutex mutex;
  std::vector<std::string> errors;
  void Fail(std::string error) {
    std::lock_guard lock(mutex);
    errors.push_back(std::move(error));
  }
};

// Sampled from both sides at once. What PgBouncer holds is bounded exactly by the plan. What the
// server sees can exceed that for a moment: when a database or user is at its cap and a client of
// another of its pools waits, PgBouncer evicts an idle server connection and opens a new one at
// once, and the evicted backend exits asynchronously (it keeps its slot until it is gone). So the
// server's count is allowed one replacement in flight per pgbouncer process on top of the plan,
// and the server must never have refused the poolers a connection.
TEST_F(PostgresTier, ServerNeverSeesMoreThanThePlan) {
  auto setup = PrepareLoad();
  ASSERT_TRUE(setup) << setup.error();
  auto rendered = PlanAndRender(setup->pool, setup->passwords);
  ASSERT_TRUE(rendered) << rendered.error();
  const budget::PoolPlan& plan = rendered->plan;
  ASSERT_LE(plan.worst_case, rendered->usable);
  ASSERT_TRUE(std::ranges::any_of(plan.databases, [](const auto& db) { return db.derived; }))
      << "the declared sizes should need derived caps";

  // One pgbouncer per instance the plan counts (instances + surge), as the pods would run.
  // stats_users lets the sampler read SHOW POOLS; it does not change what the pooler opens.
  const std::string observer = setup->pool.spec.users.front().name;
  std::vector<std::unique_ptr<PgBouncer>> bouncers;
  std::vector<PgConnection> consoles;
  for (int i = 0; i < plan.instances + plan.max_surge; ++i) {
    auto bouncer = PgBouncer::Start(rendered->ini, rendered->userlist, {{"stats_users", observer}});
    ASSERT_TRUE(bouncer) << bouncer.error();
    auto console = PgConnection::Connect(
        (*bouncer)->ConnInfo("pgbouncer", observer, setup->passwords.at(observer)));
    ASSERT_TRUE(console) << console.error();
    bouncers.push_back(std::move(*bouncer));
    consoles.push_back(std::move(*console));
  }

  auto superuser = setup->server->ConnectAsSuperuser();
  ASSERT_TRUE(superuser) << superuser.error();
  MaxSampler server_view(ServerBackends(std::move(*superuser)));
  auto per_instance_max = std::make_shared<std::vector<int64_t>>();
  MaxSampler pooler_view(PoolerServerConnections(std::move(consoles), per_instance_max));

  // Every client connects, then all start their transactions together.
  constexpr int kTransactions = 10;
  ClientOutcomes outcomes;
  std::latch connected(LoadSetup::kClients);
  std::vector<std::jthread> clients;
  for (int i = 0; i < LoadSetup::kClients; ++i) {
    clients.emplace_back([&, i] {
      const PgBouncer& bouncer = *bouncers[i % bouncers.size()];
      const auto& [database, user] = setup->logins[i % setup->logins.size()];
      auto client =
          PgConnection::Connect(bouncer.ConnInfo(database, user, setup->passwords.at(user)));
      connected.arrive_and_wait();
      if (!client) return outcomes.Fail(client.error());
      for (int t = 0; t < kTransactions; ++t) {
        auto done = client->Query("BEGIN; SELECT pg_sleep(0.05); COMMIT");
        if (!done) return outcomes.Fail(done.error());
      }
      ++outcomes.completed;
    });
  }
  clients.clear();  // joins
  server_view.Finish();
  pooler_view.Finish();
  ASSERT_TRUE(server_view.error().empty()) << server_view.error();
  ASSERT_TRUE(pooler_view.error().empty()) << pooler_view.error();

  const int64_t processes = static_cast<int64_t>(bouncers.size());
  int64_t evictions = 0;
  for (const auto& bouncer : bouncers) evictions += Evictions(*bouncer);
  fmt::print(
      "[ budget ] max_connections {}, usable {}; plan {} per instance x {} = {}\n"
      "[ budget ] max held by the poolers {} ({} samples; per instance {}), max client backends "
      "on the server {} ({} samples); {} evictions\n",
      LoadSetup::kMaxConnections, rendered->usable, plan.per_instance, processes, plan.worst_case,
      pooler_view.max(), pooler_view.samples(), fmt::join(*per_instance_max, "/"),
      server_view.max(), server_view.samples(), evictions);
  RecordProperty("plan_worst_case", std::to_string(plan.worst_case));
  RecordProperty("max_held_by_poolers", std::to_string(pooler_view.max()));
  RecordProperty("max_server_backends", std::to_string(server_view.max()));

  EXPECT_TRUE(outcomes.errors.empty())
      << outcomes.errors.size() << " clients failed, e.g.: " << outcomes.errors.front();
  EXPECT_EQ(outcomes.completed, LoadSetup::kClients);
  EXPECT_LE(pooler_view.max(), plan.worst_case);
  for (int64_t held : *per_instance_max) EXPECT_LE(held, plan.per_instance);
  EXPECT_LE(server_view.max(), plan.worst_case + std::min(evictions, processes));
  // The load was real: both instances had server connections open at once.
  EXPECT_GT(pooler_view.max(), plan.per_instance);
  for (auto& bouncer : bouncers) {
    EXPECT_TRUE(bouncer->Running()) << bouncer->LogTail();
    // The server never refused the pooler a connection.
    std::string log = bouncer->LogTail(std::string::npos);
    EXPECT_EQ(log.find("too many clients"), std::string::npos);
    EXPECT_EQ(log.find("remaining connection slots"), std::string::npos);
  }
}

TEST_F(PostgresTier, DirectClientsHitTooManyClients) {
  auto setup = PrepareLoad();
  ASSERT_TRUE(setup) << setup.error();
  const int port = setup->server->port();

  // Each client connects straight to the server and holds its connection until every client has
  // tried: the same 60 clients as above, without the pooler in between.
  ClientOutcomes outcomes;
  std::latch attempted(LoadSetup::kClients);
  std::vector<std::jthread> clients;
  for (int i = 0; i < LoadSetup::kClients; ++i) {
    clients.emplace_back([&, i] {
      const auto& [database, user] = setup->logins[i % setup->logins.size()];
      auto client =
          PgConnection::Connect(LoopbackConnInfo(port, database, user, setup->passwords.at(user)));
      attempted.arrive_and_wait();
      if (!client) return outcomes.Fail(client.error());
      auto done = client->Query("BEGIN; SELECT pg_sleep(0.05); COMMIT");
      if (!done) return outcomes.Fail(done.error());
      ++outcomes.completed;
    });
  }
  clients.clear();  // joins

  int too_many = 0, reserved = 0;
  std::vector<std::string> other;
  for (const std::string& error : outcomes.errors) {
    if (error.find("too many clients") != std::string::npos) {
      ++too_many;
    } else if (IsOutOfSlots(error)) {
      ++reserved;
    } else {
      other.push_back(error);
    }
  }
  fmt::print(
      "[ direct ] {} clients: {} completed, {} \"too many clients\", {} \"reserved for "
      "superuser\" refusals, {} other errors\n",
      LoadSetup::kClients, outcomes.completed.load(), too_many, reserved, other.size());
  EXPECT_GT(too_many + reserved, 0) << "the server admitted every direct client";
  EXPECT_TRUE(other.empty()) << other.front();
  EXPECT_LE(outcomes.completed, LoadSetup::kMaxConnections - 3);
}

// ---------------------------------------------------------------------------------------------
// The harness's own rewrite, which every test above depends on

TEST(LoopbackRewrite, ReplacesOnlyTheNamedPgBouncerSettings) {
  std::string ini =
      "[databases]\n"
      "listen_port = not-this-one\n"
      "[pgbouncer]\n"
      "listen_addr = *\n"
      "listen_port = 6432\n"
      "; listen_port = a comment stays\n"
      "pool_mode = transaction\n"
      "[users]\n"
      "app = pool_mode=session\n";
  std::string out = OverridePgBouncerSettings(ini, {{"listen_addr", "127.0.0.1"},
                                                    {"listen_port", "7000"},
                                                    {"auth_file", "/tmp/x/userlist.txt"}});
  EXPECT_EQ(out,
            "[databases]\n"
            "listen_port = not-this-one\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            "listen_port = 7000\n"
            "; listen_port = a comment stays\n"
            "pool_mode = transaction\n"
            "auth_file = /tmp/x/userlist.txt\n"
            "[users]\n"
            "app = pool_mode=session\n");
}

}  // namespace
}  // namespace poolkeeper::pgtest
