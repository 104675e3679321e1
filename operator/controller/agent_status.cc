// Reading the pooler agents' /status over plain HTTP (the agent serves no TLS; the figures are not
// secret), with the same transport the API client uses.
#include "controller/agent_status.h"

#include <limits>

#include "common/json_get.h"
#include "common/log.h"
#include "kube/transport.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

// One of the agent's figures, whole: it sends them as JSON numbers, integer or not (JsonGet takes
// integers only); `fallback` when missing or not a number.
int64_t Figure(const json& status, const char* key, int64_t fallback) {
  auto it = status.find(key);
  return it != status.end() && it->is_number() ? it->get<int64_t>() : fallback;
}

class HttpAgentStatus : public AgentStatusSource {
 public:
  HttpAgentStatus(int port, std::chrono::milliseconds timeout) : port_(port), timeout_(timeout) {}

  Result<AgentReport> Report(const std::string& pod_ip) override {
    kube::ClusterConfig config;
    // An IPv6 pod address needs brackets in a URL.
    const bool v6 = pod_ip.find(':') != std::string::npos;
    config.server = "http://" + (v6 ? "[" + pod_ip + "]" : pod_ip) + ":" + std::to_string(port_);
    auto transport = kube::MakeHttpTransport(config);
    if (!transport) return std::unexpected(transport.error());
    kube::HttpRequest request;
    request.path = "/status";
    request.timeout = timeout_;
    auto response = (*transport)->Send(request);
    if (!response) return std::unexpected(response.error());
    if (response->status != 200) {
      return Fail(ErrorCode::kUnavailable,
                  "agent at " + pod_ip + " answered " + std::to_string(response->status));
    }
    json status = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (!status.is_object() || !status.contains("loadedConfigHash")) {
      return Fail(ErrorCode::kUnavailable, "agent at " + pod_ip + " answered no status");
    }
    AgentReport report;
    const json& hash = status["loadedConfigHash"];
    const json& current = status.contains("configCurrent") ? status["configCurrent"] : json();
    if (current.is_boolean() && current.get<bool>() && hash.is_string()) {
      report.config_hash = hash.get<std::string>();
    }
    // Not a number: as many as could be (never lowered on a report that says nothing).
    report.server_connections =
        Figure(status, "serverConnections", std::numeric_limits<int64_t>::max());
    report.paused = JsonGet<bool>(status, "paused", false);
    // Live figures: a missing or mistyped one reads as none.
    report.clients_waiting = Figure(status, "clientsWaiting", 0);
    report.longest_wait_seconds = Figure(status, "longestWaitSeconds", 0);
    return report;
  }

 private:
  int port_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::unique_ptr<AgentStatusSource> MakeHttpAgentStatus(int port,
                                                       std::chrono::milliseconds timeout) {
  return std::make_unique<HttpAgentStatus>(port, timeout);
}

}  // namespace poolkeeper::controller
