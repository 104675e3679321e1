// The pooler agent (see agent.h). Console I/O runs outside the mutex: a PAUSE or a slow console
// must not hold up /readyz or a scrape.
#include "agent/agent.h"

#include <algorithm>
#include <map>
#include <utility>

#include "common/log.h"

namespace poolkeeper::agent {
namespace {

using nlohmann::json;
using postgres::ConsoleTable;

std::string TrimLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

double Number(const std::string& text) {
  try {
    return text.empty() ? 0 : std::stod(text);
  } catch (...) {
    return 0;
  }
}

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

Agent::Agent(AgentOptions options, AgentFiles& files, ConsoleFactory console, const Clock& clock)
    : options_(std::move(options)), files_(files), console_(std::move(console)), clock_(clock) {}

std::string Agent::ReadTrimmed(const std::string& path) {
  auto content = files_.Read(path);
  return content ? TrimLine(std::move(*content)) : std::string();
}

Agent::Mounted Agent::ReadMounts() {
  Mounted mounted;
  auto ini = files_.Read(options_.config_dir + "/pgbouncer.ini");
  mounted.ini = ini ? std::move(*ini) : std::string();
  mounted.config_hash = ReadTrimmed(options_.config_dir + "/" + kConfigHashFile);
  mounted.paused = ReadTrimmed(options_.config_dir + "/" + kPausedFile) == "true";
  std::vector<std::string> dirs = {options_.config_dir};
  dirs.insert(dirs.end(), options_.watch_dirs.begin(), options_.watch_dirs.end());
  for (const std::string& dir : dirs) {
    auto target = files_.LinkTarget(dir + "/..data");
    // Not a kubelet volume (a plain directory, as in the postgres tier): its content is the token.
    mounted.token +=
        (target ? "link:" + *target : "ini:" + mounted.ini + "\nhash:" + mounted.config_hash) +
        "\n";
  }
  mounted.token += mounted.paused ? "paused" : "running";
  return mounted;
}

// A downward API file holds the value alone, and is empty when the annotation or label is missing.
PodBudget Agent::ReadPodBudget() {
  PodBudget budget;
  if (options_.pod_info_dir.empty()) return budget;
  auto read = [&](const char* name) -> std::optional<std::string> {
    std::string value = ReadTrimmed(options_.pod_info_dir + "/" + name);
    return value.empty() ? std::nullopt : std::optional(value);
  };
  budget.pool = read(kPodPoolFile);
  budget.server = read(kPodServerFile);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (auto connections = read(kPodConnectionsFile);
      connections && std::ranges::all_of(*connections, digit)) {
    budget.connections = Number(*connections);
  }
  return budget;
}

std::unique_ptr<postgres::AdminConsole> Agent::OpenConsole(const std::string& ini) {
  std::map<std::string, std::string> section = PgBouncerSection(ini);
  postgres::ConsoleEndpoint endpoint;
  endpoint.socket_dir = section.contains("unix_socket_dir") ? section["unix_socket_dir"] : "/tmp";
  endpoint.port =
      section.contains("listen_port") ? static_cast<int>(Number(section["listen_port"])) : 6432;
  endpoint.user = options_.user;
  if (!options_.password_file.empty()) endpoint.password = ReadTrimmed(options_.password_file);
  return console_(endpoint);
}

bool Agent::Reload(const Mounted& mounted, bool reload) {
  std::vector<std::string> commands;
  if (reload) commands.emplace_back("RELOAD");
  commands.emplace_back("SHOW CONFIG");
  // The socket is where the running PgBouncer listens: the ini it last loaded, not a new one
  // that moves unix_socket_dir or listen_port (which only a new process applies).
  std::string running_ini;
  {
    std::lock_guard guard(mutex_);
    running_ini = ini_.empty() ? mounted.ini : ini_;
  }
  auto tables = OpenConsole(running_ini)->Run(commands);
  std::lock_guard guard(mutex_);
  if (!tables) {
    answered_ = false;
    if (reload) ++figures_.reload_failures;
    last_error_ = tables.error().message;
    retry_ = true;
    Log(LogLevel::kWarn, "reload failed", {{"error", tables.error().message}});
    return false;
  }
  answered_ = true;
  if (reload) ++figures_.reloads;
  mismatches_ = CompareConfig(PgBouncerSection(mounted.ini), tables->back());
  figures_.config_current = mismatches_.empty();
  if (figures_.config_current) {
    figures_.loaded_config_hash = mounted.config_hash;
    last_error_.clear();
  } else {
    if (reload) ++figures_.reload_failures;
    // A setting PgBouncer can change at run time may have been read before the kubelet finished
    // updating the files: RELOAD again after `settle`. One it cannot change waits for a new pod.
    if (std::ranges::any_of(mismatches_, [](const Mismatch& m) { return m.changeable; })) {
      settle_at_ = clock_.Now() + options_.settle;
    }
    last_error_ = "SHOW CONFIG differs from pgbouncer.ini: " + mismatches_.front().key + " is " +
                  mismatches_.front().running + ", the file says " + mismatches_.front().want;
    Log(LogLevel::kWarn, "configuration not applied",
        {{"key", mismatches_.front().key},
         {"restart_needed", mismatches_.front().changeable ? "false" : "true"}});
  }
  if (ini_.empty() ||
      std::ranges::all_of(mismatches_, [](const Mismatch& m) { return m.changeable; })) {
    ini_ = mounted.ini;
  }
  token_ = mounted.token;
  retry_ = false;
  return true;
}

void Agent::Poll() {
  Mounted mounted = ReadMounts();
  bool first = false;
  bool settle = false;
  {
    std::lock_guard guard(mutex_);
    want_paused_ = mounted.paused;
    first = !token_.has_value();
    bool changed = !first && *token_ != mounted.token;
    settle = settle_at_ && clock_.Now() >= *settle_at_;
    if (!first && !changed && !retry_ && !settle) return;
    if (changed) settle_at_ = clock_.Now() + options_.settle;
    if (settle && !changed) settle_at_.reset();
  }
  if (Reload(mounted, /*reload=*/!first) && figures().config_current) {
    Log(LogLevel::kInfo, first ? "configuration confirmed" : "configuration reloaded",
        {{"config_hash", mounted.config_hash}});
  }
}

void Agent::ApplyPause() {
  bool want = false;
  std::string ini;
  {
    std::lock_guard guard(mutex_);
    if (want_paused_ == figures_.paused || ini_.empty()) return;
    want = want_paused_;
    ini = ini_;
  }
  auto done = OpenConsole(ini)->Run({want ? "PAUSE" : "RESUME"});
  // PgBouncer refuses a PAUSE of a paused pooler ("already suspended/paused") and a RESUME of a
  // running one ("pooler is not paused/suspended"): either way it is where we want it.
  bool reached = done || (want && Contains(done.error().message, "already")) ||
                 (!want && Contains(done.error().message, "not paused"));
  std::lock_guard guard(mutex_);
  if (reached) {
    figures_.paused = want;
    Log(LogLevel::kInfo, want ? "paused" : "resumed", {});
  } else {
    last_error_ = done.error().message;
    Log(LogLevel::kWarn, want ? "pause failed" : "resume failed",
        {{"error", done.error().message}});
  }
}

std::string Agent::Metrics() {
  std::string ini;
  {
    std::lock_guard guard(mutex_);
    ini = ini_;
  }
  std::map<std::string, ConsoleTable> shows;
  bool up = false;
  if (!ini.empty()) {
    auto tables = OpenConsole(ini)->Run(MetricCommands());
    if (tables) {
      up = true;
      for (size_t i = 0; i < tables->size(); ++i) shows[MetricCommands()[i]] = (*tables)[i];
    }
  }
  return RenderMetrics(shows, up, figures(), ReadPodBudget());
}

// loadedConfigHash, configCurrent, paused, consoleUp; serverConnections (every server connection
// PgBouncer holds, summed over its pools: what the budget charges), clientsWaiting,
// longestWaitSeconds; pools[] with the same per (database, user); mismatches[]; reloads,
// reloadFailures; lastError.
json Agent::Status() {
  std::string ini;
  {
    std::lock_guard guard(mutex_);
    ini = ini_;
  }
  json pools = json::array();
  double servers = 0;
  double waiting = 0;
  double longest = 0;
  bool up = false;
  if (!ini.empty()) {
    auto tables = OpenConsole(ini)->Run({"SHOW POOLS"});
    if (tables) {
      up = true;
      const ConsoleTable& table = tables->front();
      for (size_t row = 0; row < table.rows.size(); ++row) {
        // The admin console's own pool: the agent's session, never a server connection.
        if (table.Value(row, "database") == "pgbouncer") continue;
        double pool_servers = 0;
        for (const char* column : {"sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"}) {
          pool_servers += Number(table.Value(row, column));
        }
        double pool_waiting = Number(table.Value(row, "cl_waiting"));
        double wait =
            Number(table.Value(row, "maxwait")) + Number(table.Value(row, "maxwait_us")) * 1e-6;
        servers += pool_servers;
        waiting += pool_waiting;
        longest = std::max(longest, wait);
        pools.push_back({{"database", table.Value(row, "database")},
                         {"user", table.Value(row, "user")},
                         {"serverConnections", pool_servers},
                         {"clientsActive", Number(table.Value(row, "cl_active"))},
                         {"clientsWaiting", pool_waiting},
                         {"maxWaitSeconds", wait}});
      }
    }
  }
  std::lock_guard guard(mutex_);
  json mismatches = json::array();
  for (const Mismatch& m : mismatches_) {
    mismatches.push_back({{"key", m.key},
                          {"want", m.want},
                          {"running", m.running},
                          {"restartNeeded", !m.changeable}});
  }
  return {{"loadedConfigHash", figures_.loaded_config_hash},
          {"configCurrent", figures_.config_current},
          {"paused", figures_.paused},
          {"consoleUp", up},
          {"serverConnections", servers},
          {"clientsWaiting", waiting},
          {"longestWaitSeconds", longest},
          {"pools", pools},
          {"mismatches", mismatches},
          {"reloads", figures_.reloads},
          {"reloadFailures", figures_.reload_failures},
          {"lastError", last_error_}};
}

std::optional<std::string> Agent::NotReadyReason() const {
  std::lock_guard guard(mutex_);
  if (stopping_) return "stopping";
  if (!answered_)
    return "the PgBouncer console has not answered" +
           (last_error_.empty() ? std::string() : ": " + last_error_);
  if (!figures_.config_current)
    return last_error_.empty() ? "configuration not current" : last_error_;
  return std::nullopt;
}

void Agent::BeginStop() {
  std::lock_guard guard(mutex_);
  stopping_ = true;
}

bool Agent::ConsoleAnswers() {
  std::string ini;
  {
    std::lock_guard guard(mutex_);
    ini = ini_;
  }
  if (ini.empty()) ini = ReadMounts().ini;
  return OpenConsole(ini)->Run({"SHOW VERSION"}).has_value();
}

AgentFigures Agent::figures() const {
  std::lock_guard guard(mutex_);
  return figures_;
}

std::vector<Mismatch> Agent::mismatches() const {
  std::lock_guard guard(mutex_);
  return mismatches_;
}

}  // namespace poolkeeper::agent
