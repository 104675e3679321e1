// `poolkeeper agent`: wires the agent (operator/agent) to the disk, the console over libpq, the
// clock, the HTTP server and the stop signals.
//
// The stop. The kubelet sends SIGTERM to every container of a terminating pod at once (after the
// pgbouncer container's preStop hook, which for PgBouncer before 1.23 sends SIGINT: PAUSE and
// SHUTDOWN once the server connections are released; from 1.23 SIGTERM itself waits for the
// clients). The agent does not signal PgBouncer: its drain is the pgbouncer container's. On
// SIGTERM the agent answers /readyz with 503 at once and keeps serving /metrics and /status while
// PgBouncer drains, and exits only once the console stops answering (PgBouncer is gone), or after
// --stop-timeout-seconds when set. The pod's terminationGracePeriodSeconds bounds both.
#include "main/agent_command.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/agent.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/thread.h"
#include "http/server.h"
#include "main/command_line.h"

namespace poolkeeper::cli {
namespace {

constexpr char kAgentDescription[] =
    R"(Runs beside PgBouncer in a pooler pod: reloads it when its mounted configuration or
credentials change and confirms the running settings with SHOW CONFIG, pauses and resumes it as
the ConfigMap's `paused` key says, and serves /metrics (pgbouncer_exporter's names), /status and
/readyz.)";

// Sleeps `period`, or less when asked to stop; false once asked to stop.
bool SleepUnlessStopped(const std::stop_token& stop, std::chrono::milliseconds period) {
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  wake.wait_for(lock, stop, period, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace

void AddAgentFlags(CLI::App& agent, AgentFlags& f) {
  agent.description(kAgentDescription);
  agent.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  agent
      .add_option("--config-dir", f.config_dir,
                  "the ConfigMap's mount: pgbouncer.ini, config-hash, paused (default " +
                      f.config_dir + ")")
      ->option_text("DIR");
  agent
      .add_option("--watch-dir", f.watch_dirs, "another mount whose ..data is watched (repeatable)")
      ->option_text("DIR")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  agent.add_option("--user", f.user, "the admin console user (default " + f.user + ")")
      ->option_text("NAME");
  agent
      .add_option("--password-file", f.password_file,
                  "its password (default " + f.password_file + ")")
      ->option_text("PATH");
  agent
      .add_option("--pod-info-dir", f.pod_info_dir,
                  "the downward API mount with the pod's budget figures, exposed in /metrics;\n"
                  "missing files leave them out (default " +
                      f.pod_info_dir + ")")
      ->option_text("DIR");
  agent
      .add_option("--http-address", f.http_address,
                  "/metrics, /status, /readyz and /healthz (default " + f.http_address + ")")
      ->option_text("HOST:PORT")
      ->check(HostPort());
  agent.add_option("--poll-ms", f.poll_ms, "how often the mounts are checked (default 1000)")
      ->option_text("MS")
      ->transform(IntegerIn(50, 60000));
  agent
      .add_option("--settle-seconds", f.settle_seconds,
                  "a second RELOAD this long after a change (default 5)")
      ->option_text("S")
      ->transform(IntegerIn(1, 600));
  agent
      .add_option("--stop-timeout-seconds", f.stop_timeout_seconds,
                  "after SIGTERM, exit at the latest after this long (default 0: once\n"
                  "PgBouncer's console stops answering)")
      ->option_text("S")
      ->transform(IntegerIn(0, 86400));
  agent.add_option("--log-format", f.log_format, "(default text)")
      ->option_text("text|json")
      ->check(OneOf({"text", "json"}));
  agent.add_option("--log-level", f.log_level, "(default info)")
      ->option_text("LEVEL")
      ->check(OneOf({"debug", "info", "warn", "error"}));
}

int RunAgent(const AgentFlags& f) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ConfigureLogging(f.log_format == "json" ? LogFormat::kJson : LogFormat::kText, f.log_level);

  auto files = agent::MakeDiskFiles();
  SystemClock clock;
  agent::AgentOptions options{.config_dir = f.config_dir,
                              .watch_dirs = f.watch_dirs,
                              .user = f.user,
                              .password_file = f.password_file,
                              .settle = std::chrono::seconds(f.settle_seconds),
                              .pod_info_dir = f.pod_info_dir};
  agent::Agent pooler_agent(options, *files, postgres::MakeLibpqAdminConsole, clock);

  http::ServerOptions http_options;
  http_options.address = f.http_address;
  http_options.not_ready_reason = [&] { return pooler_agent.NotReadyReason(); };
  http_options.metrics = [&] { return pooler_agent.Metrics(); };
  http_options.get = [&](std::string_view path) -> std::optional<http::Reply> {
    if (path != "/status") return std::nullopt;
    return http::Reply{200, "application/json", pooler_agent.Status().dump(), ""};
  };
  auto server = http::Server::Start(std::move(http_options));
  if (!server) {
    Log(LogLevel::kError, "cannot serve", {{"error", server.error().message}});
    return 1;
  }
  const std::chrono::milliseconds poll(f.poll_ms);
  auto poller = StartJThread("agent-poll", [&](std::stop_token stop) {
    do {
      pooler_agent.Poll();
    } while (SleepUnlessStopped(stop, poll));
  });
  auto pauser = StartJThread("agent-pause", [&](std::stop_token stop) {
    do {
      pooler_agent.ApplyPause();
    } while (SleepUnlessStopped(stop, poll));
  });
  if (!poller || !pauser) {
    Log(LogLevel::kError, "cannot start the agent's threads");
    return 1;
  }
  Log(LogLevel::kInfo, "agent started", {{"address", (*server)->address()}});

  while (sigwaitinfo(&signals, nullptr) < 0) {
  }
  pooler_agent.BeginStop();
  Log(LogLevel::kInfo, "stopping: not ready; serving metrics until PgBouncer has drained");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(f.stop_timeout_seconds);
  while (pooler_agent.ConsoleAnswers()) {
    if (f.stop_timeout_seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(poll);
  }
  poller->request_stop();
  pauser->request_stop();
  (*server)->Stop();
  Log(LogLevel::kInfo, "agent stopped");
  return 0;
}

}  // namespace poolkeeper::cli
