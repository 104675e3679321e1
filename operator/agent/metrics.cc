// SHOW tables to the Prometheus text format (see metrics.h). One table row per metric: which SHOW,
// which column, the exporter's name, type, and the divisor to its unit (PgBouncer reports times in
// microseconds; the exporter's *_seconds* metrics are seconds).
#include "agent/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <vector>

namespace poolkeeper::agent {
namespace {

using postgres::ConsoleTable;

struct ColumnMetric {
  std::string_view show;
  std::string_view column;
  std::string_view name;
  std::string_view type;  // "gauge" or "counter"
  double divisor;
  std::string_view help;
};

constexpr auto kColumnMetrics = std::to_array<ColumnMetric>({
    {"SHOW POOLS", "cl_active", "pgbouncer_pools_client_active_connections", "gauge", 1,
     "Client connections linked to server connection and able to process queries"},
    {"SHOW POOLS", "cl_waiting", "pgbouncer_pools_client_waiting_connections", "gauge", 1,
     "Client connections waiting on a server connection"},
    {"SHOW POOLS", "sv_active", "pgbouncer_pools_server_active_connections", "gauge", 1,
     "Server connections linked to a client connection"},
    {"SHOW POOLS", "sv_idle", "pgbouncer_pools_server_idle_connections", "gauge", 1,
     "Server connections idle and ready for a client query"},
    {"SHOW POOLS", "sv_used", "pgbouncer_pools_server_used_connections", "gauge", 1,
     "Server connections idle more than server_check_delay, needing server_check_query"},
    {"SHOW POOLS", "sv_tested", "pgbouncer_pools_server_testing_connections", "gauge", 1,
     "Server connections running server_reset_query or server_check_query"},
    {"SHOW POOLS", "sv_login", "pgbouncer_pools_server_login_connections", "gauge", 1,
     "Server connections in the process of logging in"},
    {"SHOW STATS", "total_query_count", "pgbouncer_stats_queries_pooled_total", "counter", 1,
     "Total number of SQL queries pooled"},
    {"SHOW STATS", "total_query_time", "pgbouncer_stats_queries_duration_seconds_total", "counter",
     1e6, "Total seconds spent by pgbouncer actively connected to PostgreSQL, executing queries"},
    {"SHOW STATS", "total_received", "pgbouncer_stats_received_bytes_total", "counter", 1,
     "Total bytes of network traffic received by pgbouncer"},
    {"SHOW STATS", "total_sent", "pgbouncer_stats_sent_bytes_total", "counter", 1,
     "Total bytes of network traffic sent by pgbouncer"},
    {"SHOW STATS", "total_wait_time", "pgbouncer_stats_client_wait_seconds_total", "counter", 1e6,
     "Time spent by clients waiting for a server, in seconds"},
    {"SHOW STATS", "total_xact_count", "pgbouncer_stats_sql_transactions_pooled_total", "counter",
     1, "Total number of SQL transactions pooled"},
    {"SHOW STATS", "total_xact_time", "pgbouncer_stats_server_in_transaction_seconds_total",
     "counter", 1e6, "Total seconds spent by pgbouncer connected to PostgreSQL in a transaction"},
    {"SHOW DATABASES", "pool_size", "pgbouncer_databases_pool_size", "gauge", 1,
     "Maximum number of server connections"},
    {"SHOW DATABASES", "reserve_pool", "pgbouncer_databases_reserve_pool", "gauge", 1,
     "Maximum number of additional connections for this database"},
    {"SHOW DATABASES", "max_connections", "pgbouncer_databases_max_connections", "gauge", 1,
     "Maximum number of allowed connections for this database"},
    {"SHOW DATABASES", "current_connections", "pgbouncer_databases_current_connections", "gauge", 1,
     "Current number of connections for this database"},
    {"SHOW DATABASES", "paused", "pgbouncer_databases_paused", "gauge", 1,
     "1 if this database is currently paused, else 0"},
    {"SHOW DATABASES", "disabled", "pgbouncer_databases_disabled", "gauge", 1,
     "1 if this database is currently disabled, else 0"},
});

// The labels of each SHOW's rows, as the exporter names them (its label = the column).
std::vector<std::string_view> LabelColumns(std::string_view show) {
  if (show == "SHOW POOLS") return {"database", "user"};
  if (show == "SHOW STATS") return {"database"};
  if (show == "SHOW DATABASES")
    return {"name", "host", "port", "database", "force_user", "pool_mode"};
  return {};
}

// SHOW LISTS rows (list, items) and SHOW CONFIG keys the exporter turns into single gauges.
struct ItemMetric {
  std::string_view item;
  std::string_view name;
  std::string_view help;
};
constexpr auto kListMetrics = std::to_array<ItemMetric>({
    {"databases", "pgbouncer_databases", "Count of databases"},
    {"users", "pgbouncer_users", "Count of users"},
    {"pools", "pgbouncer_pools", "Count of pools"},
    {"free_clients", "pgbouncer_free_clients", "Count of free clients"},
    {"used_clients", "pgbouncer_used_clients", "Count of used clients"},
    {"login_clients", "pgbouncer_login_clients", "Count of clients in login state"},
    {"free_servers", "pgbouncer_free_servers", "Count of free servers"},
    {"used_servers", "pgbouncer_used_servers", "Count of used servers"},
    {"dns_names", "pgbouncer_cached_dns_names", "Count of DNS names in the cache"},
    {"dns_zones", "pgbouncer_cached_dns_zones", "Count of DNS zones in the cache"},
    {"dns_queries", "pgbouncer_in_flight_dns_queries", "Count of in-flight DNS queries"},
});
constexpr auto kConfigMetrics = std::to_array<ItemMetric>({
    {"max_client_conn", "pgbouncer_config_max_client_connections",
     "Config maximum number of client connections"},
    {"max_user_connections", "pgbouncer_config_max_user_connections",
     "Config maximum number of server connections per user"},
});

std::optional<double> Number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// Families in the order written, serialized by prometheus-cpp (as the operator's own /metrics is),
// which escapes label values and help texts.
class Writer {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    families_.push_back(
        {std::string(name),
         std::string(help),
         type == "counter" ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge,
         {}});
  }
  // A sample of the family written last.
  void Sample(const std::vector<std::pair<std::string, std::string>>& labels, double value) {
    prometheus::MetricFamily& family = families_.back();
    prometheus::ClientMetric metric;
    for (const auto& [name, label_value] : labels) metric.label.push_back({name, label_value});
    if (family.type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
  }
  std::string str() const { return prometheus::TextSerializer().Serialize(families_); }

 private:
  std::vector<prometheus::MetricFamily> families_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

Labels RowLabels(const ConsoleTable& table, size_t row, std::string_view show) {
  Labels labels;
  for (std::string_view column : LabelColumns(show)) {
    if (table.Column(std::string(column)) < 0) continue;
    labels.emplace_back(std::string(column), table.Value(row, std::string(column)));
  }
  return labels;
}

const ConsoleTable* Find(const std::map<std::string, ConsoleTable>& shows, std::string_view show) {
  auto found = shows.find(std::string(show));
  return found == shows.end() ? nullptr : &found->second;
}

void ColumnMetrics(const std::map<std::string, ConsoleTable>& shows, Writer& out) {
  for (const ColumnMetric& metric : kColumnMetrics) {
    const ConsoleTable* table = Find(shows, metric.show);
    if (table == nullptr || table->Column(std::string(metric.column)) < 0) continue;
    out.Family(metric.name, metric.type, metric.help);
    for (size_t row = 0; row < table->rows.size(); ++row) {
      auto value = Number(table->Value(row, std::string(metric.column)));
      if (value) out.Sample(RowLabels(*table, row, metric.show), *value / metric.divisor);
    }
  }
  // maxwait is whole seconds and maxwait_us the microseconds beyond them.
  if (const ConsoleTable* pools = Find(shows, "SHOW POOLS");
      pools && pools->Column("maxwait") >= 0) {
    constexpr std::string_view kName = "pgbouncer_pools_client_maxwait_seconds";
    out.Family(kName, "gauge", "Age of oldest unserved client connection, in seconds");
    for (size_t row = 0; row < pools->rows.size(); ++row) {
      double seconds = Number(pools->Value(row, "maxwait")).value_or(0) +
                       Number(pools->Value(row, "maxwait_us")).value_or(0) / 1e6;
      out.Sample(RowLabels(*pools, row, "SHOW POOLS"), seconds);
    }
  }
}

// SHOW SERVERS and SHOW CLIENTS: connections counted by (database, user, state).
void ConnectionCounts(const ConsoleTable* table, std::string_view name, std::string_view help,
                      Writer& out) {
  if (table == nullptr) return;
  std::map<std::tuple<std::string, std::string, std::string>, int> counts;
  for (size_t row = 0; row < table->rows.size(); ++row) {
    ++counts[{table->Value(row, "database"), table->Value(row, "user"),
              table->Value(row, "state")}];
  }
  out.Family(name, "gauge", help);
  for (const auto& [key, count] : counts) {
    const auto& [database, user, state] = key;
    out.Sample({{"database", database}, {"user", user}, {"state", state}}, count);
  }
}

void ItemMetrics(const ConsoleTable* table, std::string_view key_column,
                 std::string_view value_column, std::span<const ItemMetric> metrics, Writer& out) {
  if (table == nullptr) return;
  for (const ItemMetric& metric : metrics) {
    for (size_t row = 0; row < table->rows.size(); ++row) {
      if (table->Value(row, std::string(key_column)) != metric.item) continue;
      auto value = Number(table->Value(row, std::string(value_column)));
      if (!value) continue;
      out.Family(metric.name, "gauge", metric.help);
      out.Sample({}, *value);
    }
  }
}

// No namespace or pod label: the scrape's target labels carry those, and a second one would be
// renamed exported_namespace.
void BudgetMetrics(const PodBudget& budget, Writer& out) {
  const Labels labels = {{"pool", budget.pool.value_or("")},
                         {"server", budget.server.value_or("")}};
  if (budget.connections) {
    out.Family("poolkeeper_agent_budget_server_connections", "gauge",
               "The most server connections the operator budgets for this pod's PgBouncer "
               "(its poolkeeper.io/connections-per-pod annotation)");
    out.Sample(labels, *budget.connections);
  }
  if (budget.pool) {
    out.Family("poolkeeper_agent_pool_info", "gauge",
               "The pool this pod belongs to and the server endpoint its budget is charged to");
    out.Sample(labels, 1);
  }
}

}  // namespace

const std::vector<std::string>& MetricCommands() {
  static const std::vector<std::string> commands = {
      "SHOW POOLS",     "SHOW STATS", "SHOW SERVERS", "SHOW CLIENTS",
      "SHOW DATABASES", "SHOW LISTS", "SHOW CONFIG",  "SHOW VERSION"};
  return commands;
}

std::string RenderMetrics(const std::map<std::string, ConsoleTable>& shows, bool up,
                          const AgentFigures& figures, const PodBudget& budget) {
  Writer out;
  out.Family("pgbouncer_up", "gauge", "The pgbouncer scrape succeeded");
  out.Sample({}, up ? 1 : 0);
  if (const ConsoleTable* version = Find(shows, "SHOW VERSION");
      version && !version->rows.empty()) {
    out.Family("pgbouncer_version_info", "gauge", "The pgbouncer version info");
    out.Sample({{"version", version->Value(0, "version")}}, 1);
  }
  ColumnMetrics(shows, out);
  ConnectionCounts(Find(shows, "SHOW SERVERS"), "pgbouncer_server_connections",
                   "Server connections by database, user and state", out);
  ConnectionCounts(Find(shows, "SHOW CLIENTS"), "poolkeeper_agent_client_connections",
                   "Client connections by database, user and state (SHOW CLIENTS)", out);
  ItemMetrics(Find(shows, "SHOW LISTS"), "list", "items", kListMetrics, out);
  ItemMetrics(Find(shows, "SHOW CONFIG"), "key", "value", kConfigMetrics, out);

  out.Family(
      "poolkeeper_agent_config_info", "gauge",
      "The configuration PgBouncer was last confirmed to run (config_hash of its ConfigMap)");
  out.Sample({{"config_hash", figures.loaded_config_hash}}, 1);
  out.Family("poolkeeper_agent_config_current", "gauge",
             "1 when SHOW CONFIG matched the mounted pgbouncer.ini after the last reload");
  out.Sample({}, figures.config_current ? 1 : 0);
  out.Family("poolkeeper_agent_paused", "gauge", "1 while the agent holds PgBouncer paused");
  out.Sample({}, figures.paused ? 1 : 0);
  out.Family("poolkeeper_agent_reloads_total", "counter", "RELOADs PgBouncer accepted");
  out.Sample({}, static_cast<double>(figures.reloads));
  out.Family("poolkeeper_agent_reload_failures_total", "counter",
             "RELOADs that failed or whose SHOW CONFIG did not match the file");
  out.Sample({}, static_cast<double>(figures.reload_failures));
  BudgetMetrics(budget, out);
  return out.str();
}

}  // namespace poolkeeper::agent
