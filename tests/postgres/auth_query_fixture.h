// The postgres tier's authQuery fixture: a real PostgreSQL 15 with two databases, the admin
// endpoint the operator would use, the setup it asks for, and a pooler rendered in authQuery mode
// started on it. Shared by auth_query_test.cc and auth_gate_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "budget/planner.h"
#include "harness.h"
#include "postgres/observer.h"
#include "render/render.h"

namespace poolkeeper::pgtest {

inline constexpr char kAuthPassword[] = "auth-Pw-7c1e";

inline postgres::Endpoint Admin(const PostgresServer& server) {
  postgres::Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = server.port();
  endpoint.user = PostgresServer::kSuperuser;
  endpoint.password = server.superuser_password();
  return endpoint;
}

inline postgres::AuthQuerySetup LookupSetup(std::vector<std::string> databases,
                                            std::string member_of = "") {
  return {api::kAuthUser,     kAuthPassword,        api::kAuthSchema,
          api::kAuthFunction, std::move(databases), std::move(member_of)};
}

inline api::ConnectionPool AuthPool(const PostgresServer& server,
                                    std::vector<std::string> databases, int cap) {
  api::ConnectionPool pool;
  pool.metadata.name = "auth";
  pool.metadata.namespace_ = "pg-tier";
  pool.spec.server.host = "127.0.0.1";
  pool.spec.server.port = server.port();
  pool.spec.server.max_connections = server.options().max_connections;
  pool.spec.server.superuser_reserved_connections = server.options().superuser_reserved_connections;
  pool.spec.auth_mode = api::AuthMode::kAuthQuery;
  pool.spec.pooler.instances = 1;
  pool.spec.pooler.max_surge = 0;
  pool.spec.pooler.pgbouncer_version = {1, 18};
  pool.spec.pooler.default_pool_size = 2;
  for (const auto& name : databases) {
    pool.spec.databases.push_back({.name = name, .dbname = name, .max_db_connections = cap});
  }
  return pool;
}

inline Outcome<std::string> Value(const PostgresServer& server, const std::string& sql,
                                  const std::string& dbname = "postgres") {
  auto conn = server.ConnectAsSuperuser(dbname);
  if (!conn) return std::unexpected(conn.error());
  return conn->QueryValue(sql);
}

class AuthQuery : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = MissingPrerequisite()) GTEST_SKIP() << *missing;
    auto started = PostgresServer::Start({.max_connections = 40});
    ASSERT_TRUE(started) << started.error();
    server_ = std::move(*started);
    ASSERT_TRUE(server_->CreateRole("owner", "owner-pw"));
    ASSERT_TRUE(server_->CreateDatabase("appdb", "owner"));
    ASSERT_TRUE(server_->CreateDatabase("otherdb", "owner"));
  }

  // Renders the pool, starts PgBouncer on it, and returns it.
  std::unique_ptr<PgBouncer> StartPooler(const api::ConnectionPool& pool, budget::PoolPlan& plan) {
    auto planned = budget::PlanPools({pool});
    EXPECT_EQ(planned.pools.at(0).verdict, budget::Verdict::kWithinBudget);
    plan = planned.pools.at(0);
    auto userlist = render::RenderUserlist(pool, {{api::kAuthUser, kAuthPassword}});
    EXPECT_TRUE(userlist.has_value());
    auto bouncer = PgBouncer::Start(render::RenderIni(pool, plan), userlist.value_or(""));
    EXPECT_TRUE(bouncer) << (bouncer ? "" : bouncer.error());
    return bouncer ? std::move(*bouncer) : nullptr;
  }

  postgres::LibpqClient client_;
  std::unique_ptr<PostgresServer> server_;
};

}  // namespace poolkeeper::pgtest
