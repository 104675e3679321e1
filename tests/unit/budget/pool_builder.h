// Test helpers: ConnectionPools built in code (the planner never sees YAML), with small defaults
// chosen so the arithmetic in each test is easy to redo by hand.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "api/connection_pool.h"
#include "budget/plan.h"

namespace poolkeeper::budget {

// Readable failures for the plan values GoogleTest compares.
inline void PrintTo(const DatabasePlan& db, std::ostream* out) {
  *out << "{" << db.name << " " << db.max_db_connections << (db.derived ? " derived" : "") << "}";
}

}  // namespace poolkeeper::budget

namespace poolkeeper::budget::testing {

// One database "app", one user "app", pool size 10, no reserve, 1 instance + 1 surge, on
// db:5432 with max_connections 100, 0 superuser reserved, overhead 10.
inline api::ConnectionPool Pool(std::string name = "pool", int64_t max_connections = 100) {
  api::ConnectionPool pool;
  pool.metadata.name = std::move(name);
  pool.metadata.namespace_ = "ns";
  pool.spec.server.host = "db";
  pool.spec.server.max_connections = max_connections;
  pool.spec.server.superuser_reserved_connections = 0;
  pool.spec.server.overhead = {10, false};
  pool.spec.pooler.instances = 1;
  pool.spec.pooler.max_surge = 1;
  pool.spec.pooler.default_pool_size = 10;
  pool.spec.databases = {{.name = "app", .dbname = "app"}};
  pool.spec.users = {{.name = "app"}};
  return pool;
}

struct Db {
  std::string name;
  std::optional<int> pool_size;
  std::optional<int> reserve;
  std::optional<int> cap;
};

inline void SetDatabases(api::ConnectionPool& pool, const std::vector<Db>& dbs) {
  pool.spec.databases.clear();
  for (const Db& db : dbs) {
    api::DatabaseSpec spec;
    spec.name = db.name;
    spec.dbname = db.name;
    spec.pool_size = db.pool_size;
    spec.reserve_pool_size = db.reserve;
    spec.max_db_connections = db.cap;
    pool.spec.databases.push_back(spec);
  }
}

struct User {
  std::string name;
  std::optional<int> cap;  // max_user_connections
};

inline void SetUsers(api::ConnectionPool& pool, const std::vector<User>& users) {
  pool.spec.users.clear();
  for (const User& user : users) {
    api::UserSpec spec;
    spec.name = user.name;
    spec.max_user_connections = user.cap;
    pool.spec.users.push_back(spec);
  }
}

}  // namespace poolkeeper::budget::testing
