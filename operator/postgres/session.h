// One libpq connection to one Endpoint, private to the postgres module: it opens the connection
// with keyword/value arrays (no conninfo string, so nothing to escape and nothing that could carry
// a password into a message), runs one statement at a time, and turns libpq's failures into
// poolkeeper's error codes, every message prefixed with "host:port: ". libpq stays out of the
// module's public header.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "postgres/observer.h"

namespace poolkeeper::postgres {

// "host:port", with brackets around an IPv6 address: the prefix of every message.
std::string Where(const Endpoint& endpoint);

// The canonical text of an IP address (an IPv4-mapped IPv6 address as IPv4), or nullopt when
// `address` is not one. PostgreSQL's host(client_addr) and a pod's IP compare equal this way.
std::optional<std::string> CanonicalAddress(std::string_view address);

class Session {
 public:
  using Row = std::vector<std::optional<std::string>>;  // NULL is nullopt

  // Validates `endpoint` (kInvalid), then connects.
  static Result<Session> Open(const Endpoint& endpoint);

  // Runs one statement with text parameters ($1, $2, ...). `what` says what it was for, and
  // `privilege` what a role refused with "permission denied" lacks; both go into the message.
  Result<std::vector<Row>> Query(std::string_view what, const std::string& sql,
                                 const std::vector<std::string>& params = {},
                                 std::string_view privilege = {});
  // `name` as a quoted SQL identifier.
  Result<std::string> QuoteIdentifier(const std::string& name);
  // `text` as a quoted SQL string literal (for utility statements, which take no parameters).
  Result<std::string> QuoteLiteral(const std::string& text);
  // The SCRAM-SHA-256 verifier of `password` for `role`, computed by libpq on this side: a
  // statement that sets a password then carries no plaintext that the server could log.
  Result<std::string> ScramVerifier(const std::string& role, const std::string& password);
  const std::string& where() const { return where_; }

 private:
  struct Finish {
    void operator()(PGconn* conn) const { PQfinish(conn); }
  };

  Session(std::unique_ptr<PGconn, Finish> conn, std::string where)
      : conn_(std::move(conn)), where_(std::move(where)) {}

  std::unique_ptr<PGconn, Finish> conn_;
  std::string where_;
};

// Leader election's fence for writes to PostgreSQL (LibpqClient's `window`): asks `window` (none:
// nothing to do) and sets the session's statement_timeout to what is left divided by
// `statements_left`, the writes still to come in this call including a COMMIT, so that all of
// them end before the window does; called again before each, the share follows the time left. An
// error, with nothing written, when this replica may not write or no time is left.
Status BoundWrites(Session& session, const WriteWindow& window, int statements_left);

}  // namespace poolkeeper::postgres
