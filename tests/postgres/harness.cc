// The postgres tier's harness: processes, directories and libpq clients (see harness.h).
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spdlog/fmt/fmt.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace poolkeeper::pgtest {
namespace {

namespace fs = std::filesystem;

std::string RandomToken(size_t length) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device device;
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string token;
  for (size_t i = 0; i < length; ++i) token += kAlphabet[pick(device)];
  return token;
}

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t\r");
  return std::string(text.substr(begin, end - begin + 1));
}

// A libpq conninfo value in single quotes, with ' and \ escaped.
std::string ConnInfoValue(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

constexpr int kStartAttempts = 3;

bool PortWasTaken(const std::string& log) {
  return log.find("Address already in use") != std::string::npos;
}

void ChownToServiceUser(const std::string& path) {
  RunAs who = RunAs::ServiceUser();
  if (who.drop_privileges && ::chown(path.c_str(), who.uid, who.gid) != 0) {
    throw std::runtime_error(fmt::format("chown {}: {}", path, std::strerror(errno)));
  }
}

}  // namespace

std::optional<std::string> MissingPrerequisite() {
  for (const char* tool : {"initdb", "postgres"}) {
    std::string path = fmt::format("{}/{}", kPostgresBinDir, tool);
    if (::access(path.c_str(), X_OK) != 0) return path + " is not installed";
  }
  if (::access(kPgBouncerBinary, X_OK) != 0) {
    return std::string(kPgBouncerBinary) + " is not installed";
  }
  if (::geteuid() == 0 && ::getpwnam("postgres") == nullptr) {
    return "running as root and there is no `postgres` user to run the servers as";
  }
  return std::nullopt;
}

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("bind 127.0.0.1:0: " + std::string(std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

bool WaitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (ready()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

bool AcceptsConnections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return ok;
}

RunAs RunAs::ServiceUser() {
  if (::geteuid() != 0) return {::geteuid(), ::getegid(), false};
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("no `postgres` user to run the servers as");
  return {pw->pw_uid, pw->pw_gid, true};
}

// ---------------------------------------------------------------------------------------------
// TempDir

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = fmt::format("{}/pk-{}-XXXXXX", base && *base ? base : "/tmp", prefix);
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  path_ = pattern;
  ChownToServiceUser(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::string TempDir::Subdir(const std::string& name) const {
  std::string path = path_ + "/" + name;
  fs::create_directories(path);
  fs::permissions(path, fs::perms::owner_all);
  ChownToServiceUser(path);
  return path;
}

std::string TempDir::WriteFile(const std::string& name, const std::string& content,
                               int mode) const {
  std::string path = path_ + "/" + name;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
  ChownToServiceUser(path);
  return path;
}

// ---------------------------------------------------------------------------------------------
// ChildProcess

Outcome<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                                           const std::string& log_path,
                                                           int stop_signal) {
  // Everything the child needs is prepared before fork: after it, the child of a multi-threaded
  // process may only make async-signal-safe calls.
  RunAs who = RunAs::ServiceUser();
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return std::unexpected(fmt::format("open {}: {}", log_path, strerror(errno)));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(null_fd);
    return std::unexpected(fmt::format("fork: {}", strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    if (::chdir("/") != 0) ::_exit(126);
    if (who.drop_privileges) {
      if (::setgroups(1, &who.gid) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
        ::_exit(126);
      }
    }
    // After setuid: a change of credentials clears the parent-death signal.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);  // the test process died before prctl
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path, stop_signal));
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Running() {
  if (exit_status_) return false;
  int status = 0;
  pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
  if (reaped == pid_) {
    exit_status_ = status;
    return false;
  }
  return true;
}

void ChildProcess::Stop(std::chrono::milliseconds timeout) {
  if (!Running()) return;
  ::kill(pid_, stop_signal_);
  if (WaitFor([&] { return !Running(); }, timeout, 10ms)) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_status_ = status;
}

std::string ChildProcess::LogTail(size_t bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > bytes ? "..." + all.substr(all.size() - bytes) : all;
}

Outcome<void> RunToCompletion(const std::vector<std::string>& argv, const std::string& log_path,
                              std::chrono::milliseconds timeout) {
  auto child = ChildProcess::Spawn(argv, log_path);
  if (!child) return std::unexpected(child.error());
  if (!WaitFor([&] { return !(*child)->Running(); }, timeout)) {
    (*child)->Stop(1s);
    return std::unexpected(fmt::format("{} did not finish within {} ms:\n{}", argv[0],
                                       timeout.count(), (*child)->LogTail()));
  }
  int status = *(*child)->exit_status();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return std::unexpected(
        fmt::format("{} failed (wait status {}):\n{}", argv[0], status, (*child)->LogTail()));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// PgConnection

Outcome<PgConnection> PgConnection::Connect(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return std::unexpected("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    return std::unexpected(Trim(message));
  }
  return PgConnection(conn);
}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Outcome<PgConnection::Rows> PgConnection::Query(const std::string& sql) { return Run(sql, false); }

Outcome<PgConnection::Rows> PgConnection::QueryWithHeader(const std::string& sql) {
  return Run(sql, true);
}

Outcome<PgConnection::Rows> PgConnection::Run(const std::string& sql, bool header) {
  PGresult* result = PQexec(conn_, sql.c_str());
  ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = result ? PQresultErrorMessage(result) : PQerrorMessage(conn_);
    PQclear(result);
    return std::unexpected(Trim(message));
  }
  Rows rows;
  if (header) {
    std::vector<std::string>& names = rows.emplace_back();
    for (int c = 0; c < PQnfields(result); ++c) names.emplace_back(PQfname(result, c));
  }
  for (int r = 0; r < PQntuples(result); ++r) {
    std::vector<std::string>& row = rows.emplace_back();
    for (int c = 0; c < PQnfields(result); ++c) row.emplace_back(PQgetvalue(result, r, c));
  }
  PQclear(result);
  return rows;
}

Outcome<std::string> PgConnection::QueryValue(const std::string& sql) {
  auto rows = Query(sql);
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty() || rows->front().empty()) return std::unexpected("no rows from: " + sql);
  return rows->front().front();
}

std::string PgConnection::QuoteIdentifier(const std::string& name) {
  char* quoted = PQescapeIdentifier(conn_, name.c_str(), name.size());
  std::string result = quoted ? quoted : "";
  PQfreemem(quoted);
  return result;
}

std::string PgConnection::QuoteLiteral(const std::string& value) {
  char* quoted = PQescapeLiteral(conn_, value.c_str(), value.size());
  std::string result = quoted ? quoted : "";
  PQfreemem(quoted);
  return result;
}

std::string LoopbackConnInfo(int port, const std::string& dbname, const std::string& user,
                             const std::string& password) {
  // No TLS or GSSAPI probing: neither server is configured for them, and each probe is a round
  // trip that only adds noise to the timings.
  return fmt::format(
      "host=127.0.0.1 port={} dbname={} user={} password={} connect_timeout=10 sslmode=disable "
      "gssencmode=disable",
      port, ConnInfoValue(dbname), ConnInfoValue(user), ConnInfoValue(password));
}

// ---------------------------------------------------------------------------------------------
// PostgresServer

Outcome<std::unique_ptr<PostgresServer>> PostgresServer::Start(const Options& options) {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->options_ = options;
  server->dir_ = std::make_unique<TempDir>("postgres");
  server->superuser_password_ = RandomToken(24);
  const TempDir& dir = *server->dir_;
  std::string data = dir.Subdir("data");
  std::string sockets = server->socket_dir_ = dir.Subdir("sockets");
  std::string pwfile = dir.WriteFile("superuser-password", server->superuser_password_ + "\n");

  std::string bin = kPostgresBinDir;
  // --no-sync and fsync=off: the data is thrown away, durability only costs time here.
  auto init = RunToCompletion(
      {bin + "/initdb", "-D", data, "-U", kSuperuser, "-A", "scram-sha-256", "--pwfile=" + pwfile,
       "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
      dir.path() + "/initdb.log", 120s);
  if (!init) return std::unexpected(init.error());
  if (!options.hba.empty()) dir.WriteFile("data/pg_hba.conf", options.hba);

  // The port was free when the kernel picked it, but another test run may take it before the
  // server binds it: then the server exits saying so, and it gets another port.
  for (int attempt = 1;; ++attempt) {
    server->port_ = FreeLoopbackPort();
    std::vector<std::string> argv = {
        bin + "/postgres",
        "-D",
        data,
        "-p",
        std::to_string(server->port_),
        "-k",
        sockets,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        fmt::format("max_connections={}", options.max_connections),
        "-c",
        fmt::format("superuser_reserved_connections={}", options.superuser_reserved_connections),
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off"};
    for (const auto& setting : options.settings) argv.insert(argv.end(), {"-c", setting});
    auto process = ChildProcess::Spawn(argv, dir.path() + "/postgres.log", SIGINT);
    if (!process) return std::unexpected(process.error());
    server->process_ = std::move(*process);

    // What `pg_ctl -w` waits for: the server answers (PQping says OK even before authentication).
    std::string ping = LoopbackConnInfo(server->port_, "postgres", kSuperuser, "");
    bool ready = WaitFor(
        [&] { return !server->process_->Running() || PQping(ping.c_str()) == PQPING_OK; }, 60s);
    if (ready && server->process_->Running()) return server;
    std::string log = server->process_->LogTail();
    if (attempt < kStartAttempts && PortWasTaken(log)) continue;
    return std::unexpected(
        fmt::format("postgres did not start on port {}:\n{}", server->port_, log));
  }
}

std::string PostgresServer::SuperuserConnInfo(const std::string& dbname) const {
  std::string conninfo = LoopbackConnInfo(port_, dbname, kSuperuser, superuser_password_);
  // A server with ssl=on may take TCP only over TLS (a hostssl-only hba): the later keyword wins.
  if (std::ranges::find(options_.settings, "ssl=on") != options_.settings.end()) {
    conninfo += " sslmode=require";
  }
  return conninfo;
}

Outcome<PgConnection> PostgresServer::ConnectAsSuperuser(const std::string& dbname) const {
  return PgConnection::Connect(SuperuserConnInfo(dbname));
}

Outcome<void> PostgresServer::CreateRole(const std::string& name, const std::string& password) {
  auto conn = ConnectAsSuperuser();
  if (!conn) return std::unexpected(conn.error());
  auto done = conn->Query(fmt::format("CREATE ROLE {} LOGIN PASSWORD {}",
                                      conn->QuoteIdentifier(name), conn->QuoteLiteral(password)));
  if (!done) return std::unexpected(done.error());
  return {};
}

Outcome<void> PostgresServer::CreateDatabase(const std::string& name, const std::string& owner) {
  auto conn = ConnectAsSuperuser();
  if (!conn) return std::unexpected(conn.error());
  auto done = conn->Query(fmt::format("CREATE DATABASE {} OWNER {}", conn->QuoteIdentifier(name),
                                      conn->QuoteIdentifier(owner)));
  if (!done) return std::unexpected(done.error());
  return {};
}

// ---------------------------------------------------------------------------------------------
// PgBouncer

std::string OverridePgBouncerSettings(const std::string& ini,
                                      const std::map<std::string, std::string>& settings) {
  std::map<std::string, std::string> pending = settings;
  std::ostringstream out;
  bool in_section = false;
  bool saw_section = false;
  auto flush = [&] {
    for (const auto& [key, value] : pending) out << key << " = " << value << "\n";
    pending.clear();
  };
  std::istringstream in(ini);
  std::string line;
  while (std::getline(in, line)) {
    std::string trimmed = Trim(line);
    if (trimmed.starts_with('[')) {
      if (in_section) flush();
      in_section = trimmed == "[pgbouncer]";
      saw_section = saw_section || in_section;
    } else if (in_section && !trimmed.empty() && trimmed[0] != ';' && trimmed[0] != '#') {
      std::string key = Trim(trimmed.substr(0, trimmed.find('=')));
      if (auto it = settings.find(key); it != settings.end()) {
        out << key << " = " << it->second << "\n";
        pending.erase(key);
        continue;
      }
    }
    out << line << "\n";
  }
  if (!saw_section) out << "[pgbouncer]\n";
  if (in_section || !saw_section) flush();
  return out.str();
}

Outcome<std::unique_ptr<PgBouncer>> PgBouncer::Start(
    const std::string& rendered_ini, const std::string& userlist,
    const std::map<std::string, std::string>& extra) {
  std::unique_ptr<PgBouncer> bouncer(new PgBouncer());
  bouncer->dir_ = std::make_unique<TempDir>("pgbouncer");
  const TempDir& dir = *bouncer->dir_;
  std::string auth_file = dir.WriteFile("userlist.txt", userlist, 0600);
  for (int attempt = 1;; ++attempt) {  // another port when it was taken meanwhile, as for postgres
    bouncer->port_ = FreeLoopbackPort();
    bouncer->ini_ =
        OverridePgBouncerSettings(rendered_ini, {
                                                    {"listen_addr", "127.0.0.1"},
                                                    {"listen_port", std::to_string(bouncer->port_)},
                                                    {"auth_file", auth_file},
                                                    {"unix_socket_dir", dir.path()},
                                                });
    if (!extra.empty()) bouncer->ini_ = OverridePgBouncerSettings(bouncer->ini_, extra);
    std::string ini_path = dir.WriteFile("pgbouncer.ini", bouncer->ini_, 0600);

    auto process =
        ChildProcess::Spawn({kPgBouncerBinary, ini_path}, dir.path() + "/pgbouncer.log", SIGTERM);
    if (!process) return std::unexpected(process.error());
    bouncer->process_ = std::move(*process);
    // Ready once it says it is up (so the listener on the port is this process, not whoever might
    // have taken the port meanwhile) and accepts a connection.
    auto up = [&] {
      return bouncer->process_->LogTail(100000).find("process up:") != std::string::npos &&
             AcceptsConnections(bouncer->port_);
    };
    bool ready = WaitFor([&] { return !bouncer->process_->Running() || up(); }, 15s);
    if (ready && bouncer->process_->Running()) return bouncer;
    std::string log = bouncer->process_->LogTail();
    if (attempt < kStartAttempts && PortWasTaken(log)) continue;
    return std::unexpected(fmt::format("pgbouncer did not start on port {}:\n{}\n--- ini:\n{}",
                                       bouncer->port_, log, bouncer->ini_));
  }
}

}  // namespace poolkeeper::pgtest
