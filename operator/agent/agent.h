// The pooler agent's state machine, free of threads and sockets so its tests drive it with a fake
// console, fake files and the fake clock. `poolkeeper agent` (main/agent_command.cc) calls Poll()
// about every second, ApplyPause() on a thread of its own (PAUSE waits until PgBouncer's server
// connections are released, which must not hold up a scrape), and serves Metrics(), Status() and
// NotReadyReason() over HTTP.
//
// The agent learns of a new configuration from its mounts: the kubelet swaps each volume's `..data`
// symlink when the ConfigMap or Secret changes. The ConfigMap carries pgbouncer.ini, `config-hash`
// (what the operator rendered: the ini and the credentials revision, so a password rotation
// changes it too) and `paused`. On a change it RELOADs, then compares SHOW CONFIG with the ini;
// it RELOADs once more after `settle` because the kubelet refreshes a pod's volumes one by one,
// and the userlist may land after the ConfigMap.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/config_check.h"
#include "agent/files.h"
#include "agent/metrics.h"
#include "common/clock.h"
#include "postgres/admin_console.h"

namespace poolkeeper::agent {

// Files in the config dir besides pgbouncer.ini.
inline constexpr char kConfigHashFile[] = "config-hash";
inline constexpr char kPausedFile[] = "paused";
// Files in the pod-info dir, the downward API volume with the pod's budget figures (PodBudget):
// read at each scrape, so a figure the operator lowers in place shows once the kubelet refreshes
// the volume.
inline constexpr char kPodConnectionsFile[] = "connections-per-pod";
inline constexpr char kPodServerFile[] = "server";
inline constexpr char kPodPoolFile[] = "pool";

struct AgentOptions {
  std::string config_dir;               // pgbouncer.ini, config-hash, paused
  std::vector<std::string> watch_dirs;  // more mounts whose ..data is watched (the password's)
  std::string user;                     // the admin user (in admin_users and the userlist)
  std::string password_file;            // its password, read at each change, never logged
  std::chrono::milliseconds settle{5000};
  std::string pod_info_dir;  // kPodConnectionsFile, kPodServerFile, kPodPoolFile; "" for none
};

// Opens the console for an endpoint (socket dir and port from the ini, the user and password).
using ConsoleFactory =
    std::function<std::unique_ptr<postgres::AdminConsole>(const postgres::ConsoleEndpoint&)>;

class Agent {
 public:
  Agent(AgentOptions options, AgentFiles& files, ConsoleFactory console, const Clock& clock);

  // Notices changed mounts; RELOADs and confirms (a failed reload is retried at the next poll).
  // The first poll only confirms: PgBouncer started with these files.
  void Poll();
  // Brings PgBouncer to the paused state the ConfigMap asks for (PAUSE or RESUME, once each).
  // Blocks while PAUSE waits; call it from its own thread.
  void ApplyPause();
  // GET /metrics: the SHOW tables (one console session), the agent's figures and the pod's budget.
  std::string Metrics();
  // GET /status: what the operator reads (see agent.cc for the fields).
  nlohmann::json Status();
  // GET /readyz: nullopt once the console answered and the loaded configuration is current.
  std::optional<std::string> NotReadyReason() const;
  // SIGTERM: /readyz answers 503 from now on.
  void BeginStop();
  // Whether the console answered the last time it was asked (the stop loop waits for false).
  bool ConsoleAnswers();

  AgentFigures figures() const;
  std::vector<Mismatch> mismatches() const;

 private:
  struct Mounted {
    std::string token;  // the ..data targets (or the files' content where there is no symlink)
    std::string ini;
    std::string config_hash;
    bool paused = false;
  };
  // The file's content without its trailing newline; "" when it cannot be read.
  std::string ReadTrimmed(const std::string& path);
  Mounted ReadMounts();
  PodBudget ReadPodBudget();
  std::unique_ptr<postgres::AdminConsole> OpenConsole(const std::string& ini);
  bool Reload(const Mounted& mounted, bool reload);

  AgentOptions options_;
  AgentFiles& files_;
  ConsoleFactory console_;
  const Clock& clock_;

  mutable std::mutex mutex_;  // everything below: Poll, ApplyPause and HTTP run on other threads
  std::optional<std::string> token_;  // of the mounts last loaded; nullopt before the first poll
  bool retry_ = false;                // the last reload failed
  std::optional<Clock::TimePoint> settle_at_;
  std::string ini_;  // the ini last loaded (the console's endpoint)
  bool want_paused_ = false;
  bool answered_ = false;
  bool stopping_ = false;
  AgentFigures figures_;
  std::vector<Mismatch> mismatches_;
  std::string last_error_;
};

}  // namespace poolkeeper::agent
