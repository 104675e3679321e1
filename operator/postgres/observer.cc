// LibpqClient: reading a server's connection figures and setting a role's CONNECTION LIMIT over
// one short libpq session per call (see observer.h).
#include "postgres/observer.h"

#include <charconv>

#include "postgres/session.h"

namespace poolkeeper::postgres {
namespace {

// One row: the settings, the identity, and whether this role may see every session's
// backend_type and client_addr (pg_has_role's USAGE is what pg_stat_activity checks: the
// privileges of pg_read_all_stats, inherited; true for a superuser).
constexpr char kSettingsSql[] =
    "SELECT current_setting('max_connections'), current_setting('superuser_reserved_connections'),"
    " current_setting('reserved_connections', true), current_setting('server_version_num'),"
    " current_setting('server_version'),"
    " (SELECT system_identifier FROM pg_control_system()),"
    " pg_has_role('pg_read_all_stats', 'USAGE'), current_user";

constexpr char kActivitySql[] =
    "SELECT host(client_addr), usename FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";

constexpr char kRoleLimitsSql[] =
    "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolcanlogin AND rolconnlimit >= 0";

constexpr char kDatabaseLimitsSql[] =
    "SELECT datname, datconnlimit FROM pg_database WHERE datallowconn AND datconnlimit >= 0";

using Row = Session::Row;

Result<int64_t> Integer(const Session& session, std::string_view what,
                        const std::optional<std::string>& text) {
  int64_t value = 0;
  if (text) {
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (error == std::errc() && end == text->data() + text->size()) return value;
  }
  return Fail(ErrorCode::kInternal, session.where() + ": " + std::string(what) + " is \"" +
                                        text.value_or("NULL") + "\", not an integer");
}

// Name -> limit from rows of (name, integer).
Result<std::map<std::string, int64_t>> Limits(const Session& session, std::string_view what,
                                              const std::vector<Row>& rows) {
  std::map<std::string, int64_t> limits;
  for (const Row& row : rows) {
    auto limit = Integer(session, what, row.at(1));
    if (!limit) return std::unexpected(limit.error());
    limits[row.at(0).value_or("")] = *limit;
  }
  return limits;
}

Status ReadSettings(Session& session, Observation& seen) {
  auto rows = session.Query("reading the settings and pg_control_system()", kSettingsSql, {},
                            "EXECUTE on pg_control_system(), which PUBLIC has by default");
  if (!rows) return std::unexpected(rows.error());
  const Row& row = rows->at(0);
  if (row.at(6) != "t") {
    std::string role = row.at(7).value_or("?");
    return Fail(ErrorCode::kUnauthorized,
                session.where() + ": role \"" + role +
                    "\" cannot see other sessions' backend_type and client_addr in "
                    "pg_stat_activity: it needs the privileges of pg_read_all_stats (GRANT "
                    "pg_read_all_stats, or pg_monitor which includes it, TO \"" +
                    role + "\"; and the role must not be NOINHERIT)");
  }
  auto max_connections = Integer(session, "max_connections", row.at(0));
  auto superuser_reserved = Integer(session, "superuser_reserved_connections", row.at(1));
  // NULL before PostgreSQL 16: no such setting, so nothing reserved by it.
  auto reserved = row.at(2) ? Integer(session, "reserved_connections", row.at(2)) : 0;
  auto version_num = Integer(session, "server_version_num", row.at(3));
  for (const auto* value : {&max_connections, &superuser_reserved, &reserved, &version_num}) {
    if (!*value) return std::unexpected(value->error());
  }
  if (!row.at(5) || row.at(5)->empty()) {
    return Fail(ErrorCode::kInternal, session.where() + ": pg_control_system() gave no identifier");
  }
  seen.max_connections = *max_connections;
  seen.superuser_reserved_connections = *superuser_reserved;
  seen.reserved_connections = *reserved;
  seen.server_version_num = static_cast<int>(*version_num);
  seen.server_version = row.at(4).value_or("");
  seen.system_identifier = *row.at(5);
  return {};
}

Status CountClients(Session& session, const std::set<std::string>& poolers, Observation& seen) {
  auto rows = session.Query("reading pg_stat_activity", kActivitySql, {}, "pg_read_all_stats");
  if (!rows) return std::unexpected(rows.error());
  for (const Row& row : *rows) {
    ++seen.client_backends;
    // usename is NULL only for a backend still authenticating: counted, but for no role.
    if (row.at(1)) ++seen.connections_by_role[*row.at(1)];
    std::optional<std::string> address;
    if (row.at(0)) address = CanonicalAddress(*row.at(0));
    if (!address || !poolers.contains(*address)) ++seen.in_use_by_others;
  }
  return {};
}

}  // namespace

Result<Observation> LibpqClient::Observe(const Endpoint& endpoint,
                                         const std::set<std::string>& pooler_addresses) {
  std::set<std::string> poolers;
  for (const std::string& address : pooler_addresses) {
    auto canonical = CanonicalAddress(address);
    if (!canonical) {
      return Fail(ErrorCode::kInvalid,
                  Where(endpoint) + ": pooler address \"" + address + "\" is not an IP address");
    }
    poolers.insert(*canonical);
  }
  auto session = Session::Open(endpoint);
  if (!session) return std::unexpected(session.error());

  Observation seen;
  if (auto read = ReadSettings(*session, seen); !read) return std::unexpected(read.error());
  if (auto counted = CountClients(*session, poolers, seen); !counted) {
    return std::unexpected(counted.error());
  }
  auto roles = session->Query("reading pg_roles", kRoleLimitsSql);
  if (!roles) return std::unexpected(roles.error());
  auto role_limits = Limits(*session, "rolconnlimit", *roles);
  if (!role_limits) return std::unexpected(role_limits.error());
  seen.role_limits = std::move(*role_limits);

  auto databases = session->Query("reading pg_database", kDatabaseLimitsSql);
  if (!databases) return std::unexpected(databases.error());
  auto database_limits = Limits(*session, "datconnlimit", *databases);
  if (!database_limits) return std::unexpected(database_limits.error());
  seen.database_limits = std::move(*database_limits);
  return seen;
}

Result<int64_t> LibpqClient::SetRoleConnectionLimit(const Endpoint& endpoint,
                                                    const std::string& role, int64_t limit) {
  if (limit < -1) {
    return Fail(ErrorCode::kInvalid, Where(endpoint) + ": connection limit " +
                                         std::to_string(limit) + " for role \"" + role +
                                         "\" is below -1 (-1 means no limit)");
  }
  if (role.empty()) return Fail(ErrorCode::kInvalid, Where(endpoint) + ": empty role name");
  auto session = Session::Open(endpoint);
  if (!session) return std::unexpected(session.error());

  // Read and alter in one transaction: a concurrent ALTER of the same role makes this one fail
  // ("tuple concurrently updated") instead of returning a limit that was already replaced.
  if (auto begun = session->Query("BEGIN", "BEGIN"); !begun) return std::unexpected(begun.error());
  auto rows = session->Query("reading the role's connection limit",
                             "SELECT rolconnlimit FROM pg_roles WHERE rolname = $1", {role});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) {
    return Fail(ErrorCode::kNotFound, session->where() + ": role \"" + role + "\" does not exist");
  }
  auto previous = Integer(*session, "rolconnlimit", rows->front().at(0));
  if (!previous) return std::unexpected(previous.error());
  if (*previous == limit) return previous;  // nothing to write; the session's end rolls back

  auto quoted = session->QuoteIdentifier(role);
  if (!quoted) return std::unexpected(quoted.error());
  // Two statements left to write: the ALTER and the COMMIT.
  if (auto fenced = BoundWrites(*session, window_, 2); !fenced) {
    return std::unexpected(fenced.error());
  }
  auto altered =
      session->Query("ALTER ROLE " + *quoted + " CONNECTION LIMIT",
                     "ALTER ROLE " + *quoted + " CONNECTION LIMIT " + std::to_string(limit), {},
                     "CREATEROLE, or superuser for a superuser role");
  if (!altered) return std::unexpected(altered.error());
  if (auto done = session->Query("COMMIT", "COMMIT"); !done) return std::unexpected(done.error());
  return previous;
}

}  // namespace poolkeeper::postgres
