// What the pooler agents (operator/agent) report, as the reconciler needs it: which configuration
// each pod's PgBouncer runs. The budget charges a pod the per-pod figure of its old configuration
// until its agent reports the new config hash loaded (a RELOAD, confirmed by SHOW CONFIG), and only
// then is the pod's poolkeeper.io/connections-per-pod lowered (reconciler.cc). The operator asks
// each pod's agent over HTTP (GET <pod IP>:9127/status), off the reconcile path (agent_poller.h);
// behind this interface, so the poller and the manager are tested with an in-memory fake.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"

namespace poolkeeper::controller {

// One agent's answer.
struct AgentReport {
  // The config hash PgBouncer runs (/status `loadedConfigHash` while `configCurrent`), else "".
  std::string config_hash;
  // Every server connection PgBouncer holds now (/status `serverConnections`): after a RELOAD
  // that lowers the caps, connections above them close only as they are released (and idle ones
  // after server_idle_timeout), so a lowered figure is charged only once the pod is within it.
  int64_t server_connections = 0;
  // PgBouncer is paused (/status `paused`: the agent's PAUSE was answered).
  bool paused = false;
  // Live figures only (status.live), never decided on: clients waiting for a server connection
  // (`clientsWaiting`), and the longest of their waits in whole seconds (`longestWaitSeconds`).
  int64_t clients_waiting = 0;
  int64_t longest_wait_seconds = 0;
  bool operator==(const AgentReport&) const = default;
};

class AgentStatusSource {
 public:
  virtual ~AgentStatusSource() = default;
  // What the agent of the pod at `pod_ip` reports. Fails when the agent does not answer, or
  // answers something else than its status.
  virtual Result<AgentReport> Report(const std::string& pod_ip) = 0;
};

// The real one: a plain HTTP GET of http://<pod_ip>:<port>/status, within `timeout`.
std::unique_ptr<AgentStatusSource> MakeHttpAgentStatus(int port, std::chrono::milliseconds timeout);

}  // namespace poolkeeper::controller
