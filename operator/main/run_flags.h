// The flags of `poolkeeper run`, parsed without side effects so they are tested like any input:
// every bad flag is an error naming it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "api/parse.h"
#include "common/error.h"
#include "common/log.h"

namespace poolkeeper::cli {

struct RunOptions {
  std::string kubeconfig;               // "" = $KUBECONFIG, else in-cluster
  std::vector<std::string> namespaces;  // empty = all namespaces
  int workers = 4;
  std::string http_address = "0.0.0.0:8080";
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
  api::ParseDefaults defaults;  // --default-pgbouncer-image / --default-pgbouncer-version
  bool help = false;
};

inline constexpr char kRunUsage[] = R"(Usage: poolkeeper run [flags]

Runs the operator: watches ConnectionPools, plans each server's connection budget, and applies the
PgBouncer ConfigMap, userlist Secret, pods, Service and PodDisruptionBudget of every pool; observes
PostgresServers; with --webhook-cert-dir, refuses at apply time what would not fit.

Flags:
  --kubeconfig PATH                 kubeconfig to use (default: $KUBECONFIG, else in-cluster)
  --namespaces a,b                  namespaces to watch (default: all)
  --workers N                       concurrent reconciles (default 4)
  --http-address HOST:PORT          /healthz, /readyz and /metrics (default 0.0.0.0:8080)
  --webhook-cert-dir DIR            serve the admission webhook with DIR/tls.crt and DIR/tls.key
  --webhook-address HOST:PORT       where the webhook listens (default 0.0.0.0:9443)
  --leader-elect                    run only while holding the Lease (for several replicas)
  --leader-election-namespace NS    namespace of the Lease (default: $POD_NAMESPACE)
  --leader-election-id NAME         name of the Lease (default poolkeeper-leader)
  --log-format text|json            (default text)
  --log-level debug|info|warn|error (default info)
  --resync-seconds N                reconcile every pool again this often (default 600)
  --shutdown-timeout-seconds N      how long SIGTERM waits for reconciles in flight (default 20)
  --watch-timeout-seconds N         server-side watch timeout, jittered up to 2x (default 300)
  --default-pgbouncer-image IMAGE   image of pools that set none (default ghcr.io/cloudnative-pg/pgbouncer:1.24.1)
  --default-pgbouncer-version X.Y   PgBouncer version of that image (default: from its tag)
)";

// args excludes "run".
Result<RunOptions> ParseRunFlags(const std::vector<std::string>& args);

}  // namespace poolkeeper::cli
