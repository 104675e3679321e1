// One libpq connection with poolkeeper's error codes (see session.h).
#include "postgres/session.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <utility>

namespace poolkeeper::postgres {
namespace {

constexpr std::array<std::string_view, 6> kSslModes = {"disable", "allow",     "prefer",
                                                       "require", "verify-ca", "verify-full"};

// Every statement ends within this; a server that holds a lock or is overloaded makes a call
// fail with kTimeout instead of hanging a reconcile.
constexpr std::chrono::milliseconds kStatementTimeout{5000};
constexpr char kSessionOptions[] = "-c statement_timeout=5000";

struct Clear {
  void operator()(PGresult* result) const { PQclear(result); }
};

// libpq's messages span lines (one per address tried, hints on a tab-indented line): one line
// for a log and a condition message.
std::string OneLine(std::string_view text) {
  std::string line;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) && c != ' ') {
      space = true;
    } else {
      if (space && !line.empty() && line.back() != ' ') line += ' ';
      space = false;
      line += c;
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// What an endpoint libpq would misread or wait forever on has wrong, or nullopt.
std::optional<std::string> EndpointProblem(const Endpoint& endpoint) {
  if (endpoint.host.empty()) return "host must not be empty";
  if (Contains(endpoint.host, ",")) {
    return "host must name one server (libpq reads a comma-separated host as a list)";
  }
  if (endpoint.port < 1 || endpoint.port > 65535) return "port must be between 1 and 65535";
  if (endpoint.dbname.empty()) return "dbname must not be empty";
  if (endpoint.user.empty()) return "user must not be empty";
  if (std::ranges::find(kSslModes, endpoint.sslmode) == kSslModes.end()) {
    return "sslmode \"" + endpoint.sslmode +
           "\" is not one of disable, allow, prefer, require, verify-ca, verify-full";
  }
  if (endpoint.connect_timeout_seconds < 1) {
    return "connect_timeout_seconds must be at least 1 (0 would wait forever)";
  }
  return std::nullopt;
}

// A failed connection attempt has no SQLSTATE in libpq's API, only the message: the server's
// FATAL text (English unless the server sets another lc_messages) or libpq's own.
ErrorCode ConnectFailureCode(PGconn* conn, std::string_view message) {
  if (PQconnectionNeedsPassword(conn)) return ErrorCode::kUnauthorized;
  for (std::string_view refused :
       {"authentication failed", "no pg_hba.conf entry", "pg_hba.conf rejects connection",
        "is not permitted to log in", "permission denied", "no password supplied"}) {
    if (Contains(message, refused)) return ErrorCode::kUnauthorized;
  }
  if (Contains(message, "FATAL:  database \"") && Contains(message, "\" does not exist")) {
    return ErrorCode::kNotFound;
  }
  // Unreachable, refused, timed out, TLS trouble, "too many clients", starting up or shutting
  // down: all server or network trouble for the caller to back off from.
  return ErrorCode::kUnavailable;
}

}  // namespace

std::string Where(const Endpoint& endpoint) {
  bool ipv6 = Contains(endpoint.host, ":") && !endpoint.host.starts_with('/');
  std::string host = ipv6 ? "[" + endpoint.host + "]" : endpoint.host;
  return host + ":" + std::to_string(endpoint.port);
}

std::optional<std::string> CanonicalAddress(std::string_view address) {
  std::string text(address);
  char buffer[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return inet_ntop(AF_INET, &v4, buffer, sizeof(buffer));
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {  // ::ffff:a.b.c.d, as a dual-stack listener reports IPv4
    std::copy_n(&v6.s6_addr[12], 4, reinterpret_cast<unsigned char*>(&v4.s_addr));
    return inet_ntop(AF_INET, &v4, buffer, sizeof(buffer));
  }
  return inet_ntop(AF_INET6, &v6, buffer, sizeof(buffer));
}

Result<Session> Session::Open(const Endpoint& endpoint) {
  std::string where = Where(endpoint);
  if (auto problem = EndpointProblem(endpoint)) {
    return Fail(ErrorCode::kInvalid, where + ": " + *problem);
  }
  std::string port = std::to_string(endpoint.port);
  std::string timeout = std::to_string(endpoint.connect_timeout_seconds);
  std::vector<const char*> keywords = {
      "host",     "port",      "dbname",          "user",
      "password", "sslmode",   "connect_timeout", "application_name",
      "options",  "gssencmode"};
  std::vector<const char*> values = {endpoint.host.c_str(),     port.c_str(),
                                     endpoint.dbname.c_str(),   endpoint.user.c_str(),
                                     endpoint.password.c_str(), endpoint.sslmode.c_str(),
                                     timeout.c_str(),           "poolkeeper-observer",
                                     kSessionOptions,           "disable"};
  if (!endpoint.sslrootcert.empty()) {
    keywords.push_back("sslrootcert");
    values.push_back(endpoint.sslrootcert.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);

  std::unique_ptr<PGconn, Finish> conn(
      PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/0));
  if (conn == nullptr) {
    return Fail(ErrorCode::kInternal, where + ": libpq could not allocate a connection");
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string message = OneLine(PQerrorMessage(conn.get()));
    return Fail(ConnectFailureCode(conn.get(), message), where + ": " + message);
  }
  // libpq prints the server's NOTICEs ("schema ... already exists, skipping") to stderr by
  // default: the operator's log is structured, and these say nothing the caller needs.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return Session(std::move(conn), std::move(where));
}

Result<std::vector<Session::Row>> Session::Query(std::string_view what, const std::string& sql,
                                                 const std::vector<std::string>& params,
                                                 std::string_view privilege) {
  std::vector<const char*> values;
  for (const std::string& param : params) values.push_back(param.c_str());
  // The extended protocol: exactly one statement, parameters never parsed as SQL.
  std::unique_ptr<PGresult, Clear> result(
      PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                   values.data(), nullptr, nullptr, /*resultFormat=*/0));
  ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
    std::vector<Row> rows;
    for (int r = 0; r < PQntuples(result.get()); ++r) {
      Row& row = rows.emplace_back();
      for (int c = 0; c < PQnfields(result.get()); ++c) {
        if (PQgetisnull(result.get(), r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(PQgetvalue(result.get(), r, c));
        }
      }
    }
    return rows;
  }

  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  const char* primary =
      result ? PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string sqlstate = state ? state : "";
  std::string message = where_ + ": " + std::string(what) + ": " +
                        (primary ? std::string(primary) : OneLine(PQerrorMessage(conn_.get())));
  ErrorCode code = ErrorCode::kInternal;
  if (PQstatus(conn_.get()) == CONNECTION_BAD || sqlstate.starts_with("08") ||
      sqlstate.starts_with("57P")) {
    code = ErrorCode::kUnavailable;  // the connection broke, or the server is shutting down
  } else if (sqlstate == "42501") {
    code = ErrorCode::kUnauthorized;
    if (!privilege.empty()) message += " (the role needs " + std::string(privilege) + ")";
  } else if (sqlstate == "57014") {
    code = ErrorCode::kTimeout;  // statement_timeout
  } else if (sqlstate == "42704") {
    code = ErrorCode::kNotFound;  // e.g. the role was dropped meanwhile
  }
  return Fail(code, std::move(message));
}

Result<std::string> Session::QuoteIdentifier(const std::string& name) {
  char* quoted = PQescapeIdentifier(conn_.get(), name.c_str(), name.size());
  if (quoted == nullptr) {
    return Fail(ErrorCode::kInvalid,
                where_ + ": cannot quote a name: " + OneLine(PQerrorMessage(conn_.get())));
  }
  std::string result = quoted;
  PQfreemem(quoted);
  return result;
}

Result<std::string> Session::QuoteLiteral(const std::string& text) {
  char* quoted = PQescapeLiteral(conn_.get(), text.c_str(), text.size());
  if (quoted == nullptr) {
    return Fail(ErrorCode::kInvalid,
                where_ + ": cannot quote a literal: " + OneLine(PQerrorMessage(conn_.get())));
  }
  std::string result = quoted;
  PQfreemem(quoted);
  return result;
}

Result<std::string> Session::ScramVerifier(const std::string& role, const std::string& password) {
  char* verifier =
      PQencryptPasswordConn(conn_.get(), password.c_str(), role.c_str(), "scram-sha-256");
  if (verifier == nullptr) {
    // The message is libpq's and names no password.
    return Fail(ErrorCode::kInternal, where_ + ": cannot compute a SCRAM verifier: " +
                                          OneLine(PQerrorMessage(conn_.get())));
  }
  std::string result = verifier;
  PQfreemem(verifier);
  return result;
}

Status BoundWrites(Session& session, const WriteWindow& window, int statements_left) {
  if (!window) return {};
  auto left = window();
  if (!left) return std::unexpected(left.error());
  const auto each =
      std::min<std::chrono::milliseconds>(*left / std::max(statements_left, 1), kStatementTimeout);
  if (each < std::chrono::milliseconds(1)) {  // 0 would mean no timeout at all
    return Fail(ErrorCode::kTimeout,
                session.where() + ": no time left to write before the renew deadline");
  }
  auto set = session.Query("bounding the write by the leader's renew deadline",
                           "SET statement_timeout = " + std::to_string(each.count()));
  if (!set) return std::unexpected(set.error());
  return {};
}

}  // namespace poolkeeper::postgres
