#include "main/run.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "common/memory.h"
#include "common/thread.h"
#include "controller/admission.h"
#include "controller/manager.h"
#include "http/server.h"
#include "kube/access_review.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/leader_election.h"
#include "kube/transport.h"
#include "main/metrics_access.h"
#include "main/metrics_wiring.h"
#include "postgres/observer.h"
#include "render/render.h"

namespace poolkeeper::cli {
namespace {

std::string Identity() {
  if (auto pod = kube::ProcessGetenv("POD_NAME"); pod && !pod->empty()) return *pod;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "_" + std::to_string(::getpid());
}

// Blocks the stop signals in every thread (threads inherit the mask), so the main thread alone
// takes them with sigtimedwait, between checks of leadership and readiness.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Ends the process at once, without running destructors: for a replica that lost its Lease (it
// must go before anything else is attempted) and for reconciles the drain timeout left running
// (joining them could wait out their requests). A normal stop returns from RunOperator instead.
[[noreturn]] void ExitNow(int code) {
  FlushLogs();
  std::_Exit(code);
}

}  // namespace

int RunOperator(const RunOptions& options) {
  LimitMallocArenas();  // before any thread of ours allocates
  sigset_t stop_signals = BlockStopSignals();
  ConfigureLogging(options.log_format, options.log_level);
  const std::string identity = Identity();

  auto config = kube::LoadClusterConfig(options.kubeconfig, kube::ProcessGetenv);
  if (!config) {
    Log(LogLevel::kError, "no cluster configuration", {{"error", config.error().ToString()}});
    return 2;
  }
  auto transport = kube::MakeHttpTransport(*config);
  if (!transport) {
    Log(LogLevel::kError, "cannot reach the API server", {{"error", transport.error().message}});
    return 2;
  }
  SystemClock clock;
  kube::Client client(**transport);
  // Its own client: the elector bounds each Lease request by the time left until the renew
  // deadline, and 4 s at most, so one slow attempt leaves room for another.
  kube::Client election_client(**transport, {.request_timeout = std::chrono::seconds(4)});
  // Role connection limits and the authQuery setup are written only inside the same fence as the
  // API writes.
  postgres::LibpqClient database([&client]() -> Result<std::chrono::milliseconds> {
    auto left = client.WriteWindow();
    if (!left) return std::unexpected(left.error());
    return std::chrono::floor<std::chrono::milliseconds>(*left);
  });
  // The pooler agents' /status on each pod's IP (render::kAgentPort), 2 s per pod at most.
  auto agent_status = controller::MakeHttpAgentStatus(render::kAgentPort, std::chrono::seconds(2));
  controller::Manager manager(
      client, clock,
      {.namespaces = options.namespaces,
       .workers = options.workers,
       .resync = options.resync,
       .watch_timeout = options.watch_timeout,
       .instance = identity,
       .defaults = options.defaults,
       .policy = options.policy,
       .database = &database,
       // authQuery's Secrets: the operator's own namespace.
       .operator_namespace = kube::ProcessGetenv("POD_NAMESPACE").value_or(config->namespace_),
       // A burst of reconciles (a first sync, a bulk apply) leaves freed heap behind.
       .on_idle = ReleaseFreeMemory,
       .agent_status = agent_status.get(),
       .agent_poll_interval = options.agent_poll});
  std::atomic<bool> leading{!options.leader_elect};
  std::atomic<bool> lost{false};
  std::atomic<bool> stopping{false};

  auto metrics = OperatorMetrics::Register(SourcesOf(manager, client, election_client, leading));
  if (!metrics) {
    Log(LogLevel::kError, "metrics", {{"error", metrics.error().message}});
    return 1;
  }
  manager.SetObserver(
      [m = metrics->get()](const std::string&, double seconds, const std::string& outcome) {
        m->ObserveReconcile(seconds, outcome);
      });
  // Its own client: a scrape's reviews must not wait behind the reconciles' 30 s timeout.
  kube::Client review_client(**transport, {.request_timeout = std::chrono::seconds(5)});
  kube::AccessReviewer reviewer(review_client, clock);
  auto server = http::Server::Start({
      .address = options.http_address,
      .live = [] { return true; },
      .not_ready_reason = [&manager]() -> std::optional<std::string> {
        if (!manager.Synced()) return "caches not synced";
        return std::nullopt;
      },
      .metrics = [m = metrics->get()] { return m->Exposition(); },
      .authorize = options.metrics_auth == "none" ? nullptr : MetricsAuthorizer(reviewer),
  });
  if (!server) {
    Log(LogLevel::kError, "http server", {{"error", server.error().message}});
    return 2;
  }
  std::unique_ptr<http::Server> webhook;
  if (!options.webhook_cert_dir.empty()) {
    // Every replica answers (the API server picks any ready one), leader or not.
    auto started = http::Server::Start({
        .address = options.webhook_address,
        .post = [&manager](std::string_view path,
                           const std::string& body) -> std::optional<http::Reply> {
          if (path != controller::kValidatePoolPath) return std::nullopt;
          nlohmann::json review = controller::Review(
              body, [&manager](const nlohmann::json& pool) { return manager.Admit(pool); });
          return http::Reply{review.contains("error") ? 400 : 200, "application/json",
                             review.dump(), ""};
        },
        .tls_cert_file = options.webhook_cert_dir + "/tls.crt",
        .tls_key_file = options.webhook_cert_dir + "/tls.key",
    });
    if (!started) {
      Log(LogLevel::kError, "webhook server", {{"error", started.error().message}});
      return 2;
    }
    webhook = std::move(*started);
  }
  Log(LogLevel::kInfo, "starting",
      {{"identity", identity},
       {"api_server", config->server},
       {"http", (*server)->address()},
       {"metrics_auth", options.metrics_auth},
       {"webhook", webhook ? webhook->address() : "off"},
       {"namespaces",
        options.namespaces.empty() ? "all" : std::to_string(options.namespaces.size())},
       {"leader_elect", options.leader_elect ? "true" : "false"},
       {"allowed_pooler_images", options.policy.AllowedImages()}});
  // A thread the kernel refuses (a pids limit) ends the process with a message and exit 1, not
  // std::terminate: the message says which thread and why, and a restart may find room.
  if (auto started = manager.StartInformers(); !started) {
    Log(LogLevel::kError, "cannot start the caches", {{"error", started.error().message}});
    return 1;
  }

  std::unique_ptr<kube::LeaderElector> elector;
  std::jthread election;
  if (options.leader_elect) {
    std::string lease_namespace = options.leader_election_namespace;
    if (lease_namespace.empty()) {
      lease_namespace = kube::ProcessGetenv("POD_NAMESPACE").value_or(config->namespace_);
    }
    kube::LeaderElectionOptions election_options{
        .ns = lease_namespace, .name = options.leader_election_id, .identity = identity};
    if (auto valid = kube::ValidateLeaderElection(election_options); !valid) {
      Log(LogLevel::kError, "leader election", {{"error", valid.error().ToString()}});
      return 2;
    }
    elector = std::make_unique<kube::LeaderElector>(
        election_client, clock, election_options,
        kube::LeaderCallbacks{
            .on_started_leading = [&] { leading = true; },
            .on_stopped_leading = [&] { lost = !stopping; },
            .on_new_leader =
                [](const std::string& holder) {
                  Log(LogLevel::kInfo, "leader observed", {{"holder", holder}});
                },
        });
    // Every write of the controller (applies, status, events, deletes, pods, PostgresServer
    // status) goes through `client`: from now on each one is sent only while this replica leads,
    // and must end before another could.
    client.SetGate(&elector->WriteFence());
    auto started =
        StartJThread("leader-election", [&elector](std::stop_token stop) { elector->Run(stop); });
    if (!started) {
      Log(LogLevel::kError, "cannot start leader election", {{"error", started.error().message}});
      return 1;
    }
    election = std::move(*started);
  }

  bool workers_started = false;
  for (;;) {
    // The lapse on our own clock, even while a renew request is still out: the fence already
    // refuses writes, and the process goes before anything else is attempted.
    if (leading && elector && !elector->IsLeader() && !lost) {
      Log(LogLevel::kError, "the renew deadline passed without a renew");
      lost = true;
    }
    if (lost) {
      Log(LogLevel::kError, "lost the leader Lease; exiting so another replica leads");
      ExitNow(1);
    }
    if (!workers_started && leading && manager.Synced()) {
      if (auto started = manager.StartWorkers(); !started) {
        Log(LogLevel::kError, "cannot start the workers", {{"error", started.error().message}});
        ExitNow(1);
      }
      workers_started = true;
      Log(LogLevel::kInfo, "caches synced, reconciling",
          {{"workers", std::to_string(options.workers)}});
    }
    timespec wait{0, 200'000'000};
    int signal = sigtimedwait(&stop_signals, nullptr, &wait);
    if (signal == SIGTERM || signal == SIGINT) break;
  }
  stopping = true;
  Log(LogLevel::kInfo, "stopping: draining reconciles in flight",
      {{"timeout_seconds", std::to_string(options.shutdown_timeout.count())}});
  bool drained = manager.Stop(options.shutdown_timeout);
  if (elector) {
    // Run releases the Lease when asked to stop, so a successor need not wait for it to expire.
    election.request_stop();
    election.join();
  }
  Log(drained ? LogLevel::kInfo : LogLevel::kWarn, "stopped",
      {{"drained", drained ? "true" : "false"}});
  if (!drained) ExitNow(0);
  // The destructors stop the caches: each informer's watch is stopped through its token, so a
  // quiet stream does not hold the exit.
  return 0;
}

}  // namespace poolkeeper::cli
