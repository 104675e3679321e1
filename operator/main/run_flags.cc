#include "main/run_flags.h"

#include <cctype>
#include <memory>
#include <set>

#include "main/command_line.h"
#include "main/policy_flags.h"

namespace poolkeeper::cli {
namespace {

constexpr char kRunDescription[] = R"(Runs the operator.

It watches ConnectionPools, plans each server's connection budget, and applies the PgBouncer
ConfigMap, userlist Secret, pods, Service and PodDisruptionBudget of every pool; observes
PostgresServers; with --webhook-cert-dir, refuses at apply time what would not fit.)";

constexpr char kRunFooter[] =
    R"(Flags take --flag value or --flag=value; an unknown or invalid flag is an error naming it.

Exit status: 0 stopped by SIGTERM or SIGINT, 1 lost the Lease (or the metrics could not be
registered), 2 invalid flags, no cluster configuration, the HTTP address could not be bound, or
invalid leader-election settings.)";

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    size_t comma = list.find(',', start);
    items.push_back(list.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

// Names as Kubernetes takes them (RFC 1123 labels), so a typo fails here and not as a watch that
// never sees anything.
CLI::Validator NamespaceList() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.empty()) return "";  // all namespaces, as the chart passes it
        for (const std::string& name : Split(value)) {
          bool valid = !name.empty() && name.size() <= 63 && std::isalnum(name.front()) &&
                       std::isalnum(name.back());
          for (char c : name) {
            valid = valid && ((c >= 'a' && c <= 'z') || std::isdigit(c) || c == '-');
          }
          if (!valid) return "\"" + name + "\" is not a namespace name";
        }
        return "";
      },
      "");
}

// What CLI11 writes into; seconds and lists are converted once the parse succeeded.
struct RawFlags {
  RunOptions options;
  std::string namespaces;
  std::string log_format = "text";
  int resync_seconds = 0;
  int shutdown_timeout_seconds = 0;
  int watch_timeout_seconds = 0;
  int agent_poll_seconds = 0;
  std::string default_image;
  std::string default_version;
  std::string agent_image;
  PodPolicyFlags policy;
};

}  // namespace

std::function<Result<RunOptions>()> AddRunFlags(CLI::App& run) {
  auto raw = std::make_shared<RawFlags>();
  RunOptions& o = raw->options;
  raw->resync_seconds = static_cast<int>(o.resync.count());
  raw->shutdown_timeout_seconds = static_cast<int>(o.shutdown_timeout.count());
  raw->watch_timeout_seconds = static_cast<int>(o.watch_timeout.count());
  raw->agent_poll_seconds = static_cast<int>(o.agent_poll.count());
  auto n = [](auto value) { return std::to_string(value); };

  run.description(kRunDescription);
  run.footer(kRunFooter);
  run.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // last one wins
  run.add_option("--kubeconfig", o.kubeconfig,
                 "kubeconfig to use (default: $KUBECONFIG, else in-cluster)")
      ->option_text("PATH");
  run.add_option("--namespaces", raw->namespaces, "namespaces to watch (default: all)")
      ->option_text("a,b")
      ->check(NamespaceList());
  run.add_option("--workers", o.workers,
                 "concurrent reconciles, 1-64 (default " + n(o.workers) + ")")
      ->option_text("N")
      ->transform(IntegerIn(1, 64));
  run.add_option("--http-address", o.http_address,
                 "/healthz, /readyz and /metrics (default " + o.http_address + ")")
      ->option_text("HOST:PORT")
      ->check(HostPort());
  run.add_option("--metrics-auth", o.metrics_auth,
                 "who may read /metrics: a token allowed get on /metrics by RBAC, or anyone "
                 "(default " +
                     o.metrics_auth + ")")
      ->option_text("kubernetes|none")
      ->check(OneOf({"kubernetes", "none"}));
  run.add_option("--webhook-cert-dir", o.webhook_cert_dir,
                 "serve the admission webhook with DIR/tls.crt and DIR/tls.key")
      ->option_text("DIR")
      ->check(NotEmpty());
  run.add_option("--webhook-address", o.webhook_address,
                 "where the webhook listens (default " + o.webhook_address + ")")
      ->option_text("HOST:PORT")
      ->check(HostPort());
  run.add_flag("--leader-elect", o.leader_elect,
               "run only while holding the Lease (for several replicas)")
      ->check(OneOf({"true", "false"}));
  run.add_option("--leader-election-namespace", o.leader_election_namespace,
                 "namespace of the Lease (default: $POD_NAMESPACE)")
      ->option_text("NS");
  run.add_option("--leader-election-id", o.leader_election_id,
                 "name of the Lease (default " + o.leader_election_id + ")")
      ->option_text("NAME")
      ->check(NotEmpty());
  run.add_option("--log-format", raw->log_format, "(default " + raw->log_format + ")")
      ->option_text("text|json")
      ->check(OneOf({"text", "json"}));
  run.add_option("--log-level", o.log_level, "(default " + o.log_level + ")")
      ->option_text("debug|info|warn|error")
      ->check(OneOf({"debug", "info", "warn", "error"}));
  run.add_option(
         "--resync-seconds", raw->resync_seconds,
         "reconcile every pool again this often, 1-86400 (default " + n(raw->resync_seconds) + ")")
      ->option_text("N")
      ->transform(IntegerIn(1, 86400));
  run.add_option("--shutdown-timeout-seconds", raw->shutdown_timeout_seconds,
                 "how long SIGTERM waits for reconciles in flight, 1-3600 (default " +
                     n(raw->shutdown_timeout_seconds) + ")")
      ->option_text("N")
      ->transform(IntegerIn(1, 3600));
  run.add_option("--watch-timeout-seconds", raw->watch_timeout_seconds,
                 "server-side watch timeout, jittered up to 2x, 1-3600 (default " +
                     n(raw->watch_timeout_seconds) + ")")
      ->option_text("N")
      ->transform(IntegerIn(1, 3600));
  run.add_option("--default-pgbouncer-image", raw->default_image,
                 "image of pools that set none (default " + std::string(api::kDefaultImage) +
                     "; empty: the same)")
      ->option_text("IMAGE");
  run.add_option("--default-pgbouncer-version", raw->default_version,
                 "PgBouncer version of that image (default: from its tag)")
      ->option_text("X.Y");
  run.add_option("--agent-image", raw->agent_image,
                 "image of the pooler agent sidecar, normally the operator's own (default\n"
                 "empty: pods without the agent, restarted on every change)")
      ->option_text("IMAGE");
  run.add_option("--agent-poll-seconds", raw->agent_poll_seconds,
                 "ask every pooler agent for its figures this often, 1-300 (default " +
                     n(raw->agent_poll_seconds) + "; pools waiting on their agents: 1 s)")
      ->option_text("N")
      ->transform(IntegerIn(1, 300));
  raw->policy.Add(run);

  return [raw]() -> Result<RunOptions> {
    RunOptions options = raw->options;
    std::set<std::string> seen;
    if (!raw->namespaces.empty()) {
      for (std::string& name : Split(raw->namespaces)) {
        if (seen.insert(name).second) options.namespaces.push_back(std::move(name));
      }
    }
    options.log_format = raw->log_format == "json" ? LogFormat::kJson : LogFormat::kText;
    options.resync = std::chrono::seconds(raw->resync_seconds);
    options.shutdown_timeout = std::chrono::seconds(raw->shutdown_timeout_seconds);
    options.watch_timeout = std::chrono::seconds(raw->watch_timeout_seconds);
    options.agent_poll = std::chrono::seconds(raw->agent_poll_seconds);
    auto defaults = api::MakeParseDefaults(raw->default_image, raw->default_version);
    if (!defaults) return std::unexpected(defaults.error());
    options.defaults = std::move(*defaults);
    if (std::ranges::any_of(raw->agent_image,
                            [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); })) {
      return Invalid("--agent-image", "must be an image reference without spaces");
    }
    options.defaults.agent_image = raw->agent_image;
    auto policy = raw->policy.Policy(options.defaults);
    if (!policy) return std::unexpected(policy.error());
    options.policy = std::move(*policy);
    return options;
  };
}

Result<RunOptions> ParseRunFlags(const std::vector<std::string>& args) {
  CLI::App run{"", "run"};
  auto options = AddRunFlags(run);
  auto parsed = ParseArgs(run, args);
  if (!parsed) return std::unexpected(parsed.error());
  if (parsed->help) return Invalid("--help", "asks for the help text, not a run");
  return options();
}

}  // namespace poolkeeper::cli
