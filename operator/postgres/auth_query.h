// What authQuery mode needs on a PostgreSQL server, set up and taken down by the operator with a
// PostgresServer's admin credentials (the ServerClient calls EnsureAuthQuery / RemoveAuthQuery,
// observer.h):
//
// - an auth role: LOGIN NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS,
//   with a password the operator generates (set as a SCRAM verifier computed on this side, so no
//   plaintext reaches the server's statement log), and no other right than EXECUTE on the lookup;
// - in every database a pool serves (PgBouncer runs auth_query in the client's database), a schema
//   owned by the admin with USAGE for the auth role only, and the lookup function in it:
//   SECURITY DEFINER, owned by the admin, search_path fixed to pg_catalog, EXECUTE revoked from
//   PUBLIC and granted to the auth role only. It returns (usename, passwd) from pg_shadow (login
//   roles only) for a role that is not a superuser, not the auth role, not a pg_* role, and whose
//   password has not expired; for anyone else no row, so PgBouncer refuses the login.
// - with a gate (`member_of`), the function returns a row only for members of that role (direct or
//   inherited: pg_has_role MEMBER, read when the client logs in, so a GRANT or REVOKE takes effect
//   at the next login), and the gate role is created NOLOGIN when missing. The gate's name is part
//   of the function's body: changing or clearing the gate re-creates the function. A gate dropped
//   by hand afterwards lets nobody in (the lookup finds no such role) rather than everyone.
//   The operator never drops the gate: it holds the DBA's grants.
//
// Privileges, as measured on PostgreSQL 15 (tests/postgres/auth_query_test.cc): the admin must be
// a superuser. The function runs as its owner and reads pg_authid (through pg_shadow), which only
// a superuser may read; CREATEROLE alone could create the role but not a function that works.
// EnsureAuthQuery checks this before it writes anything and fails with kUnauthorized naming it.
#pragma once

#include <string>
#include <vector>

namespace poolkeeper::postgres {

struct AuthQuerySetup {
  std::string role;      // e.g. "poolkeeper_auth"
  std::string password;  // never logged, never in a message
  std::string schema;    // e.g. "poolkeeper"
  std::string function;  // e.g. "lookup": called as <schema>.<function>(text)
  std::vector<std::string> databases;
  std::string member_of;  // the gate role; empty: no gate
};

// What EnsureAuthQuery changed: all false and empty when everything already was as wanted.
struct AuthQueryChanges {
  bool role_created = false;
  bool role_altered = false;           // attributes brought back to the least-privilege set
  bool password_set = false;           // the role did not log in with the given password
  bool gate_created = false;           // the member_of role did not exist
  std::vector<std::string> databases;  // where the schema or function was (re)created
  bool Any() const {
    return role_created || role_altered || password_set || gate_created || !databases.empty();
  }
};

}  // namespace poolkeeper::postgres
