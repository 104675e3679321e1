// Reload or roll: with the pooler agent, the pods' config hash (OwnedObjects::pod_hash) covers only
// what a running PgBouncer cannot take on RELOAD, so a change of anything else leaves the pods as
// they are (the agent reloads) while the ConfigMap's config hash moves. Without the agent every
// change rolls. One row per setting and PgBouncer version.
#include <gtest/gtest.h>

#include <functional>

#include "pools.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace {

using testing::OrdersPasswords;
using testing::OrdersPlan;
using testing::OrdersPool;

struct Rendered {
  std::string config_hash;
  std::string pod_hash;
  std::string pod_annotation;
};

struct Change {
  std::string name;
  api::PgBouncerVersion version;
  std::function<void(api::ConnectionPool&)> edit;
  bool rolls = false;                    // with the agent
  std::string revision = "passwords@1";  // the credentials revision after the change
  std::string restart_revision = "tls@1";
};

Rendered Render(const api::ConnectionPool& pool, const std::string& revision,
                const std::string& restart_revision) {
  Passwords passwords = OrdersPasswords();
  passwords[api::kAgentUser] = "agent-pw";
  auto objects = BuildObjects(pool, OrdersPlan(), passwords, revision, {}, restart_revision);
  EXPECT_TRUE(objects.has_value()) << objects.error().message;
  if (!objects) return {};
  return {objects->config_hash, objects->pod_hash,
          objects->pod_template["metadata"]["annotations"][kConfigHashAnnotation]};
}

api::ConnectionPool Pool(api::PgBouncerVersion version, bool agent) {
  auto pool = OrdersPool();
  pool.spec.pooler.pgbouncer_version = version;
  pool.spec.pooler.image = "registry.example/pgbouncer:" + version.ToString();
  if (agent) pool.spec.pooler.agent_image = "localhost/poolkeeper:dev";
  return pool;
}

const std::vector<Change>& Changes() {
  static const std::vector<Change> changes = {
      // What PgBouncer applies on RELOAD: the agent reloads, the pods stay.
      {"default_pool_size", {1, 18}, [](auto& p) { p.spec.pooler.default_pool_size = 7; }},
      {"default_pool_size", {1, 25}, [](auto& p) { p.spec.pooler.default_pool_size = 7; }},
      {"min_pool_size", {1, 18}, [](auto& p) { p.spec.pooler.min_pool_size = 2; }},
      {"reserve_pool_size", {1, 18}, [](auto& p) { p.spec.pooler.reserve_pool_size = 1; }},
      {"max_client_conn", {1, 18}, [](auto& p) { p.spec.pooler.max_client_conn = 50; }},
      {"max_client_conn", {1, 25}, [](auto& p) { p.spec.pooler.max_client_conn = 50; }},
      {"max_user_connections", {1, 18}, [](auto& p) { p.spec.pooler.max_user_connections = 9; }},
      {"pool_mode", {1, 18}, [](auto& p) { p.spec.pooler.pool_mode = api::PoolMode::kSession; }},
      {"databases: pool_size", {1, 18}, [](auto& p) { p.spec.databases[0].pool_size = 4; }},
      {"databases: pool_mode",
       {1, 18},
       [](auto& p) { p.spec.databases[1].pool_mode = api::PoolMode::kTransaction; }},
      {"users: max_user_connections",
       {1, 18},
       [](auto& p) { p.spec.users[0].max_user_connections = 3; }},
      {"query_wait_timeout",
       {1, 18},
       [](auto& p) { p.spec.pooler.timeouts.query_wait_timeout = 9; }},
      {"server_idle_timeout",
       {1, 18},
       [](auto& p) { p.spec.pooler.timeouts.server_idle_timeout = 60; }},
      {"parameter tcp_keepidle",
       {1, 18},
       [](auto& p) { p.spec.pooler.parameters["tcp_keepidle"] = "30"; }},
      {"parameter max_prepared_statements",
       {1, 21},
       [](auto& p) { p.spec.pooler.parameters["max_prepared_statements"] = "100"; }},
      {"password rotation (auth_file)", {1, 18}, [](auto&) {}, false, "passwords@2"},
      {"password rotation (auth_file)", {1, 25}, [](auto&) {}, false, "passwords@2"},
      // What needs a new process, or a new pod: the pods roll.
      {"listen_port", {1, 18}, [](auto& p) { p.spec.pooler.port = 6433; }, true},
      {"listen_port", {1, 25}, [](auto& p) { p.spec.pooler.port = 6433; }, true},
      {"parameter pkt_buf",
       {1, 18},
       [](auto& p) { p.spec.pooler.parameters["pkt_buf"] = "8192"; },
       true},
      {"parameter listen_backlog",
       {1, 24},
       [](auto& p) { p.spec.pooler.parameters["listen_backlog"] = "256"; },
       true},
      {"image", {1, 18}, [](auto& p) { p.spec.pooler.image += "-2"; }, true},
      {"resources",
       {1, 18},
       [](auto& p) {
         p.spec.pooler.resources = {{"limits", {{"memory", "1Gi"}}}};
       },
       true},
      // The grace period (a pod field, fixed at creation) follows the longest transaction bound.
      {"query_timeout", {1, 18}, [](auto& p) { p.spec.pooler.timeouts.query_timeout = 90; }, true},
      {"TLS certificate renewal", {1, 18}, [](auto&) {}, true, "passwords@1,tls@2", "tls@2"},
  };
  return changes;
}

TEST(ReloadOrRoll, WithTheAgentOnlyWhatNeedsANewProcessChangesThePodHash) {
  for (const Change& change : Changes()) {
    SCOPED_TRACE(change.name + " on " + change.version.ToString());
    auto before_pool = Pool(change.version, true);
    auto after_pool = before_pool;
    change.edit(after_pool);
    Rendered before = Render(before_pool, "passwords@1", "tls@1");
    Rendered after = Render(after_pool, change.revision, change.restart_revision);
    if (!change.rolls) {
      EXPECT_NE(before.config_hash, after.config_hash) << "the agent would not notice the change";
    }
    EXPECT_EQ(before.pod_hash != after.pod_hash, change.rolls);
    EXPECT_EQ(after.pod_annotation, after.pod_hash);
    EXPECT_NE(after.pod_hash, after.config_hash);
  }
}

// (The pods of a pool without the agent carry the config hash itself: a change of the ini or of the
// credentials rolls them.)
TEST(ReloadOrRoll, WithoutTheAgentEveryChangeOfTheConfigurationRolls) {
  for (const Change& change : Changes()) {
    SCOPED_TRACE(change.name + " on " + change.version.ToString());
    auto before_pool = Pool(change.version, false);
    auto after_pool = before_pool;
    change.edit(after_pool);
    Rendered before = Render(before_pool, "passwords@1", "tls@1");
    Rendered after = Render(after_pool, change.revision, change.restart_revision);
    if (before.config_hash != after.config_hash) {
      EXPECT_NE(before.pod_hash, after.pod_hash);
    }
    EXPECT_EQ(after.pod_hash, after.config_hash);
    EXPECT_EQ(after.pod_annotation, after.config_hash);
  }
}

TEST(ReloadOrRoll, TheConfigMapNamesThePodHashOfTheAdmittedConfiguration) {
  Passwords passwords = OrdersPasswords();
  passwords[api::kAgentUser] = "agent-pw";
  auto with = BuildObjects(Pool({1, 18}, true), OrdersPlan(), passwords, "r", {}, "t");
  ASSERT_TRUE(with.has_value());
  EXPECT_EQ(with->config_map["metadata"]["annotations"][kPodHashAnnotation], with->pod_hash);
  auto without = BuildObjects(Pool({1, 18}, false), OrdersPlan(), passwords, "r", {}, "t");
  ASSERT_TRUE(without.has_value());
  EXPECT_FALSE(without->config_map["metadata"]["annotations"].contains(kPodHashAnnotation));
}

}  // namespace
}  // namespace poolkeeper::render
