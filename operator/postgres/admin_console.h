// PgBouncer's admin console (the virtual database "pgbouncer"), as the pooler agent uses it: SHOW
// commands read as tables, and RELOAD, PAUSE, RESUME. The console speaks only the simple query
// protocol, so this is its own small libpq client, not Session (which uses PQexecParams).
//
// The agent reaches the console over PgBouncer's Unix socket in the pod's shared emptyDir. The
// password is handed to libpq as a keyword/value pair: it never appears in a conninfo string, a
// message or a log line.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace poolkeeper::postgres {

// One SHOW result (or an empty one for a command): the column names and the rows as text, NULL
// read as "".
struct ConsoleTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;

  // The index of `column`, or -1.
  int Column(const std::string& column) const;
  // Row `row`'s value in `column`, "" when the column is absent.
  std::string Value(size_t row, const std::string& column) const;
};

// What the agent needs of the console. Implementations open their own session per call, so calls
// may run on several threads at once (a PAUSE that waits for server connections blocks only its
// own caller).
class AdminConsole {
 public:
  virtual ~AdminConsole() = default;
  // Runs `commands` in order in one session ("SHOW POOLS", "RELOAD", ...), stopping at the first
  // failure. kUnavailable when the console cannot be reached (PgBouncer starting or gone).
  virtual Result<std::vector<ConsoleTable>> Run(const std::vector<std::string>& commands) = 0;
};

struct ConsoleEndpoint {
  std::string socket_dir;  // PgBouncer's unix_socket_dir (libpq's host)
  int port = 0;            // its listen_port: the socket is .s.PGSQL.<port>
  std::string user;        // one of admin_users
  std::string password;    // never logged
  int connect_timeout_seconds = 5;
};

// The libpq console client: one short session per Run.
std::unique_ptr<AdminConsole> MakeLibpqAdminConsole(ConsoleEndpoint endpoint);

}  // namespace poolkeeper::postgres
