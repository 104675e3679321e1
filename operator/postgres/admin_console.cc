// The libpq client of PgBouncer's admin console (see admin_console.h).
#include "postgres/admin_console.h"

#include <libpq-fe.h>

#include <utility>

namespace poolkeeper::postgres {
namespace {

struct Finish {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct Clear {
  void operator()(PGresult* result) const { PQclear(result); }
};

// libpq's messages end with a newline and may span lines: one line for a log.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

class LibpqAdminConsole : public AdminConsole {
 public:
  explicit LibpqAdminConsole(ConsoleEndpoint endpoint) : endpoint_(std::move(endpoint)) {}

  Result<std::vector<ConsoleTable>> Run(const std::vector<std::string>& commands) override {
    std::string where =
        "pgbouncer console " + endpoint_.socket_dir + ":" + std::to_string(endpoint_.port);
    std::string port = std::to_string(endpoint_.port);
    std::string timeout = std::to_string(endpoint_.connect_timeout_seconds);
    const char* keywords[] = {
        "host", "port", "dbname", "user", "password", "connect_timeout", "application_name",
        nullptr};
    const char* values[] = {
        endpoint_.socket_dir.c_str(), port.c_str(),    "pgbouncer",        endpoint_.user.c_str(),
        endpoint_.password.c_str(),   timeout.c_str(), "poolkeeper-agent", nullptr};
    std::unique_ptr<PGconn, Finish> conn(PQconnectdbParams(keywords, values, 0));
    if (conn == nullptr) return Fail(ErrorCode::kInternal, where + ": libpq could not allocate");
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      std::string message = OneLine(PQerrorMessage(conn.get()));
      ErrorCode code = PQconnectionNeedsPassword(conn.get()) ||
                               message.find("password authentication failed") != std::string::npos
                           ? ErrorCode::kUnauthorized
                           : ErrorCode::kUnavailable;
      return Fail(code, where + ": " + message);
    }
    std::vector<ConsoleTable> tables;
    for (const std::string& command : commands) {
      std::unique_ptr<PGresult, Clear> result(PQexec(conn.get(), command.c_str()));
      ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
      if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        const char* primary =
            result ? PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
        std::string message = primary ? primary : OneLine(PQerrorMessage(conn.get()));
        ErrorCode code =
            PQstatus(conn.get()) == CONNECTION_BAD ? ErrorCode::kUnavailable : ErrorCode::kInternal;
        return Fail(code, where + ": " + command + ": " + message);
      }
      ConsoleTable& table = tables.emplace_back();
      for (int c = 0; c < PQnfields(result.get()); ++c) {
        table.columns.emplace_back(PQfname(result.get(), c));
      }
      for (int r = 0; r < PQntuples(result.get()); ++r) {
        auto& row = table.rows.emplace_back();
        for (int c = 0; c < PQnfields(result.get()); ++c) {
          row.emplace_back(PQgetisnull(result.get(), r, c) ? "" : PQgetvalue(result.get(), r, c));
        }
      }
    }
    return tables;
  }

 private:
  ConsoleEndpoint endpoint_;
};

}  // namespace

int ConsoleTable::Column(const std::string& column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == column) return static_cast<int>(i);
  }
  return -1;
}

std::string ConsoleTable::Value(size_t row, const std::string& column) const {
  int index = Column(column);
  if (index < 0 || row >= rows.size() || static_cast<size_t>(index) >= rows[row].size()) return "";
  return rows[row][index];
}

std::unique_ptr<AdminConsole> MakeLibpqAdminConsole(ConsoleEndpoint endpoint) {
  return std::make_unique<LibpqAdminConsole>(std::move(endpoint));
}

}  // namespace poolkeeper::postgres
