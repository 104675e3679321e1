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
    const json& servers =
        status.contains("serverConnections") ? status["serverConnections"] : json();
    // Not a number: as many as could be (never lowered on a report that says nothing).
    report.server_connections =
        servers.is_number() ? servers.get<int64_t>() : std::numeric_limits<int64_t>::max();
    report.paused = JsonGet<bool>(status, "paused", false);
    // Live figures: a missing or mistyped one reads as none.
    const json& waiting = status.contains("clientsWaiting") ? status["clientsWaiting"] : json();
    if (waiting.is_number()) report.clients_waiting = waiting.get<int64_t>();
    const json& longest =
        status.contains("longestWaitSeconds") ? status["longestWaitSeconds"] : json();
    if (longest.is_number()) report.longest_wait_seconds = longest.get<int64_t>();
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
