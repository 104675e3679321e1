// The flags of `poolkeeper run`, parsed without side effects so they are tested like any input:
// every bad flag is an error naming it. Declared once, on CLI11, which also writes their help.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "api/parse.h"
#include "api/pod_policy.h"
#include "common/error.h"
#include "common/log.h"

namespace CLI {
class App;
}  // namespace CLI

namespace poolkeeper::cli {

struct RunOptions {
  std::string kubeconfig;               // "" = $KUBECONFIG, else in-cluster
  std::vector<std::string> namespaces;  // empty = all namespaces
  int workers = 4;
  std::string http_address = "0.0.0.0:8080";
  // Who may GET /metrics: "kubernetes" (a bearer token, checked by TokenReview and
  // SubjectAccessReview) or "none" (anyone who reaches the port).
  std::string metrics_auth = "kubernetes";
  // The admission webhook (HTTPS): off unless a certificate directory is given.
  std::string webhook_address = "0.0.0.0:9443";
  std::string webhook_cert_dir;  // holds tls.crt and tls.key
  bool leader_elect = false;
  std::string leader_election_namespace;  // "" = $POD_NAMESPACE, else the config's namespace
  std::string leader_election_id = "poolkeeper-leader";
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
  std::chrono::seconds resync{600};
  std::chrono::seconds shutdown_timeout{20};
  std::chrono::seconds watch_timeout{300};
  // Every pooler agent is asked this often (controller/agent_poller.h).
  std::chrono::seconds agent_poll{10};
  api::ParseDefaults defaults;  // --default-pgbouncer-image / --default-pgbouncer-version
  api::PodPolicy policy;        // --allowed-pooler-images and the scheduling flags (policy_flags.h)
};

// Declares the flags, with their help, on `run` (the subcommand of the one command line, or an app
// of its own). The function returned, called after a successful parse, checks what spans several
// flags and gives the options.
std::function<Result<RunOptions>()> AddRunFlags(CLI::App& run);

// The flags alone (args excludes "run"): for tests. `--help` is an error here; the command line
// answers it.
Result<RunOptions> ParseRunFlags(const std::vector<std::string>& args);

}  // namespace poolkeeper::cli
