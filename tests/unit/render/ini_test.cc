// pgbouncer.ini: golden files, determinism, version gating, caps and quoting.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "pools.h"
#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace {

using testing::BillingPlan;
using testing::BillingPool;
using testing::ExpectGolden;
using testing::OrdersPlan;
using testing::OrdersPool;

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(RenderIni, Golden118) {
  ExpectGolden("orders_1.18.ini", RenderIni(OrdersPool(), OrdersPlan()));
}

TEST(RenderIni, Golden125) {
  ExpectGolden("billing_1.25.ini", RenderIni(BillingPool(), BillingPlan()));
}

TEST(RenderIni, SameInputSameBytesWhateverTheSpecOrder) {
  const std::string first = RenderIni(OrdersPool(), OrdersPlan());
  EXPECT_EQ(RenderIni(OrdersPool(), OrdersPlan()), first);
  std::mt19937 random(7);
  for (int round = 0; round < 10; ++round) {
    auto pool = OrdersPool();
    auto plan = OrdersPlan();
    std::ranges::shuffle(pool.spec.databases, random);
    std::ranges::shuffle(pool.spec.users, random);
    std::ranges::shuffle(plan.databases, random);
    EXPECT_EQ(RenderIni(pool, plan), first) << "round " << round;
  }
}

TEST(RenderIni, DatabasesAreSortedAndNamesAreKeysPgBouncerReads) {
  const std::string ini = RenderIni(OrdersPool(), OrdersPlan());
  size_t analytics = ini.find("\nanalytics = ");
  size_t my_db = ini.find("\nmy-db = ");
  size_t orders = ini.find("\norders = ");
  ASSERT_NE(analytics, std::string::npos);
  ASSERT_NE(my_db, std::string::npos);
  ASSERT_NE(orders, std::string::npos);
  EXPECT_LT(analytics, my_db);
  EXPECT_LT(my_db, orders);
  EXPECT_TRUE(Contains(ini, "\nreport-user = pool_mode=session\n"));
  EXPECT_TRUE(Contains(ini, "\norders_app = max_user_connections=30\n"));
  EXPECT_FALSE(Contains(ini, "\nplain =")) << "no [users] line without per-user settings";
}

TEST(RenderIni, HeaderNamesThePool) {
  EXPECT_TRUE(RenderIni(OrdersPool(), OrdersPlan())
                  .starts_with("# Rendered by poolkeeper for shop/orders; do not edit\n"));
}

TEST(RenderIni, CapsComeFromThePlanAndAreNeverZero) {
  auto plan = OrdersPlan();
  const std::string ini = RenderIni(OrdersPool(), plan);
  EXPECT_TRUE(Contains(ini, "dbname=orders_prod pool_size=10 max_db_connections=24"));
  EXPECT_TRUE(Contains(ini, "max_db_connections=15"));

  // A plan without a cap for a database and a spec without one: no cap rendered, never 0.
  auto pool = OrdersPool();
  pool.spec.databases[2].max_db_connections.reset();
  pool.spec.pooler.max_user_connections.reset();
  pool.spec.users[0].max_user_connections.reset();
  for (auto& db : plan.databases) db.max_db_connections = 0;
  const std::string uncapped = RenderIni(pool, plan);
  EXPECT_FALSE(Contains(uncapped, "max_db_connections")) << uncapped;
  EXPECT_FALSE(Contains(uncapped, "max_user_connections")) << uncapped;
  for (const std::string& text : {ini, uncapped}) {
    EXPECT_FALSE(Contains(text, "connections=0"));
    EXPECT_FALSE(Contains(text, "connections = 0"));
  }
}

TEST(RenderIni, PlanCapWinsOverTheSpecWhenBothAreThere) {
  auto plan = OrdersPlan();
  plan.databases[2].max_db_connections = 9;  // the planner lowered the declared 15
  EXPECT_TRUE(Contains(RenderIni(OrdersPool(), plan), "max_db_connections=9"));
}

TEST(RenderIni, ReservePoolKeyFollowsTheVersion) {
  auto pool = OrdersPool();
  pool.spec.pooler.pgbouncer_version = {1, 23};
  EXPECT_TRUE(Contains(RenderIni(pool, OrdersPlan()), " reserve_pool=2 "));
  pool.spec.pooler.pgbouncer_version = {1, 24};
  const std::string ini = RenderIni(pool, OrdersPlan());
  EXPECT_TRUE(Contains(ini, " reserve_pool_size=2 "));
  EXPECT_FALSE(Contains(ini, " reserve_pool="));
}

TEST(RenderIni, KeysTheVersionDoesNotKnowAreNotRendered) {
  auto pool = OrdersPool();
  // Bypasses validation on purpose: the renderer must still not write a key 1.18 rejects.
  pool.spec.pooler.parameters["max_prepared_statements"] = "100";
  const std::string ini118 = RenderIni(pool, OrdersPlan());
  EXPECT_FALSE(Contains(ini118, "max_prepared_statements ="));
  EXPECT_TRUE(Contains(ini118, "# skipped max_prepared_statements: not in PgBouncer 1.18"));
  pool.spec.pooler.pgbouncer_version = {1, 21};
  EXPECT_TRUE(Contains(RenderIni(pool, OrdersPlan()), "\nmax_prepared_statements = 100\n"));
}

TEST(RenderIni, ManagedRefusedAndUnsafeParametersAreNeverRendered) {
  auto pool = OrdersPool();
  pool.spec.pooler.parameters["logfile"] = "/tmp/x";
  pool.spec.pooler.parameters["listen_port"] = "7000";
  pool.spec.pooler.parameters["server_check_query"] = "select 1\nauth_type = trust";
  pool.spec.pooler.parameters["bogus\nauth_type"] = "trust";
  const std::string ini = RenderIni(pool, OrdersPlan());
  EXPECT_FALSE(Contains(ini, "logfile ="));
  EXPECT_FALSE(Contains(ini, "listen_port = 7000"));
  EXPECT_FALSE(Contains(ini, "auth_type = trust"));
  EXPECT_FALSE(Contains(ini, "bogus"));
  EXPECT_TRUE(Contains(ini, "\nauth_type = scram-sha-256\n"));
}

TEST(RenderIni, LayoutKeys) {
  const std::string ini = RenderIni(OrdersPool(), OrdersPlan());
  EXPECT_TRUE(Contains(ini, "\nlisten_addr = *\n"));
  EXPECT_TRUE(Contains(ini, "\nlisten_port = 6432\n"));
  EXPECT_TRUE(Contains(ini, "\nunix_socket_dir =\n"));
  EXPECT_TRUE(Contains(ini, "\nauth_file = /etc/pgbouncer-auth/userlist.txt\n"));
  EXPECT_FALSE(Contains(ini, "logfile"));
  EXPECT_FALSE(Contains(ini, "pidfile"));
}

TEST(RenderIni, Quoting) {
  EXPECT_EQ(internal::IniName("orders_1"), "orders_1");
  // The real 1.18 loads `my-db = ...` and stops on `"my-db" = ...` (a syntax error).
  EXPECT_EQ(internal::IniName("my-db"), "my-db");
  EXPECT_EQ(internal::IniName("my.db"), "my.db");
  EXPECT_EQ(internal::IniName("a@b"), "\"a@b\"");
  EXPECT_EQ(internal::IniName("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(internal::ConnValue("db.shop.svc"), "db.shop.svc");
  EXPECT_EQ(internal::ConnValue("fe80::1"), "fe80::1");
  EXPECT_EQ(internal::ConnValue("a b'c\\d"), "'a b''c\\d'");
  EXPECT_EQ(internal::ConnValue(""), "''");
}

}  // namespace
}  // namespace poolkeeper::render
