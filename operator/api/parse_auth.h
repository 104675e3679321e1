// spec.authentication of a ConnectionPool and the rules authQuery mode adds to the rest of the
// spec. Internal to the api module (parse.cc calls it).
#pragma once

#include <vector>

#include "api/connection_pool.h"
#include "api/field_reader.h"

namespace poolkeeper::api {

// spec.authentication.mode: userlist (the default) or authQuery.
void ReadAuthentication(FieldReader& spec, AuthMode& mode, std::vector<FieldIssue>& issues);

// What authQuery needs beyond the fields themselves: a PostgresServer, whose credentials the
// operator sets the lookup up with, and a cap on every database, since any role the lookup returns
// can open a pool of its own there: only max_db_connections bounds a database's connections.
void CheckAuthQuery(const ConnectionPool& pool, std::vector<FieldIssue>& issues);

}  // namespace poolkeeper::api
