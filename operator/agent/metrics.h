// The agent's /metrics: PgBouncer's SHOW tables in the Prometheus text format, under the names and
// labels of the prometheus-community pgbouncer_exporter (the names PgBouncer dashboards expect:
// pgbouncer_pools_*, pgbouncer_stats_*, pgbouncer_databases_*, the SHOW LISTS gauges,
// pgbouncer_config_*, pgbouncer_up), plus the agent's own poolkeeper_agent_* figures. Pure: the
// tables come in, text goes out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "postgres/admin_console.h"

namespace poolkeeper::agent {

// What the agent itself knows, rendered as poolkeeper_agent_*.
struct AgentFigures {
  std::string loaded_config_hash;  // the config-hash PgBouncer was last confirmed to run
  bool config_current = false;     // SHOW CONFIG matched the mounted ini after the last reload
  bool paused = false;             // PAUSE is in force
  uint64_t reloads = 0;            // RELOADs PgBouncer accepted
  uint64_t reload_failures = 0;    // RELOADs refused or not confirmed
};

// The pod's budget figures as the operator stamps them on it, read from the downward API volume
// the renderer mounts into the agent, rendered as poolkeeper_agent_budget_server_connections and
// poolkeeper_agent_pool_info. nullopt where the agent could not read one (run outside a pod, an
// older pod, an annotation missing): that family is left out.
struct PodBudget {
  std::optional<std::string> pool;    // the pod's poolkeeper.io/pool label
  std::optional<std::string> server;  // poolkeeper.io/server: the endpoint ("host:port")
  std::optional<double> connections;  // poolkeeper.io/connections-per-pod
};

// The SHOW results by command ("SHOW POOLS", "SHOW STATS", "SHOW SERVERS", "SHOW CLIENTS",
// "SHOW DATABASES", "SHOW LISTS", "SHOW CONFIG", "SHOW VERSION"); a missing one adds nothing.
// `up`: the console answered this scrape.
std::string RenderMetrics(const std::map<std::string, postgres::ConsoleTable>& shows, bool up,
                          const AgentFigures& figures, const PodBudget& budget = {});

// The commands RenderMetrics reads, in the order the agent runs them.
const std::vector<std::string>& MetricCommands();

}  // namespace poolkeeper::agent
