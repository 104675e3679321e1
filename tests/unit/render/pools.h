// Test pools built by hand (no parser, no planner), with the plans a planner would produce, and a
// golden-file helper: POOLKEEPER_UPDATE_GOLDEN=1 rewrites the files instead of comparing.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "api/connection_pool.h"
#include "budget/plan.h"
#include "render/render.h"

namespace poolkeeper::render::testing {

// shop/orders on PgBouncer 1.18: names that need quoting, per-database and per-user settings,
// declared and derived caps, timeouts and a few allowed parameters.
inline api::ConnectionPool OrdersPool() {
  api::ConnectionPool pool;
  pool.metadata.name = "orders";
  pool.metadata.namespace_ = "shop";
  auto& spec = pool.spec;
  spec.server.host = "db.shop.svc";
  spec.server.max_connections = 200;
  spec.pooler.instances = 2;
  spec.pooler.max_surge = 1;
  spec.pooler.image = "registry.example/pgbouncer:1.18.0";
  spec.pooler.pgbouncer_version = {1, 18};
  spec.pooler.reserve_pool_size = 3;
  spec.pooler.max_user_connections = 40;
  spec.pooler.timeouts.query_timeout = 30;
  spec.pooler.timeouts.idle_transaction_timeout = 10;
  spec.pooler.timeouts.server_idle_timeout = 300;
  spec.pooler.parameters = {{"ignore_startup_parameters", "extra_float_digits"},
                            {"server_reset_query", "DISCARD ALL"},
                            {"tcp_keepidle", "60"}};
  spec.databases = {
      {.name = "orders", .dbname = "orders_prod", .pool_size = 10},
      {.name = "my-db",
       .dbname = "my-db",
       .reserve_pool_size = 2,
       .pool_mode = api::PoolMode::kSession},
      {.name = "analytics", .dbname = "analytics", .min_pool_size = 1, .max_db_connections = 15},
  };
  spec.users = {
      {.name = "orders_app",
       .password_secret_ref = {"orders-db", "password"},
       .max_user_connections = 30},
      {.name = "report-user",
       .password_secret_ref = {"reports-db", "password"},
       .pool_mode = api::PoolMode::kSession},
      {.name = "plain", .password_secret_ref = {"plain-db", "pw"}},
  };
  return pool;
}

inline budget::PoolPlan OrdersPlan() {
  budget::PoolPlan plan;
  plan.namespace_ = "shop";
  plan.name = "orders";
  plan.server = "db.shop.svc:5432";
  plan.instances = 2;
  plan.max_surge = 1;
  plan.databases = {{"orders", 24, true}, {"my-db", 12, true}, {"analytics", 15, false}};
  return plan;
}

inline Passwords OrdersPasswords() {
  return {{"orders_app", "s3cret-orders"}, {"report-user", "rep\"ort"}, {"plain", "plainpw"}};
}

// team-b/billing on PgBouncer 1.25, in the cluster (uid set): one instance, no surge room,
// statement mode, parameters that only newer releases know.
inline api::ConnectionPool BillingPool() {
  api::ConnectionPool pool;
  pool.metadata.name = "billing";
  pool.metadata.namespace_ = "team-b";
  pool.metadata.uid = "5f0c7a9e-2b1d-4c3e-9f00-0123456789ab";
  auto& spec = pool.spec;
  spec.server.host = "10.0.0.12";
  spec.server.port = 5433;
  spec.server.max_connections = 100;
  spec.pooler.instances = 1;
  spec.pooler.max_surge = 0;
  spec.pooler.image = "ghcr.io/cloudnative-pg/pgbouncer:1.25.0";
  spec.pooler.pgbouncer_version = {1, 25};
  spec.pooler.port = 6543;
  spec.pooler.pool_mode = api::PoolMode::kStatement;
  spec.pooler.default_pool_size = 8;
  spec.pooler.max_db_connections = 20;
  spec.pooler.parameters = {{"max_prepared_statements", "200"}, {"transaction_timeout", "45"}};
  spec.pooler.tolerations = nlohmann::json::array(
      {{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "db"}, {"effect", "NoSchedule"}}});
  spec.pooler.priority_class_name = "pooler-critical";
  spec.databases = {{.name = "billing", .dbname = "billing", .reserve_pool_size = 5}};
  spec.users = {{.name = "billing_app", .password_secret_ref = {"billing-db", "password"}}};
  return pool;
}

inline budget::PoolPlan BillingPlan() {
  budget::PoolPlan plan;
  plan.namespace_ = "team-b";
  plan.name = "billing";
  plan.server = "10.0.0.12:5433";
  plan.instances = 1;
  plan.databases = {{"billing", 13, false}};
  return plan;
}

inline Passwords BillingPasswords() { return {{"billing_app", "b1ll!ng"}}; }

inline void ExpectGolden(const std::string& file, const std::string& actual) {
  std::string path = std::string(POOLKEEPER_TESTDATA_DIR) + "/" + file;
  const char* update = std::getenv("POOLKEEPER_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << path << " is missing: run with POOLKEEPER_UPDATE_GOLDEN=1";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str())
      << file << " differs; if the change is intended, rerun with POOLKEEPER_UPDATE_GOLDEN=1 and "
      << "review the diff";
}

}  // namespace poolkeeper::render::testing
