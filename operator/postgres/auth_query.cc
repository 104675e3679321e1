// LibpqClient's authQuery setup and removal (auth_query.h): one admin session for the role, one
// per database for the schema and the lookup function. Each database's objects are written in one
// transaction, after a read that says whether anything is to be done at all, so a second call
// writes nothing.
#include "postgres/auth_query.h"

#include "postgres/observer.h"
#include "postgres/session.h"

namespace poolkeeper::postgres {
namespace {

// The attributes of the least-privileged login role; `pg_roles` columns in the same order.
constexpr char kRoleAttributes[] =
    "LOGIN NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
constexpr char kRoleSql[] =
    "SELECT rolcanlogin AND NOT rolsuper AND NOT rolinherit AND NOT rolcreatedb AND NOT "
    "rolcreaterole AND NOT rolreplication AND NOT rolbypassrls FROM pg_catalog.pg_roles "
    "WHERE rolname = $1";
constexpr char kSearchPath[] = "search_path=pg_catalog, pg_temp";

// The function's body: the verifier of a role that may log in through the pooler, else no row.
// pg_shadow lists login roles only (rolcanlogin). With a gate (`quoted_gate`, a literal, or empty)
// only its members: the gate is looked up by name in the EXISTS, so a gate role that is gone
// matches nobody instead of failing every lookup with an error. pg_has_role is true for a
// superuser and any role, which NOT usesuper has already refused.
std::string LookupBody(const std::string& quoted_role, const std::string& quoted_gate) {
  std::string body =
      "\n  SELECT s.usename, s.passwd FROM pg_catalog.pg_shadow s\n"
      "  WHERE s.usename = $1 AND NOT s.usesuper AND s.usename <> " +
      quoted_role +
      "\n    AND s.usename::text NOT LIKE 'pg\\_%'"
      "\n    AND (s.valuntil IS NULL OR s.valuntil > pg_catalog.now())\n";
  if (!quoted_gate.empty()) {
    body += "    AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles g WHERE g.rolname = " + quoted_gate +
            "\n      AND pg_catalog.pg_has_role(s.usesysid, g.oid, 'MEMBER'))\n";
  }
  return body;
}

// Whether the schema and function are exactly as wanted: owned by the session's role, the body,
// SECURITY DEFINER and search_path as set, and nobody but the owner and the auth role granted
// anything on either (PUBLIC included: grantee 0).
constexpr char kStateSql[] =
    "WITH me AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user),"
    " auth AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $3),"
    " f AS (SELECT p.*, n.nspowner, n.nspacl FROM pg_catalog.pg_proc p"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    "   WHERE n.nspname = $1 AND p.proname = $2 AND p.proargtypes = '25'::pg_catalog.oidvector)"
    " SELECT count(*) = 1 AND coalesce(bool_and("
    "   f.prosrc = $4 AND f.prosecdef AND f.proconfig = ARRAY[$5]"
    "   AND f.proowner = (SELECT oid FROM me) AND f.nspowner = (SELECT oid FROM me)"
    "   AND f.proacl IS NOT NULL AND f.nspacl IS NOT NULL"
    "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(f.proacl) a"
    "     WHERE a.grantee NOT IN (f.proowner, (SELECT oid FROM auth)))"
    "   AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(f.proacl) a"
    "     WHERE a.grantee = (SELECT oid FROM auth) AND a.privilege_type = 'EXECUTE')"
    "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(f.nspacl) a"
    "     WHERE a.grantee NOT IN (f.nspowner, (SELECT oid FROM auth))"
    "       OR (a.grantee = (SELECT oid FROM auth) AND a.privilege_type <> 'USAGE'))"
    "   AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(f.nspacl) a"
    "     WHERE a.grantee = (SELECT oid FROM auth) AND a.privilege_type = 'USAGE')), false)"
    " FROM f";

// Other roles granted anything on the schema or function: their grants are revoked.
constexpr char kOtherGranteesSql[] =
    "SELECT DISTINCT a.grantee::pg_catalog.regrole::text FROM pg_catalog.pg_namespace n,"
    " pg_catalog.aclexplode(n.nspacl) a WHERE n.nspname = $1 AND a.grantee <> 0"
    " AND a.grantee NOT IN (n.nspowner, (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2))"
    " UNION SELECT DISTINCT a.grantee::pg_catalog.regrole::text FROM pg_catalog.pg_proc p"
    " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace, pg_catalog.aclexplode(p.proacl) a"
    " WHERE n.nspname = $1 AND p.proname = $3 AND a.grantee <> 0"
    " AND a.grantee NOT IN (p.proowner, (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2))";

Status Validate(const Endpoint& endpoint, const AuthQuerySetup& setup) {
  if (setup.role.empty() || setup.schema.empty() || setup.function.empty()) {
    return Fail(ErrorCode::kInvalid, Where(endpoint) +
                                         ": authQuery setup needs a role, a schema "
                                         "and a function name");
  }
  return {};
}

Endpoint InDatabase(const Endpoint& endpoint, const std::string& dbname) {
  Endpoint in = endpoint;
  in.dbname = dbname;
  return in;
}

// One write, with `statements_left` writes (this one and a COMMIT included) still to come in this
// call: bounded by leader election's fence first (BoundWrites).
Status Write(Session& session, const WriteWindow& window, int statements_left,
             std::string_view what, const std::string& sql) {
  if (Status fenced = BoundWrites(session, window, statements_left); !fenced) return fenced;
  auto done = session.Query(what, sql);
  if (!done) return std::unexpected(done.error());
  return {};
}

// The schema and function in one database, in one transaction. Returns whether it wrote.
Result<bool> EnsureInDatabase(const Endpoint& endpoint, const AuthQuerySetup& setup,
                              const WriteWindow& window) {
  auto session = Session::Open(endpoint);
  if (!session) return std::unexpected(session.error());
  auto role = session->QuoteLiteral(setup.role);
  auto role_id = session->QuoteIdentifier(setup.role);
  auto schema = session->QuoteIdentifier(setup.schema);
  auto function = session->QuoteIdentifier(setup.function);
  Result<std::string> gate = std::string();
  if (!setup.member_of.empty()) gate = session->QuoteLiteral(setup.member_of);
  for (const auto* quoted : {&role, &role_id, &schema, &function, &gate}) {
    if (!*quoted) return std::unexpected(quoted->error());
  }
  const std::string body = LookupBody(*role, *gate);
  auto state = session->Query("reading the lookup function's state", kStateSql,
                              {setup.schema, setup.function, setup.role, body, kSearchPath});
  if (!state) return std::unexpected(state.error());
  if (!state->empty() && state->front().at(0) == "t") return false;

  const std::string fn = *schema + "." + *function + "(text)";
  std::vector<std::pair<std::string, std::string>> statements = {
      {"BEGIN", "BEGIN"},
      {"CREATE SCHEMA", "CREATE SCHEMA IF NOT EXISTS " + *schema},
      {"ALTER SCHEMA OWNER", "ALTER SCHEMA " + *schema + " OWNER TO CURRENT_USER"},
      {"REVOKE ON SCHEMA", "REVOKE ALL ON SCHEMA " + *schema + " FROM PUBLIC"},
      {"GRANT USAGE", "GRANT USAGE ON SCHEMA " + *schema + " TO " + *role_id},
      // Dropped and created rather than replaced: CREATE OR REPLACE cannot change a return type.
      {"DROP FUNCTION", "DROP FUNCTION IF EXISTS " + fn},
      {"CREATE FUNCTION",
       "CREATE FUNCTION " + fn + " RETURNS TABLE (usename name, passwd text)" +
           " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $pk$" +
           body + "$pk$"},
      {"ALTER FUNCTION OWNER", "ALTER FUNCTION " + fn + " OWNER TO CURRENT_USER"},
      {"REVOKE ON FUNCTION", "REVOKE ALL ON FUNCTION " + fn + " FROM PUBLIC"},
      {"GRANT EXECUTE", "GRANT EXECUTE ON FUNCTION " + fn + " TO " + *role_id},
  };
  // The REVOKEs from other roles come after these; each asks the fence again.
  int left = static_cast<int>(statements.size()) + 1;
  for (const auto& [what, sql] : statements) {
    if (Status done = Write(*session, window, left--, what, sql); !done) {
      return std::unexpected(done.error());
    }
  }
  auto others = session->Query("reading other grantees", kOtherGranteesSql,
                               {setup.schema, setup.role, setup.function});
  if (!others) return std::unexpected(others.error());
  for (const auto& row : *others) {
    const std::string grantee = row.at(0).value_or("");  // regrole text: already quoted
    if (grantee.empty() || grantee == "-") continue;
    for (const std::string& sql : {"REVOKE ALL ON SCHEMA " + *schema + " FROM " + grantee,
                                   "REVOKE ALL ON FUNCTION " + fn + " FROM " + grantee}) {
      if (Status done = Write(*session, window, 2, "REVOKE from another role", sql); !done) {
        return std::unexpected(done.error());
      }
    }
  }
  if (Status done = Write(*session, window, 1, "COMMIT", "COMMIT"); !done) {
    return std::unexpected(done.error());
  }
  return true;
}

// The auth role: created, or its attributes and password repaired. `admin` is the session on the
// endpoint's own database.
Status EnsureRole(Session& admin, const Endpoint& endpoint, const AuthQuerySetup& setup,
                  const WriteWindow& window, AuthQueryChanges& changes) {
  auto quoted = admin.QuoteIdentifier(setup.role);
  if (!quoted) return std::unexpected(quoted.error());
  auto rows = admin.Query("reading the auth role", kRoleSql, {setup.role});
  if (!rows) return std::unexpected(rows.error());
  auto set_password = [&](const std::string& prefix) -> Status {
    auto verifier = admin.ScramVerifier(setup.role, setup.password);
    if (!verifier) return std::unexpected(verifier.error());
    auto literal = admin.QuoteLiteral(*verifier);
    if (!literal) return std::unexpected(literal.error());
    return Write(admin, window, 1, prefix, prefix + " PASSWORD " + *literal);
  };
  if (rows->empty()) {
    Status created = set_password("CREATE ROLE " + *quoted + " " + kRoleAttributes);
    if (!created) return created;
    changes.role_created = changes.password_set = true;
    return {};
  }
  if (rows->front().at(0) != "t") {
    Status altered = Write(admin, window, 1, "ALTER ROLE attributes",
                           "ALTER ROLE " + *quoted + " " + kRoleAttributes);
    if (!altered) return altered;
    changes.role_altered = true;
  }
  // Whether the password is the one given: a login says it without reading pg_authid's verifier.
  Endpoint as_auth = endpoint;
  as_auth.user = setup.role;
  as_auth.password = setup.password;
  auto login = Session::Open(as_auth);
  if (login) return {};
  if (login.error().code != ErrorCode::kUnauthorized) return std::unexpected(login.error());
  Status set = set_password("ALTER ROLE " + *quoted);
  if (!set) return set;
  changes.password_set = true;
  return {};
}

// The gate role, created NOLOGIN when missing; one that exists is left as its owner made it.
Status EnsureGate(Session& admin, const AuthQuerySetup& setup, const WriteWindow& window,
                  AuthQueryChanges& changes) {
  if (setup.member_of.empty()) return {};
  auto rows =
      admin.Query("reading the memberOf role",
                  "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", {setup.member_of});
  if (!rows) return std::unexpected(rows.error());
  if (!rows->empty()) return {};
  auto quoted = admin.QuoteIdentifier(setup.member_of);
  if (!quoted) return std::unexpected(quoted.error());
  Status created =
      Write(admin, window, 1, "CREATE ROLE (memberOf)", "CREATE ROLE " + *quoted + " NOLOGIN");
  if (!created) return created;
  changes.gate_created = true;
  return {};
}

}  // namespace

Result<AuthQueryChanges> LibpqClient::EnsureAuthQuery(const Endpoint& endpoint,
                                                      const AuthQuerySetup& setup) {
  if (Status valid = Validate(endpoint, setup); !valid) return std::unexpected(valid.error());
  if (setup.password.empty()) {
    return Fail(ErrorCode::kInvalid, Where(endpoint) + ": the auth role's password is empty");
  }
  auto admin = Session::Open(endpoint);
  if (!admin) return std::unexpected(admin.error());
  // Everything that could refuse is checked before the first write.
  auto me = admin->Query("checking the credentials' privileges",
                         "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user");
  if (!me) return std::unexpected(me.error());
  if (me->empty() || me->front().at(0) != "t") {
    return Fail(ErrorCode::kUnauthorized,
                admin->where() +
                    ": authQuery needs SUPERUSER for the credentials' role: the lookup function "
                    "runs as its owner and reads pg_authid, which only a superuser may read");
  }
  for (const std::string& db : setup.databases) {
    auto found = admin->Query("looking the database up",
                              "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1 AND "
                              "datallowconn",
                              {db});
    if (!found) return std::unexpected(found.error());
    if (found->empty()) {
      return Fail(ErrorCode::kNotFound, admin->where() + ": database \"" + db +
                                            "\" does not exist or allows no connections");
    }
  }
  AuthQueryChanges changes;
  if (Status role = EnsureRole(*admin, endpoint, setup, window_, changes); !role) {
    return std::unexpected(role.error());
  }
  // Before the functions that name it: a lookup naming a missing gate would let nobody in.
  if (Status gate = EnsureGate(*admin, setup, window_, changes); !gate) {
    return std::unexpected(gate.error());
  }
  for (const std::string& db : setup.databases) {
    auto wrote = EnsureInDatabase(InDatabase(endpoint, db), setup, window_);
    if (!wrote) return std::unexpected(wrote.error());
    if (*wrote) changes.databases.push_back(db);
  }
  return changes;
}

Status LibpqClient::RemoveAuthQuery(const Endpoint& endpoint, const AuthQuerySetup& setup,
                                    bool drop_role) {
  if (Status valid = Validate(endpoint, setup); !valid) return valid;
  auto admin = Session::Open(endpoint);
  if (!admin) return std::unexpected(admin.error());
  for (const std::string& db : setup.databases) {
    auto found = admin->Query("looking the database up",
                              "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {db});
    if (!found) return std::unexpected(found.error());
    if (found->empty()) continue;  // gone with everything in it
    auto session = Session::Open(InDatabase(endpoint, db));
    if (!session) return std::unexpected(session.error());
    auto schema = session->QuoteIdentifier(setup.schema);
    auto function = session->QuoteIdentifier(setup.function);
    if (!schema) return std::unexpected(schema.error());
    if (!function) return std::unexpected(function.error());
    // RESTRICT: a schema someone else put objects in stays, and the error says so.
    for (const auto& [what, sql] : std::vector<std::pair<std::string, std::string>>{
             {"DROP FUNCTION", "DROP FUNCTION IF EXISTS " + *schema + "." + *function + "(text)"},
             {"DROP SCHEMA", "DROP SCHEMA IF EXISTS " + *schema + " RESTRICT"}}) {
      if (Status done = Write(*session, window_, 1, what, sql); !done) return done;
    }
  }
  if (!drop_role) return {};
  auto role = admin->QuoteIdentifier(setup.role);
  if (!role) return std::unexpected(role.error());
  return Write(*admin, window_, 1, "DROP ROLE", "DROP ROLE IF EXISTS " + *role);
}

}  // namespace poolkeeper::postgres
