// `poolkeeper agent`: the sidecar in every pooler pod (operator/agent). Declares its flags and
// runs it until SIGTERM; the stop is described in agent_command.cc and docs/operating.md.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace poolkeeper::cli {

struct AgentFlags {
  std::string config_dir = "/etc/pgbouncer";
  std::vector<std::string> watch_dirs;
  std::string user = "poolkeeper_agent";
  std::string password_file = "/etc/poolkeeper-agent/password";
  std::string pod_info_dir = "/etc/poolkeeper-pod";
  std::string http_address = "0.0.0.0:9127";
  int poll_ms = 1000;
  int settle_seconds = 5;
  int stop_timeout_seconds = 0;  // 0: until PgBouncer's console stops answering
  std::string log_format = "text";
  std::string log_level = "info";
};

void AddAgentFlags(CLI::App& agent, AgentFlags& flags);
int RunAgent(const AgentFlags& flags);

}  // namespace poolkeeper::cli
