// Findings with the arithmetic in the message: a user reading `check` output or a pool's status
// should be able to redo the sum and see which number to change.
#include "budget/findings.h"

#include <optional>
#include <utility>

#include "budget/planner.h"

namespace poolkeeper::budget {
namespace {

std::string N(int64_t value) { return std::to_string(value); }

std::string Plural(int64_t count, const std::string& word) {
  return N(count) + " " + word + (count == 1 ? "" : "s");
}

std::string OverheadText(const api::Overhead& overhead, int64_t resolved) {
  if (!overhead.percent) return N(resolved);
  return N(resolved) + " (" + N(overhead.value) + "%)";
}

Finding Make(Severity severity, std::string code, std::string message) {
  return Finding{severity, std::move(code), std::move(message)};
}

}  // namespace

std::string PodsText(int instances, int max_surge) {
  return "(" + Plural(instances, "instance") + " + " + N(max_surge) + " surge)";
}

std::string LedgerTerms(const LedgerPosition& ledger) {
  std::string terms = " - " + N(ledger.earlier) + " allocated to earlier pools";
  if (ledger.held != 0) terms += " - " + N(ledger.held) + " held by other pools' pods";
  if (!ledger.constraint.empty()) terms += "; " + ledger.constraint;
  return terms;
}

Finding BudgetExceededFinding(const api::ConnectionPool& pool, const PoolPlan& plan,
                              const Sizing& sizing, const LedgerPosition& ledger) {
  const api::ServerSpec& server = *ledger.server;
  std::string message =
      PodsText(plan.instances, plan.max_surge) + " x " + N(plan.per_instance) +
      " per instance = " + N(plan.worst_case) + " > " + N(ledger.remaining) + " remaining of " +
      N(ledger.usable) + " usable on " + plan.server + " (max_connections " +
      N(server.max_connections) + " - " + N(server.superuser_reserved_connections) +
      " superuser reserved - " + N(server.reserved_connections) + " reserved - " +
      OverheadText(server.overhead, ledger.overhead) + " overhead" + LedgerTerms(ledger) + ")";
  const int64_t pods = PodsCharged(pool.spec.pooler);
  if (ledger.usable <= 0) {
    message += "; the server leaves nothing usable for poolers";
  } else if (sizing.minimum_per_instance) {
    message +=
        "; even with 1 connection per instance for each database without maxDbConnections "
        "it needs " +
        N(pods) + " x " + N(*sizing.minimum_per_instance) + " = " +
        N(pods * *sizing.minimum_per_instance);
  } else {
    message += "; every database sets maxDbConnections, so no lower cap can be derived";
  }
  if (pool.spec.budget_policy == api::BudgetPolicy::kWarn) {
    message += "; rolled out anyway because budget.policy is Warn";
  } else {
    message +=
        "; not rolled out: lower the pool sizes, caps or instances, or raise "
        "max_connections";
  }
  const Severity severity =
      pool.spec.budget_policy == api::BudgetPolicy::kWarn ? Severity::kWarning : Severity::kError;
  return Make(severity, "BudgetExceeded", std::move(message));
}

Finding DerivedCapsFinding(const PoolPlan& plan, const Sizing& sizing,
                           const LedgerPosition& ledger) {
  const int64_t pods = int64_t{plan.instances} + plan.max_surge;  // derived only when pods > 0
  std::string caps;
  for (size_t d = 0; d < plan.databases.size(); ++d) {
    const DatabasePlan& db = plan.databases[d];
    if (!db.derived) continue;
    if (!caps.empty()) caps += ", ";
    caps += db.name + " " + N(db.max_db_connections) + " (could use " + N(sizing.demand[d]) + ")";
  }
  return Make(Severity::kInfo, "DerivedCaps",
              PodsText(plan.instances, plan.max_surge) + " x " + N(sizing.natural_per_instance) +
                  " per instance = " + N(pods * sizing.natural_per_instance) + " > " +
                  N(ledger.remaining) + " remaining on " + plan.server +
                  (ledger.constraint.empty() ? "" : " (" + ledger.constraint + ")") +
                  ", so maxDbConnections per instance was derived to fit " + N(ledger.remaining) +
                  " / " + N(pods) + " = " + N(sizing.budget_per_instance) + " per instance: " +
                  caps + "; worst case " + PodsText(plan.instances, plan.max_surge) + " x " +
                  N(plan.per_instance) + " = " + N(plan.worst_case));
}

namespace {

std::string ClientTerms(const api::ConnectionPool& pool) {
  std::string terms;
  for (const auto& client : pool.spec.clients) {
    if (!terms.empty()) terms += " + ";
    terms +=
        N(client.instances) + " x (" + N(client.pool_size) + " + " + N(client.max_overflow) + ")";
  }
  return terms;
}

// pgbouncer resolves a pool's mode as the user's, else the database's, else the pooler's.
std::optional<std::pair<std::string, std::string>> FirstSessionPair(
    const api::ConnectionPool& pool) {
  for (const auto& db : pool.spec.databases) {
    for (const auto& user : pool.spec.users) {
      api::PoolMode mode =
          user.pool_mode.value_or(db.pool_mode.value_or(pool.spec.pooler.pool_mode));
      if (mode == api::PoolMode::kSession) return std::make_pair(db.name, user.name);
    }
  }
  return std::nullopt;
}

void AddSessionQueueing(const api::ConnectionPool& pool, PoolPlan& plan) {
  auto pair = FirstSessionPair(pool);
  if (!pair) return;
  const auto& pooler = pool.spec.pooler;
  std::string clients, servers;
  if (!pool.spec.clients.empty()) {
    const int64_t server_side = int64_t{pooler.instances} * plan.per_instance;
    if (plan.client_demand <= server_side) return;
    clients = "clients open up to " + ClientTerms(pool) + " = " + N(plan.client_demand);
    servers = Plural(pooler.instances, "instance") + " x " + N(plan.per_instance) + " = " +
              N(server_side) + " server connections";
  } else {
    if (pooler.max_client_conn <= plan.per_instance) return;
    clients = "each instance accepts max_client_conn " + N(pooler.max_client_conn) + " clients";
    servers = N(plan.per_instance) + " server connections per instance";
  }
  plan.findings.push_back(
      Make(Severity::kWarning, "SessionModeQueueing",
           "pool mode is session (database " + pair->first + ", user " + pair->second +
               "): each client holds a server connection for its whole session, and " + clients +
               " but there are only " + servers +
               ", so the other clients wait in pgbouncer's queue until a session ends"));
}

}  // namespace

void AddAdvisoryFindings(const api::ConnectionPool& pool, const LedgerPosition& ledger,
                         PoolPlan& plan) {
  const auto& pooler = pool.spec.pooler;
  if (!pool.spec.clients.empty() && plan.client_demand > plan.client_capacity) {
    // pgbouncer refuses clients beyond max_client_conn outright, unlike server connections.
    plan.findings.push_back(
        Make(Severity::kError, "ClientCapacityExceeded",
             "clients open up to " + ClientTerms(pool) + " = " + N(plan.client_demand) + " > " +
                 Plural(pooler.instances, "instance") + " x " + N(pooler.max_client_conn) +
                 " max_client_conn = " + N(plan.client_capacity) +
                 ": pgbouncer refuses the connections beyond max_client_conn"));
  }
  AddSessionQueueing(pool, plan);

  for (size_t d = 0; d < plan.databases.size(); ++d) {
    const auto& db = pool.spec.databases[d];
    const int64_t min_pool = db.min_pool_size.value_or(pooler.min_pool_size);
    const int64_t wanted = min_pool * static_cast<int64_t>(pool.spec.users.size());
    const int64_t cap = plan.databases[d].max_db_connections;
    if (min_pool > 0 && wanted > cap) {
      // pgbouncer keeps opening connections to reach min_pool_size; the cap stops it, and the
      // pools that filled first keep the connections the others need.
      plan.findings.push_back(Make(
          Severity::kWarning, "MinPoolExceedsCap",
          "database " + db.name + ": minPoolSize " + N(min_pool) + " x " +
              Plural(static_cast<int64_t>(pool.spec.users.size()), "user") + " = " + N(wanted) +
              " > maxDbConnections " + N(cap) + (plan.databases[d].derived ? " (derived)" : "") +
              ": not every pool can hold its minimum, and idle minimum connections of some users "
              "block others"));
    }
  }

  if (ledger.overhead == 0) {
    plan.findings.push_back(Make(Severity::kWarning, "NoOverheadReserved",
                                 "overhead of " + plan.server +
                                     " is 0: migrations, monitoring, cron jobs and admin "
                                     "sessions compete with the pools for the same " +
                                     N(ledger.usable) +
                                     " usable connections; set spec.server.overhead"));
  }
  if (pooler.instances == 0) {
    plan.findings.push_back(Make(Severity::kInfo, "InstancesZero",
                                 "pooler.instances is 0: no pgbouncer runs and the pool is charged "
                                 "nothing; scaling up is planned against what is left then"));
  }
}

}  // namespace poolkeeper::budget
