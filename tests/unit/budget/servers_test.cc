// Placing pools on PostgresServers: one physical server has one budget whatever it is called, the
// server's own figures and rules (policy, namespaces, quotas, CONNECTION LIMITs) decide, and a pool
// whose declaration disagrees blocks only itself.
#include "budget/servers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "pool_builder.h"

namespace poolkeeper::budget {
namespace {

using testing::Pool;

// A server "main" at db.example.internal:5432, declaring max_connections 100, 0 superuser
// reserved, overhead 10 (the figures Pool() declares inline).
api::PostgresServer Server(std::string name = "main", std::string host = "db.example.internal") {
  api::PostgresServer server;
  server.name = std::move(name);
  server.spec.host = std::move(host);
  server.spec.max_connections = 100;
  server.spec.superuser_reserved_connections = 0;
  server.spec.overhead = {10, false};
  return server;
}

api::ServerObservation Observed(int64_t max_connections, std::string identity = "7001") {
  api::ServerObservation seen;
  seen.max_connections = max_connections;
  seen.system_identifier = std::move(identity);
  return seen;
}

api::ConnectionPool OnRef(std::string name, std::string server = "main") {
  api::ConnectionPool pool = Pool(std::move(name));
  pool.spec.server = {};
  pool.spec.server_ref = std::move(server);
  return pool;
}

api::ConnectionPool Inline(std::string name, std::string host) {
  api::ConnectionPool pool = Pool(std::move(name));
  pool.spec.server.host = std::move(host);
  return pool;
}

const PoolPlan& Find(const Plan& plan, const std::string& name) {
  auto it = std::ranges::find(plan.pools, name, &PoolPlan::name);
  EXPECT_NE(it, plan.pools.end()) << name;
  return *it;
}

bool HasCode(const PoolPlan& pool, const std::string& code) {
  return std::ranges::any_of(pool.findings, [&](const Finding& f) { return f.code == code; });
}

TEST(ServerDirectory, PoolByReferenceConnectsToTheServerAndUsesItsObservedFigures) {
  api::PostgresServer server = Server();
  server.observed = Observed(60);
  ServerDirectory directory({server});
  Placement placed = directory.Place(OnRef("p"));
  ASSERT_FALSE(placed.refusal);
  EXPECT_EQ(placed.pool.spec.server.host, "db.example.internal");
  EXPECT_EQ(placed.pool.spec.server.max_connections, 60);  // observed, not the declared 100
  const Plan plan = PlanOnServers({OnRef("p")}, directory);
  ASSERT_EQ(plan.servers.size(), 1u);
  EXPECT_EQ(plan.servers[0].server, "postgresserver/main");
  EXPECT_EQ(plan.servers[0].usable, 50);
}

TEST(ServerDirectory, EveryNameOfOneServerIsOneBudget) {
  api::PostgresServer server = Server();
  server.spec.aliases = {api::EndpointKey("198.18.0.5", 5432), api::EndpointKey("db", 5432)};
  ServerDirectory directory({server});
  // Each pool alone fits (1 + 1 pods x 10 = 20 of 90 usable); the fifth gets what is left.
  std::vector<api::ConnectionPool> pools = {OnRef("by-ref"), Inline("fqdn", "db.example.internal"),
                                            Inline("dot", "DB.example.internal."),
                                            Inline("ip", "198.18.0.5"), Inline("short", "db")};
  const Plan plan = PlanOnServers(pools, directory);
  ASSERT_EQ(plan.servers.size(), 1u);
  EXPECT_EQ(plan.servers[0].allocated, 90);
  EXPECT_TRUE(HasCode(Find(plan, "short"), "DerivedCaps"));
  for (const auto& pool : plan.pools) EXPECT_EQ(pool.server, "postgresserver/main");
  pools.push_back(Inline("sixth", "db"));
  const Plan over = PlanOnServers(pools, directory);
  EXPECT_EQ(Find(over, "sixth").verdict, Verdict::kBudgetExceeded);
}

TEST(ServerDirectory, ServersWithOneObservedIdentityShareABudget) {
  api::PostgresServer a = Server("a", "127.0.0.1");
  api::PostgresServer b = Server("b", "localhost");
  a.observed = Observed(100, "42");
  b.observed = Observed(100, "42");
  api::PostgresServer other = Server("c", "other");
  other.observed = Observed(100, "43");
  ServerDirectory directory({b, other, a});
  EXPECT_EQ(directory.GroupOf("b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(directory.GroupOf("c"), std::vector<std::string>{"c"});
  const Plan plan = PlanOnServers({OnRef("x", "a"), OnRef("y", "b"), OnRef("z", "c")}, directory);
  EXPECT_EQ(Find(plan, "x").server, "postgresserver/a");
  EXPECT_EQ(Find(plan, "y").server, "postgresserver/a");
  EXPECT_EQ(Find(plan, "z").server, "postgresserver/c");
}

// Placement copies a pool only to change it: an inline server no PostgresServer describes plans
// the pool as it is, one on a PostgresServer gets the server's figures, as Place says.
TEST(ServerDirectory, PlacesLazilyCopyingOnlyAPoolItChanges) {
  ServerDirectory directory({Server()});
  const api::ConnectionPool alone = Inline("alone", "elsewhere.example.internal");
  const LazyPlacement as_is = directory.PlaceLazily(alone);
  EXPECT_FALSE(as_is.refusal);
  EXPECT_FALSE(as_is.changed);
  EXPECT_EQ(&as_is.Of(alone), &alone);
  const api::ConnectionPool lost = OnRef("lost", "nope");
  const LazyPlacement refused = directory.PlaceLazily(lost);
  ASSERT_TRUE(refused.refusal);
  EXPECT_EQ(refused.refusal->code, "ServerNotFound");
  EXPECT_FALSE(refused.changed);
  const api::ConnectionPool on_main = OnRef("p");
  const LazyPlacement placed = directory.PlaceLazily(on_main);
  ASSERT_TRUE(placed.changed);
  EXPECT_EQ(placed.Of(on_main).spec.server.host, "db.example.internal");
  EXPECT_EQ(placed.Of(on_main).spec.server.budget_key,
            directory.Place(on_main).pool.spec.server.budget_key);
}

// Holdings summed by budget once (the reconciler keeps them for the status) plan the same.
TEST(ServerDirectory, PlanOnRekeyedHoldingsIsThePlanOnHoldingsByReference) {
  api::PostgresServer server = Server();
  server.spec.aliases = {api::EndpointKey("198.18.0.5", 5432)};
  ServerDirectory directory({server});
  const std::vector<api::ConnectionPool> pools = {OnRef("p"), OnRef("lost", "nope"),
                                                  Inline("q", "db.example.internal")};
  const Holdings by_reference = {{"198.18.0.5:5432", {{"gone/old", 40}}},
                                 {"postgresserver/main", {{"ns/p", 10}}}};
  const Plan by_reference_plan = PlanOnServers(pools, directory, by_reference);
  const Plan rekeyed = PlanOnRekeyed(Pointers(pools), directory, directory.Rekey(by_reference));
  EXPECT_EQ(rekeyed.servers, by_reference_plan.servers);
  EXPECT_EQ(rekeyed.pools, by_reference_plan.pools);
  EXPECT_EQ(rekeyed.servers.at(0).held_elsewhere, 40);
}

TEST(ServerDirectory, PodsAnnotatedWithAnyNameAreChargedOnTheBudget) {
  api::PostgresServer server = Server();
  server.spec.aliases = {api::EndpointKey("198.18.0.5", 5432)};
  ServerDirectory directory({server});
  // A deleted pool's pods still drain on the alias: 89 of 90 usable are held.
  const Plan plan =
      PlanOnServers({OnRef("p")}, directory, {{"198.18.0.5:5432", {{"gone/old", 89}}}});
  EXPECT_EQ(plan.servers[0].held_elsewhere, 89);
  EXPECT_EQ(Find(plan, "p").verdict, Verdict::kBudgetExceeded);
}

TEST(ServerDirectory, TenantCannotLoosenTheServersPolicy) {
  ServerDirectory directory({Server()});
  api::ConnectionPool pool = OnRef("greedy");
  pool.spec.budget_policy = api::BudgetPolicy::kWarn;
  pool.spec.pooler.instances = 10;  // 11 pods x 10 = 110 > 90, and no cap left to derive
  pool.spec.pooler.max_db_connections = 10;
  const Plan plan = PlanOnServers({pool}, directory);
  const PoolPlan& planned = Find(plan, "greedy");
  EXPECT_TRUE(HasCode(planned, "PolicySetByServer"));
  EXPECT_EQ(planned.verdict, Verdict::kBudgetExceeded);
  EXPECT_EQ(planned.allocated, 0);  // enforced: not rolled out, charged what it holds
  EXPECT_EQ(directory.Place(pool).pool.spec.budget_policy, api::BudgetPolicy::kEnforce);
}

TEST(ServerDirectory, DisagreeingInlineDeclarationBlocksOnlyThatPool) {
  api::PostgresServer server = Server();
  server.observed = Observed(100);
  ServerDirectory directory({server});
  api::ConnectionPool liar = Inline("liar", "db.example.internal");
  liar.spec.server.max_connections = 101;
  const Plan plan =
      PlanOnServers({OnRef("a"), liar, Inline("b", "db.example.internal")}, directory);
  EXPECT_TRUE(Find(plan, "liar").refused);
  EXPECT_TRUE(HasCode(Find(plan, "liar"), "ServerConflict"));
  EXPECT_FALSE(Find(plan, "a").refused);
  EXPECT_FALSE(Find(plan, "b").refused);
  EXPECT_EQ(Find(plan, "b").verdict, Verdict::kWithinBudget);
  EXPECT_EQ(plan.pools[1].name, "liar");  // input order kept
}

TEST(ServerDirectory, RefusesMissingServersAndNamespacesItDoesNotAdmit) {
  api::PostgresServer server = Server();
  server.spec.allowed_namespaces = std::set<std::string>{"payments"};
  ServerDirectory directory({server});
  api::ConnectionPool admitted = OnRef("ok");
  admitted.metadata.namespace_ = "payments";
  const Plan plan = PlanOnServers({admitted, OnRef("outsider"), OnRef("lost", "nope")}, directory);
  EXPECT_FALSE(Find(plan, "ok").refused);
  EXPECT_TRUE(HasCode(Find(plan, "outsider"), "NamespaceNotAllowed"));
  EXPECT_TRUE(HasCode(Find(plan, "lost"), "ServerNotFound"));
  EXPECT_TRUE(plan.AnyError());
}

TEST(ServerDirectory, UnobservedServerWithoutDeclaredFiguresAdmitsNothing) {
  api::PostgresServer server = Server();
  server.spec.max_connections.reset();
  server.spec.credentials_secret_ref = api::NamespacedSecretRef{"ops", "observer"};
  const Plan plan = PlanOnServers({OnRef("p")}, ServerDirectory({server}));
  EXPECT_TRUE(HasCode(Find(plan, "p"), "ServerNotObserved"));
}

TEST(ServerDirectory, NamespaceQuotaBoundsItsPoolsOnly) {
  api::PostgresServer server = Server();
  server.spec.namespace_quotas = {{"team-a", 30}};
  ServerDirectory directory({server});
  api::ConnectionPool first = OnRef("first");
  first.metadata.namespace_ = "team-a";
  api::ConnectionPool second = OnRef("second");
  second.metadata.namespace_ = "team-a";
  api::ConnectionPool elsewhere = OnRef("elsewhere");
  elsewhere.metadata.namespace_ = "team-b";
  const Plan plan = PlanOnServers({first, second, elsewhere}, directory);
  EXPECT_EQ(Find(plan, "first").verdict, Verdict::kWithinBudget);  // 20 of 30
  // 10 left of the quota: caps are derived down to 5 per pod.
  EXPECT_EQ(Find(plan, "second").worst_case, 10);
  EXPECT_TRUE(HasCode(Find(plan, "second"), "DerivedCaps"));
  EXPECT_EQ(Find(plan, "elsewhere").worst_case, 20);
  api::ConnectionPool third = OnRef("third");
  third.metadata.namespace_ = "team-a";
  const Plan over = PlanOnServers({first, second, third}, directory);
  const PoolPlan& refused = Find(over, "third");
  EXPECT_EQ(refused.verdict, Verdict::kBudgetExceeded);
  EXPECT_NE(refused.findings.back().message.find("namespace team-a's quota on the server is 30"),
            std::string::npos)
      << refused.findings.back().message;
}

TEST(ServerDirectory, UnreachableServerAdmitsNothingBeyondWhatIsHeld) {
  api::PostgresServer server = Server();
  server.observed = Observed(100);
  server.unreachable = true;
  ServerDirectory directory({server});
  const Holdings holdings = {{"postgresserver/main", {{"ns/running", 20}}}};
  const Plan plan = PlanOnServers({OnRef("running"), OnRef("new")}, directory, holdings);
  EXPECT_EQ(Find(plan, "running").verdict, Verdict::kWithinBudget);
  const PoolPlan& fresh = Find(plan, "new");
  EXPECT_EQ(fresh.verdict, Verdict::kBudgetExceeded);
  EXPECT_NE(fresh.findings.back().message.find("cannot be observed"), std::string::npos);
}

TEST(ServerDirectory, RoleAndDatabaseConnectionLimitsCapThePlan) {
  api::PostgresServer server = Server();
  server.observed = Observed(100);
  server.observed->role_limits = {{"app", 4}};
  ServerDirectory directory({server});
  EXPECT_EQ(Find(PlanOnServers({OnRef("p")}, directory), "p").per_instance, 4);
  server.observed->role_limits.clear();
  server.observed->database_limits = {{"app", 3}};
  EXPECT_EQ(Find(PlanOnServers({OnRef("p")}, ServerDirectory({server})), "p").per_instance, 3);
}

TEST(ServerDirectory, MeasuredOverheadTakesWhatOtherClientsUse) {
  api::PostgresServer server = Server();
  server.spec.measure_overhead = true;
  server.observed = Observed(100);
  server.observed->in_use_by_others = 25;
  EXPECT_EQ(PlanOnServers({OnRef("p")}, ServerDirectory({server})).servers[0].usable, 75);
  server.observed->in_use_by_others = 4;  // the declared 10 stays aside
  EXPECT_EQ(PlanOnServers({OnRef("p")}, ServerDirectory({server})).servers[0].usable, 90);
}

// A pool on a PostgresServer that verifies the server with no caRef of its own uses the server's
// CA, copied into its ConfigMap; a server that names none refuses it, naming the field.
TEST(ServerDirectory, PoolVerifyingItsServerWithoutACaRefUsesTheServersCa) {
  api::PostgresServer with_ca = Server();
  with_ca.spec.ca_secret_ref = api::NamespacedSecretRef{"ops", "db-ca"};
  const api::CaRef own{.secret_name = "own-ca"};
  struct Case {
    const char* name;
    bool server_has_ca;
    api::SslMode mode;
    std::optional<api::CaRef> pool_ca;
    const char* refusal;                  // "" when placed
    std::optional<api::CaRef> placed_ca;  // spec.tls.server.caRef once placed
    bool from_server;
  };
  const api::CaRef copied{.config_map_name = "p-config", .key = api::kServerCaKey};
  const Case cases[] = {
      {"server's CA copied", true, api::SslMode::kVerifyFull, std::nullopt, "", copied, true},
      {"verify-ca too", true, api::SslMode::kVerifyCa, std::nullopt, "", copied, true},
      {"the pool's own caRef wins", true, api::SslMode::kVerifyFull, own, "", own, false},
      {"own caRef, server without CA", false, api::SslMode::kVerifyFull, own, "", own, false},
      {"no CA anywhere", false, api::SslMode::kVerifyFull, std::nullopt, "ServerCaMissing",
       std::nullopt, false},
      {"require copies nothing", true, api::SslMode::kRequire, std::nullopt, "", std::nullopt,
       false},
  };
  for (const auto& c : cases) {
    ServerDirectory directory({c.server_has_ca ? with_ca : Server()});
    api::ConnectionPool pool = OnRef("p");
    pool.spec.tls.server = api::ServerTlsSpec{.ssl_mode = c.mode, .ca_ref = c.pool_ca};
    Placement placement = directory.Place(pool);
    if (*c.refusal) {
      ASSERT_TRUE(placement.refusal) << c.name;
      EXPECT_EQ(placement.refusal->code, c.refusal) << c.name;
      EXPECT_TRUE(placement.refusal->message.starts_with("spec.tls.server.caRef: "))
          << placement.refusal->message;
      EXPECT_NE(placement.refusal->message.find("spec.caSecretRef"), std::string::npos);
      continue;
    }
    ASSERT_FALSE(placement.refusal) << c.name << ": " << placement.refusal->message;
    const api::ServerTlsSpec& tls = *placement.pool.spec.tls.server;
    EXPECT_EQ(tls.ca_ref, c.placed_ca) << c.name;
    EXPECT_EQ(tls.ca_from_server, c.from_server) << c.name;
  }
}

TEST(RoleGrants, PodsTimesWhatOnePgbouncerOpensAsTheRolePlusOnePerPod) {
  api::PostgresServer server = Server();
  ServerDirectory directory({server});
  api::ConnectionPool a = OnRef("a");  // (1 + 1) pods x 10 as "app"
  api::ConnectionPool b = OnRef("b");
  b.spec.users = {{.name = "app"}, {.name = "reports", .max_user_connections = 3}};
  const std::vector<api::ConnectionPool> pools = {a, b};
  const Plan plan = PlanOnServers(pools, directory);
  auto grants = RoleGrants(pools, directory, plan, {});
  EXPECT_EQ(grants["app"], (2 * 10 + 2) + (2 * 10 + 2));
  EXPECT_EQ(grants["reports"], 2 * 3 + 2);
  // A pool refused, with pods still running, keeps at least what they hold.
  api::ConnectionPool refused = OnRef("c", "missing");
  refused.spec.users = {{.name = "legacy"}};
  auto with_refused = RoleGrants({a, refused}, directory, PlanOnServers({a, refused}, directory),
                                 {{"postgresserver/missing", {{"ns/c", 7}}}});
  EXPECT_EQ(with_refused["legacy"], 7 + 1);
  EXPECT_FALSE(
      RoleGrants({refused}, directory, PlanOnServers({refused}, directory), {}).contains("legacy"));
}

}  // namespace
}  // namespace poolkeeper::budget
