#include "agent/metrics.h"

#include <gtest/gtest.h>

namespace poolkeeper::agent {
namespace {

using postgres::ConsoleTable;

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

std::map<std::string, ConsoleTable> Shows() {
  return {
      {"SHOW POOLS",
       {{"database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used",
         "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode"},
        {{"app", "alice", "4", "3", "4", "0", "1", "0", "0", "2", "250000", "transaction"}}}},
      {"SHOW STATS",
       {{"database", "total_query_count", "total_query_time", "total_received", "total_sent",
         "total_wait_time", "total_xact_count", "total_xact_time"},
        {{"app", "120", "3000000", "2048", "4096", "1500000", "100", "4000000"}}}},
      {"SHOW DATABASES",
       {{"name", "host", "port", "database", "force_user", "pool_size", "reserve_pool", "pool_mode",
         "max_connections", "current_connections", "paused", "disabled"},
        {{"app", "db.example", "5432", "app", "", "10", "2", "", "8", "5", "0", "0"}}}},
      {"SHOW LISTS",
       {{"list", "items"},
        {{"databases", "2"},
         {"users", "3"},
         {"pools", "1"},
         {"free_clients", "40"},
         {"used_clients", "7"},
         {"login_clients", "0"},
         {"free_servers", "1"},
         {"used_servers", "5"},
         {"dns_names", "1"},
         {"dns_zones", "0"},
         {"dns_queries", "0"},
         {"dns_pending", "0"}}}},
      {"SHOW SERVERS",
       {{"type", "user", "database", "state", "addr"},
        {{"S", "alice", "app", "active", "10.0.0.1"},
         {"S", "alice", "app", "active", "10.0.0.1"},
         {"S", "alice", "app", "idle", "10.0.0.1"}}}},
      {"SHOW CLIENTS",
       {{"type", "user", "database", "state"},
        {{"C", "alice", "app", "waiting"}, {"C", "alice", "app", "active"}}}},
      {"SHOW CONFIG",
       {{"key", "value", "default", "changeable"},
        {{"max_client_conn", "500", "100", "yes"},
         {"max_user_connections", "0", "0", "yes"},
         {"listen_port", "6432", "6432", "no"}}}},
      {"SHOW VERSION", {{"version"}, {{"PgBouncer 1.18.0"}}}},
  };
}

TEST(RenderMetrics, UsesPgbouncerExporterNamesLabelsAndUnits) {
  AgentFigures figures{"abc123", true, false, 3, 1};
  std::string text = RenderMetrics(Shows(), true, figures);
  for (const char* line : {
           "pgbouncer_up 1\n",
           "pgbouncer_version_info{version=\"PgBouncer 1.18.0\"} 1\n",
           "pgbouncer_pools_client_active_connections{database=\"app\",user=\"alice\"} 4\n",
           "pgbouncer_pools_client_waiting_connections{database=\"app\",user=\"alice\"} 3\n",
           "pgbouncer_pools_server_active_connections{database=\"app\",user=\"alice\"} 4\n",
           "pgbouncer_pools_server_used_connections{database=\"app\",user=\"alice\"} 1\n",
           "pgbouncer_pools_client_maxwait_seconds{database=\"app\",user=\"alice\"} 2.25\n",
           "# TYPE pgbouncer_stats_queries_pooled_total counter\n",
           "pgbouncer_stats_queries_pooled_total{database=\"app\"} 120\n",
           "pgbouncer_stats_queries_duration_seconds_total{database=\"app\"} 3\n",
           "pgbouncer_stats_client_wait_seconds_total{database=\"app\"} 1.5\n",
           "pgbouncer_stats_server_in_transaction_seconds_total{database=\"app\"} 4\n",
           "pgbouncer_stats_received_bytes_total{database=\"app\"} 2048\n",
           "pgbouncer_databases_pool_size{name=\"app\",host=\"db.example\",port=\"5432\","
           "database=\"app\",force_user=\"\",pool_mode=\"\"} 10\n",
           "pgbouncer_databases_current_connections{name=\"app\",host=\"db.example\","
           "port=\"5432\",database=\"app\",force_user=\"\",pool_mode=\"\"} 5\n",
           "pgbouncer_used_clients 7\n",
           "pgbouncer_used_servers 5\n",
           "pgbouncer_cached_dns_names 1\n",
           "pgbouncer_server_connections{database=\"app\",user=\"alice\",state=\"active\"} 2\n",
           "pgbouncer_server_connections{database=\"app\",user=\"alice\",state=\"idle\"} 1\n",
           "poolkeeper_agent_client_connections{database=\"app\",user=\"alice\",state=\"waiting\"} "
           "1\n",
           "pgbouncer_config_max_client_connections 500\n",
           "pgbouncer_config_max_user_connections 0\n",
           "poolkeeper_agent_config_info{config_hash=\"abc123\"} 1\n",
           "poolkeeper_agent_config_current 1\n",
           "poolkeeper_agent_paused 0\n",
           "poolkeeper_agent_reloads_total 3\n",
           "poolkeeper_agent_reload_failures_total 1\n",
       }) {
    EXPECT_TRUE(Has(text, line)) << "missing: " << line << "\nin:\n" << text;
  }
  EXPECT_FALSE(Has(text, "dns_pending"));  // a list the exporter does not export
  EXPECT_FALSE(Has(text, "listen_port"));
}

TEST(RenderMetrics, EveryFamilyHasHelpAndTypeOnce) {
  std::string text = RenderMetrics(Shows(), true, {});
  std::map<std::string, int> types;
  size_t start = 0;
  while ((start = text.find("# TYPE ", start)) != std::string::npos) {
    start += 7;
    ++types[text.substr(start, text.find(' ', start) - start)];
  }
  EXPECT_GT(types.size(), 30u);
  for (const auto& [name, count] : types) EXPECT_EQ(count, 1) << name;
}

TEST(RenderMetrics, ADownConsoleStillReportsUpZeroAndTheAgentFigures) {
  std::string text = RenderMetrics({}, false, {"", false, true, 0, 2});
  EXPECT_TRUE(Has(text, "pgbouncer_up 0\n"));
  EXPECT_TRUE(Has(text, "poolkeeper_agent_paused 1\n"));
  EXPECT_TRUE(Has(text, "poolkeeper_agent_reload_failures_total 2\n"));
  EXPECT_FALSE(Has(text, "pgbouncer_pools_"));
}

TEST(RenderMetrics, LabelValuesAreEscapedAndNonNumbersSkipped) {
  struct Case {
    std::string value;
    std::string escaped;
  };
  for (const Case& c : std::vector<Case>{
           {"plain", "plain"}, {"a\"b", "a\\\"b"}, {"a\\b", "a\\\\b"}, {"a\nb", "a\\nb"}}) {
    std::map<std::string, ConsoleTable> version = {{"SHOW VERSION", {{"version"}, {{c.value}}}}};
    EXPECT_TRUE(Has(RenderMetrics(version, true, {}),
                    "pgbouncer_version_info{version=\"" + c.escaped + "\"} 1\n"))
        << c.value;
  }
  std::map<std::string, ConsoleTable> shows = {
      {"SHOW POOLS",
       {{"database", "user", "cl_active"}, {{"we\"ird", "u", "x"}, {"d", "u", "2"}}}}};
  std::string text = RenderMetrics(shows, true, {});
  EXPECT_FALSE(Has(text, "we\\\"ird\",user=\"u\"} "));  // "x" is not a number: no sample
  EXPECT_TRUE(
      Has(text, "pgbouncer_pools_client_active_connections{database=\"d\",user=\"u\"} 2\n"));
}

TEST(RenderMetrics, ThePodsBudgetIsAGaugeAndAnInfoMetricOnlyWhereKnown) {
  struct Case {
    std::string name;
    PodBudget budget;
    std::vector<std::string> present;
    std::vector<std::string> absent;
  };
  for (const Case& c : std::vector<Case>{
           {"every figure",
            {"orders", "db.shop:5432", 40},
            {"# HELP poolkeeper_agent_budget_server_connections ",
             "# TYPE poolkeeper_agent_budget_server_connections gauge\n",
             "poolkeeper_agent_budget_server_connections{pool=\"orders\",server=\"db.shop:5432\"} "
             "40\n",
             "# TYPE poolkeeper_agent_pool_info gauge\n",
             "poolkeeper_agent_pool_info{pool=\"orders\",server=\"db.shop:5432\"} 1\n"},
            {}},
           {"no files (outside a pod)",
            {},
            {"poolkeeper_agent_paused 0\n"},
            {"poolkeeper_agent_budget_", "poolkeeper_agent_pool_info"}},
           {"no figure: the info metric alone",
            {"orders", "db.shop:5432", std::nullopt},
            {"poolkeeper_agent_pool_info{pool=\"orders\",server=\"db.shop:5432\"} 1\n"},
            {"poolkeeper_agent_budget_"}},
           {"a figure without pool or server",
            {std::nullopt, std::nullopt, 7},
            {"poolkeeper_agent_budget_server_connections{pool=\"\",server=\"\"} 7\n"},
            {"poolkeeper_agent_pool_info"}},
           {"label values escaped",
            {"we\"ird\\pool", "a\nb", 3},
            {"poolkeeper_agent_budget_server_connections{pool=\"we\\\"ird\\\\pool\",server="
             "\"a\\nb\"} 3\n"},
            {}},
       }) {
    std::string text = RenderMetrics(Shows(), true, {}, c.budget);
    for (const std::string& line : c.present) {
      EXPECT_TRUE(Has(text, line)) << c.name << ": missing " << line << "\nin:\n" << text;
    }
    for (const std::string& part : c.absent) {
      EXPECT_FALSE(Has(text, part)) << c.name << ": has " << part;
    }
  }
}

}  // namespace
}  // namespace poolkeeper::agent
