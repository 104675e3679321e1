// The postgres test tier's harness: a throwaway PostgreSQL server, PgBouncer processes running
// rendered files, and libpq clients, all on loopback in temporary directories that are removed
// (and processes that are killed) when the owning object goes away, whether the test passed or not.
//
// PostgreSQL and PgBouncer refuse to run as root. When the tests run as root (CI, sessions), every
// process is started as the `postgres` system user in directories it owns; otherwise as the current
// user.
//
// Both servers run as direct children of the test process (no daemonizing `pg_ctl start`): each
// child asks the kernel for SIGKILL when the test process dies (PR_SET_PDEATHSIG), so even a test
// binary killed by a ctest timeout leaves nothing behind. Readiness is what `pg_ctl -w` checks:
// the server answers a connection attempt, polled against a deadline.
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace poolkeeper::pgtest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

template <typename T>
using Outcome = std::expected<T, std::string>;  // the error is text for the test's failure message

inline constexpr char kPostgresBinDir[] = "/usr/lib/postgresql/15/bin";
inline constexpr char kPgBouncerBinary[] = "/usr/sbin/pgbouncer";

// Why the tier cannot run here (a binary or the `postgres` user is missing), or nullopt.
std::optional<std::string> MissingPrerequisite();

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
int FreeLoopbackPort();

// Polls `ready` until it returns true or `timeout` passes. Returns whether it became true.
bool WaitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = 20ms);

// Whether a TCP connection to 127.0.0.1:port is accepted right now.
bool AcceptsConnections(int port);

// The identity the servers run as: `postgres` when we are root, else ourselves.
struct RunAs {
  uid_t uid;
  gid_t gid;
  bool drop_privileges;  // true when we are root and switch to `uid` in the child
  static RunAs ServiceUser();
};

// A directory under $TMPDIR owned by the service user, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Creates `name` inside, owned by the service user.
  std::string Subdir(const std::string& name) const;
  // Writes `content` to `name` inside, owned by the service user, with `mode`.
  std::string WriteFile(const std::string& name, const std::string& content, int mode = 0600) const;

 private:
  std::string path_;
};

// A child process running as the service user, its stdout and stderr in a log file. The destructor
// sends `stop_signal`, waits up to a deadline, then SIGKILLs.
class ChildProcess {
 public:
  static Outcome<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                      const std::string& log_path,
                                                      int stop_signal = SIGTERM);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();  // reaps the child if it exited
  std::optional<int> exit_status() const { return exit_status_; }
  // Stops the child (signal, wait up to `timeout`, then SIGKILL). Idempotent.
  void Stop(std::chrono::milliseconds timeout = 10s);
  std::string LogTail(size_t bytes = 4000) const;

 private:
  ChildProcess(pid_t pid, std::string log_path, int stop_signal)
      : pid_(pid), log_path_(std::move(log_path)), stop_signal_(stop_signal) {}
  pid_t pid_;
  std::string log_path_;
  int stop_signal_;
  std::optional<int> exit_status_;  // raw waitpid status once reaped
};

// Runs a command as the service user to completion (bounded by `timeout`); the error carries its
// output.
Outcome<void> RunToCompletion(const std::vector<std::string>& argv, const std::string& log_path,
                              std::chrono::milliseconds timeout = 60s);

// One libpq connection. Move-only; closed by the destructor.
class PgConnection {
 public:
  using Rows = std::vector<std::vector<std::string>>;  // NULL reads as ""

  // Connects with `conninfo`; the error is libpq's message (e.g. "FATAL:  password
  // authentication failed for user ...").
  static Outcome<PgConnection> Connect(const std::string& conninfo);
  PgConnection(PgConnection&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  PgConnection& operator=(PgConnection&& other) noexcept;
  ~PgConnection();

  // Runs `sql` (one or more statements; the last result is returned) and returns its rows.
  Outcome<Rows> Query(const std::string& sql);
  // The same, with the column names as the first row (for PgBouncer's SHOW commands).
  Outcome<Rows> QueryWithHeader(const std::string& sql);
  // The first column of the first row.
  Outcome<std::string> QueryValue(const std::string& sql);
  std::string QuoteIdentifier(const std::string& name);
  std::string QuoteLiteral(const std::string& value);

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  Outcome<Rows> Run(const std::string& sql, bool header);
  PGconn* conn_;
};

// A libpq conninfo for a TCP connection to 127.0.0.1, values quoted as libpq wants.
std::string LoopbackConnInfo(int port, const std::string& dbname, const std::string& user,
                             const std::string& password);

// A throwaway PostgreSQL 15 server: initdb with SCRAM-only authentication and a superuser
// password, listening on 127.0.0.1 on a free port, stopped (fast shutdown) by the destructor.
class PostgresServer {
 public:
  struct Options {
    int max_connections = 100;
    int superuser_reserved_connections = 3;
    // Further `-c name=value` settings (e.g. ssl=on with ssl_cert_file), and a pg_hba.conf that
    // replaces initdb's when not empty (e.g. hostssl only, to refuse plaintext TCP).
    std::vector<std::string> settings;
    std::string hba;
  };
  static Outcome<std::unique_ptr<PostgresServer>> Start(const Options& options);
  ~PostgresServer() = default;  // members stop the server, then remove its directory

  int port() const { return port_; }
  const Options& options() const { return options_; }
  // The directory of the server's unix socket (`-k`): a libpq `host` for a local-socket client,
  // which pg_stat_activity shows with client_addr NULL.
  const std::string& socket_dir() const { return socket_dir_; }
  static constexpr char kSuperuser[] = "postgres";
  const std::string& superuser_password() const { return superuser_password_; }
  std::string SuperuserConnInfo(const std::string& dbname = "postgres") const;
  Outcome<PgConnection> ConnectAsSuperuser(const std::string& dbname = "postgres") const;

  // A login role with a SCRAM password (PostgreSQL 15's default password_encryption).
  Outcome<void> CreateRole(const std::string& name, const std::string& password);
  // CREATE DATABASE must run alone, outside a transaction block, hence its own call.
  Outcome<void> CreateDatabase(const std::string& name, const std::string& owner);

 private:
  PostgresServer() = default;
  Options options_;
  int port_ = 0;
  std::string socket_dir_;
  std::string superuser_password_;
  std::unique_ptr<TempDir> dir_;           // destroyed after process_
  std::unique_ptr<ChildProcess> process_;  // SIGINT: fast shutdown
};

// Sets `key = value` for each entry in the [pgbouncer] section of an ini text: replaces the line
// when the key is there, appends it to the section otherwise. Other sections are left as they are.
std::string OverridePgBouncerSettings(const std::string& ini,
                                      const std::map<std::string, std::string>& settings);

// One PgBouncer process running a rendered pgbouncer.ini and userlist.txt.
//
// The renderer writes `listen_addr = *` and the pool's port, and points auth_file at the Secret's
// mount: right in a pod, where the pod's network namespace is what separates one instance from the
// next. Here every instance shares the host's loopback, so the harness rewrites exactly those
// settings (listen_addr 127.0.0.1, a free port each, files in the instance's own directory) and
// nothing else: the budget-relevant settings run as rendered.
class PgBouncer {
 public:
  // `extra` is applied after the loopback rewrite (tests use it to add e.g. stats_users).
  static Outcome<std::unique_ptr<PgBouncer>> Start(
      const std::string& rendered_ini, const std::string& userlist,
      const std::map<std::string, std::string>& extra = {});
  ~PgBouncer() = default;

  int port() const { return port_; }
  const std::string& ini() const { return ini_; }  // what the process actually runs
  std::string ConnInfo(const std::string& dbname, const std::string& user,
                       const std::string& password) const {
    return LoopbackConnInfo(port_, dbname, user, password);
  }
  bool Running() { return process_->Running(); }
  std::string LogTail(size_t bytes = 4000) const { return process_->LogTail(bytes); }

 private:
  PgBouncer() = default;
  int port_ = 0;
  std::string ini_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ChildProcess> process_;  // SIGTERM: immediate shutdown in 1.18
};

}  // namespace poolkeeper::pgtest
