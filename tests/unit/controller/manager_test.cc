// The Manager on a scripted API server and a fake clock, driven on the test's thread
// (StepCaches, RunOne): what one reconcile pass reads and writes, which Secret changes queue a
// pool, and the figures the metrics are read from. The handlers' fan-out is in fan_out_test.cc.
#include "controller/manager.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "../common/no_threads.h"
#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::Event;
using kube::testing::FakeTransport;
using nlohmann::json;

constexpr char kPools[] = "/apis/poolkeeper.io/v1alpha1/connectionpools";
constexpr char kServers[] = "/apis/poolkeeper.io/v1alpha1/postgresservers";
// The one label-selected cache of the Secrets pools may read (all namespaces).
constexpr char kPasswordSecrets[] =
    "/api/v1/secrets?*labelSelector=poolkeeper.io%2Fexpose-to-pools%3Dtrue";
// And of the ConfigMaps they may read (a server CA), with the same label.
constexpr char kExposedConfigMaps[] =
    "/api/v1/configmaps?*labelSelector=poolkeeper.io%2Fexpose-to-pools%3Dtrue";
constexpr char kSecretMetadata[] = "/api/v1/namespaces/shop/secrets/app-db";
constexpr char kStatus[] =
    "/apis/poolkeeper.io/v1alpha1/namespaces/shop/connectionpools/app/status";
// The label-selected caches of the kinds poolkeeper owns, and of pooler pods.
constexpr const char* kOwnedAndPods[] = {"/api/v1/configmaps", "/api/v1/secrets",
                                         "/api/v1/services", "/apis/policy/v1/poddisruptionbudgets",
                                         "/api/v1/pods"};

json Pool(const std::string& name, json status = json::object()) {
  return {{"apiVersion", "poolkeeper.io/v1alpha1"},
          {"kind", "ConnectionPool"},
          {"metadata",
           {{"name", name},
            {"namespace", "shop"},
            {"uid", "uid-" + name},
            {"resourceVersion", "3"},
            {"generation", 1},
            {"finalizers", {"poolkeeper.io/pods-drained"}},
            {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
          {"spec",
           {{"server", {{"host", "db"}, {"maxConnections", 100}}},
            {"pooler",
             {{"pgbouncerVersion", "1.18"}, {"image", "ghcr.io/cloudnative-pg/pgbouncer:1.18.0"}}},
            {"databases", {{{"name", "app"}}}},
            {"users", {{{"name", "app"}, {"passwordSecretRef", {{"name", "app-db"}}}}}}}},
          {"status", std::move(status)}};
}

json PasswordSecret(const std::string& version, const std::string& password,
                    const std::string& name = "app-db") {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata",
           {{"name", name},
            {"namespace", "shop"},
            {"resourceVersion", version},
            {"labels", {{"poolkeeper.io/expose-to-pools", "true"}}}}},
          {"stringData", {{"password", password}}}};
}

json List(const std::string& kind, std::vector<json> items) {
  return {{"kind", kind + "List"},
          {"apiVersion", "v1"},
          {"metadata", {{"resourceVersion", "10"}}},
          {"items", std::move(items)}};
}

struct ManagerTest : ::testing::Test {
  // Every cache's first LIST: these pools and servers, and no password Secret yet.
  void ListCaches(std::vector<json> pools, std::vector<json> servers = {}) {
    ListCachesOf(manager, std::move(pools), std::move(servers));
  }
  // The same for `of`, with these pooler pods.
  void ListCachesOf(Manager& of, std::vector<json> pools, std::vector<json> servers = {},
                    std::vector<json> pods = {}) {
    transport.RespondJson("GET", kServers, 200, List("PostgresServer", std::move(servers)));
    for (const char* path : kOwnedAndPods) {
      const bool pod_path = std::string_view(path) == "/api/v1/pods";
      transport.RespondJson("GET", path, 200, List("", pod_path ? pods : std::vector<json>{}));
    }
    transport.RespondJson("GET", kPools, 200, List("ConnectionPool", std::move(pools)));
    transport.RespondJson("GET", kPasswordSecrets, 200, List("Secret", {}));
    transport.RespondJson("GET", kExposedConfigMaps, 200, List("ConfigMap", {}));
    of.StepCaches();
    ASSERT_TRUE(of.Synced());
  }
  std::vector<kube::HttpRequest> Writes() const {
    std::vector<kube::HttpRequest> writes;
    for (const auto& request : transport.Requests()) {
      if (request.method != "GET") writes.push_back(request);
    }
    return writes;
  }

  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  int idles = 0;
  Manager manager{client,
                  clock,
                  {.workers = 1,
                   .on_idle = [this] { ++idles; },
                   .idle_interval = std::chrono::milliseconds(0)}};
};

// The process gives freed heap back when a burst of reconciles ends (common/memory.h): the hook
// runs when the last pass in flight ends and no key is ready, not after every pass.
TEST_F(ManagerTest, TheIdleHookRunsWhenNoKeyIsReadyAfterAPass) {
  ListCaches({Pool("app"), Pool("shop")});
  ASSERT_TRUE(manager.RunOne());
  EXPECT_EQ(idles, 0) << "the other pool is ready";
  ASSERT_TRUE(manager.RunOne());
  EXPECT_EQ(idles, 1) << "only resyncs are left, later on the clock";
}

TEST_F(ManagerTest, APoolWhoseSecretIsMissingSaysWhichAndWritesNothingElse) {
  ListCaches({Pool("app")});
  transport.Respond("GET", kSecretMetadata, 404, kube::testing::StatusBody(404, "NotFound"));
  transport.RespondJson("PATCH", kStatus, 200, Pool("app"));
  transport.RespondJson("POST", "/api/v1/namespaces/shop/events", 201, json::object());
  ASSERT_TRUE(manager.RunOne());
  auto writes = Writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].method, "PATCH");
  EXPECT_TRUE(writes[0].path.starts_with(kStatus)) << writes[0].path;
  const json status = json::parse(writes[0].body)["status"];
  bool named = false;
  for (const auto& c : status["conditions"]) {
    if (c["reason"] == "SecretNotFound") {
      named =
          c["message"].get<std::string>().find("Secret shop/app-db not found") != std::string::npos;
    }
  }
  EXPECT_TRUE(named) << status.dump();
  EXPECT_EQ(writes[1].method, "POST") << "the Warning event";
  EXPECT_TRUE(writes[1].path.starts_with("/api/v1/namespaces/shop/events")) << writes[1].path;
  EXPECT_FALSE(manager.RunOne()) << "next at the resync, not now";
}

// Issue 12: a pool named an existing Secret that was not meant for pools. The operator never
// cached it (the cache is label-selected) and asks for its metadata only; the pool says which
// label to add, and nothing but its status and a Warning is written.
TEST_F(ManagerTest, APoolReferencingAnUnlabelledSecretSaysWhichLabelToAddAndWritesNothingElse) {
  ListCaches({Pool("app")});
  transport.RespondJson("GET", kSecretMetadata, 200,
                        {{"kind", "PartialObjectMetadata"},
                         {"apiVersion", "meta.k8s.io/v1"},
                         {"metadata", {{"name", "app-db"}, {"namespace", "shop"}}}});
  transport.RespondJson("PATCH", kStatus, 200, Pool("app"));
  transport.RespondJson("POST", "/api/v1/namespaces/shop/events", 201, json::object());
  ASSERT_TRUE(manager.RunOne());
  bool metadata_only = false;
  for (const auto& request : transport.Requests()) {
    if (request.path == kSecretMetadata) {
      metadata_only = request.accept.find("PartialObjectMetadata") != std::string::npos;
    }
  }
  EXPECT_TRUE(metadata_only) << "the unlabelled Secret's data is never asked for";
  auto writes = Writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_TRUE(writes[0].path.starts_with(kStatus)) << writes[0].path;
  const json status = json::parse(writes[0].body)["status"];
  std::string message;
  for (const auto& c : status["conditions"]) {
    if (c["reason"] == "SecretNotExposed") message = c["message"];
  }
  EXPECT_NE(message.find("Secret shop/app-db is not labelled poolkeeper.io/expose-to-pools=true"),
            std::string::npos)
      << status.dump();
  EXPECT_NE(writes[1].body.find("SecretNotExposed"), std::string::npos) << writes[1].body;
}

// Issue 12: one watch (and thread) per referenced Secret. Fifty pools with a Secret each are
// served by one LIST and one WATCH with the label selector; each Secret's change queues its pool.
TEST_F(ManagerTest, FiftySecretsAreOneLabelSelectedListAndWatch) {
  std::vector<json> pools;
  std::vector<json> events;
  for (int i = 0; i < 50; ++i) {
    json pool = Pool("p" + std::to_string(i));
    pool["spec"]["users"][0]["passwordSecretRef"]["name"] = "s" + std::to_string(i);
    pools.push_back(pool);
    events.push_back(Event("ADDED", PasswordSecret("11", "x", "s" + std::to_string(i))));
  }
  ListCaches(pools);
  const uint64_t adds = manager.Queue().adds;
  transport.QueueWatch(kPasswordSecrets, events);
  manager.StepCaches();
  size_t secret_requests = 0;
  for (const auto& request : transport.Requests()) {
    const bool secrets = request.path.starts_with("/api/v1/secrets") ||
                         request.path.starts_with("/api/v1/namespaces/shop/secrets?");
    if (!secrets || request.path.find("managed-by") != std::string::npos) continue;
    ++secret_requests;
    EXPECT_NE(request.path.find("labelSelector=poolkeeper.io%2Fexpose-to-pools%3Dtrue"),
              std::string::npos)
        << request.path;
    EXPECT_EQ(request.path.find("fieldSelector"), std::string::npos) << request.path;
  }
  EXPECT_EQ(secret_requests, 2u) << "one LIST and one WATCH for 50 Secrets";
  EXPECT_EQ(manager.Queue().adds - adds, 50u) << "each Secret's ADDED queued its one pool";
}

TEST_F(ManagerTest, APoolIsReconciledAgainWhenItsSecretIsCreatedChangedOrDeleted) {
  ListCaches({Pool("app")});
  transport.RespondJson("PATCH", kStatus, 200, Pool("app"));
  ASSERT_TRUE(manager.RunOne());
  ASSERT_FALSE(manager.RunOne());
  const std::vector<std::pair<const char*, json>> events = {
      {"ADDED", PasswordSecret("11", "one")},
      {"MODIFIED", PasswordSecret("12", "two")},
      {"DELETED", PasswordSecret("12", "two")},
  };
  for (const auto& [type, secret] : events) {
    transport.QueueWatch(kPasswordSecrets, {Event(type, secret)});
    manager.StepCaches();  // the other caches' watches are not scripted: they fail, unchanged
    const size_t before = transport.Requests().size();
    EXPECT_TRUE(manager.RunOne()) << type;
    if (std::string(type) == "ADDED") {
      const auto requests = transport.Requests();
      EXPECT_TRUE(
          std::any_of(requests.begin() + static_cast<std::ptrdiff_t>(before), requests.end(),
                      [](const kube::HttpRequest& r) {
                        return r.method == "GET" && r.path.ends_with("/configmaps/app-config");
                      }))
          << "with its Secret the pass renders, and checks its ConfigMap's name is free";
    }
    // The pass fails on the unscripted writes and backs off on the fake clock, which stays put.
    EXPECT_FALSE(manager.RunOne()) << type;
  }
}

TEST_F(ManagerTest, APassWaitsForTheFirstListOfTheSecretCache) {
  transport.RespondJson("GET", kServers, 200, List("PostgresServer", {}));
  for (const char* path : kOwnedAndPods) transport.RespondJson("GET", path, 200, List("", {}));
  transport.RespondJson("GET", kPools, 200, List("ConnectionPool", {Pool("app")}));
  // The Secret cache's LIST is not scripted: it fails, so the Secret is not known to be missing.
  manager.StepCaches();
  ASSERT_TRUE(manager.RunOne());
  EXPECT_TRUE(Writes().empty()) << "nothing is reported missing before the cache has listed";
  EXPECT_EQ(manager.Queue().depth, 1u);
  EXPECT_FALSE(manager.RunOne()) << "retried 200ms later, on the clock";
  clock.Advance(std::chrono::milliseconds(200));
  transport.RespondJson("GET", kPasswordSecrets, 200, List("Secret", {PasswordSecret("7", "x")}));
  manager.StepCaches();
  EXPECT_TRUE(manager.RunOne());
}

// Issue 12: under a pids limit the process aborted with std::system_error and crash-looped. The
// caches and the workers that cannot get a thread are errors naming it; `run` exits with them.
TEST_F(ManagerTest, CachesAndWorkersThatCannotStartAreErrorsNotAborts) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer does not start threads in a forked child";
#endif
  int code = poolkeeper::testing::RunWithoutNewThreads([this] {
    Status informers = manager.StartInformers();
    if (informers || informers.error().code != ErrorCode::kUnavailable) return 1;
    if (informers.error().message.find("cannot start thread") == std::string::npos) return 2;
    Status workers = manager.StartWorkers();
    if (workers ||
        workers.error().message.find("cannot start thread worker-0") == std::string::npos) {
      return 3;
    }
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST_F(ManagerTest, MetricsFiguresAreReadFromTheCachesAndTheQueue) {
  const json server = {
      {"apiVersion", "poolkeeper.io/v1alpha1"},
      {"kind", "PostgresServer"},
      {"metadata", {{"name", "main"}, {"resourceVersion", "4"}, {"generation", 1}}},
      {"spec", {{"host", "db"}, {"maxConnections", 100}}},
      {"status",
       {{"budget", {{"maxConnections", 100}, {"usable", 90}, {"allocated", 30}, {"headroom", 60}}},
        {"observed", {{"inUseByOthers", 7}}},
        {"conditions", {{{"type", "Reachable"}, {"status", "True"}}}}}}};
  ListCaches({Pool("app", {{"budget", {{"usable", 90}, {"allocated", 20}, {"headroom", 70}}}}),
              Pool("web", {{"budget", {{"usable", 90}, {"allocated", 10}, {"headroom", 60}}}}),
              Pool("new")},
             {server});

  auto budgets = manager.Budgets();
  ASSERT_EQ(budgets.size(), 2u) << "a pool without a budget in its status has no figures";
  EXPECT_EQ(budgets[0].name, "app");
  EXPECT_EQ(budgets[0].allocated, 20);
  EXPECT_EQ(budgets[1].name, "web");
  EXPECT_EQ(budgets[1].headroom, 60);

  auto servers = manager.Servers();
  ASSERT_EQ(servers.size(), 1u);
  EXPECT_EQ(servers[0].name, "main");
  EXPECT_EQ(servers[0].max_connections, 100);
  EXPECT_EQ(servers[0].in_use_by_others, 7);
  EXPECT_EQ(servers[0].usable, 90);
  EXPECT_EQ(servers[0].allocated, 30);
  EXPECT_TRUE(servers[0].reachable);
  EXPECT_FALSE(servers[0].observation_age_seconds) << "never observed";

  QueueFigures queue = manager.Queue();
  EXPECT_EQ(queue.depth, 3u) << "each pool once, however many events queued it";
  EXPECT_GE(queue.adds, 3u);
  EXPECT_EQ(queue.retries, 0u);
  EXPECT_EQ(manager.Relists(), 0u) << "first LISTs are not relists";
}

class CountingAgents : public AgentStatusSource {
 public:
  Result<AgentReport> Report(const std::string& pod_ip) override {
    asked.push_back(pod_ip);
    return AgentReport{.config_hash = "h1",
                       .server_connections = 6,
                       .clients_waiting = 2,
                       .longest_wait_seconds = 1};
  }
  std::vector<std::string> asked;
};

// Issue 13: a reconcile reads what the agent poller last heard and asks no agent itself; the
// poller's answer queues the pool, whose status then shows the agents' live figures.
TEST_F(ManagerTest, AReconcileAsksNoAgentAndShowsWhatThePollerHeard) {
  CountingAgents agents;
  api::ParseDefaults defaults;
  defaults.agent_image = "localhost/poolkeeper:dev";
  Manager with_agents{client, clock, {.workers = 1, .defaults = defaults, .agent_status = &agents}};
  const json pod = {{"metadata",
                     {{"name", "app-0"},
                      {"namespace", "shop"},
                      {"uid", "uid-app-0"},
                      {"resourceVersion", "5"},
                      {"labels", {{"poolkeeper.io/pool", "app"}}}}},
                    {"spec", {{"containers", {{{"name", "pgbouncer"}}, {{"name", "agent"}}}}}},
                    {"status", {{"phase", "Running"}, {"podIP", "10.1.0.5"}}}};
  ListCachesOf(with_agents, {Pool("app")}, {}, {pod});
  // Blocked on its missing Secret: a pass that writes the status and nothing else.
  for (int pass = 0; pass < 2; ++pass) {
    transport.Respond("GET", kSecretMetadata, 404, kube::testing::StatusBody(404, "NotFound"));
    transport.RespondJson("PATCH", kStatus, 200, Pool("app"));
  }
  transport.RespondJson("POST", "/api/v1/namespaces/shop/events", 201, json::object());

  ASSERT_TRUE(with_agents.RunOne());
  EXPECT_TRUE(agents.asked.empty()) << "no agent request on the worker";
  auto writes = Writes();
  ASSERT_FALSE(writes.empty());
  EXPECT_EQ(json::parse(writes[0].body)["status"]["live"]["podsReporting"], 0) << "not heard yet";
  EXPECT_FALSE(with_agents.RunOne()) << "nothing queued until the poller hears something";

  EXPECT_EQ(with_agents.PollAgents(), 1);
  EXPECT_EQ(agents.asked, std::vector<std::string>{"10.1.0.5"});
  ASSERT_TRUE(with_agents.RunOne()) << "queued by the poller";
  EXPECT_EQ(agents.asked.size(), 1u);
  writes = Writes();
  const json live = json::parse(writes.back().body)["status"]["live"];
  EXPECT_EQ(live, json({{"serverConnections", 6},
                        {"clientsWaiting", 2},
                        {"longestWaitSeconds", 1},
                        {"podsReporting", 1}}));
}

}  // namespace
}  // namespace poolkeeper::controller
