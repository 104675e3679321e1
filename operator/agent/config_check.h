// The agent's confirmation that PgBouncer runs the rendered configuration: the [pgbouncer] keys of
// pgbouncer.ini against SHOW CONFIG after a RELOAD. PgBouncer answers RELOAD with OK even when it
// applied a file only partly (checked on 1.18), and keeps settings it cannot change at run time
// (listen_port, unix_socket_dir: SHOW CONFIG's `changeable` column says no), so the answer to
// RELOAD proves nothing; the values it reports do.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "postgres/admin_console.h"

namespace poolkeeper::agent {

// The key = value pairs of the ini's [pgbouncer] section (keys lower-cased, values trimmed).
std::map<std::string, std::string> PgBouncerSection(const std::string& ini);

// One key whose running value differs from the file's.
struct Mismatch {
  std::string key;
  std::string want;        // the ini's value
  std::string running;     // SHOW CONFIG's
  bool changeable = true;  // false: only a restart applies it
  bool operator==(const Mismatch&) const = default;
};

// The keys the ini sets that SHOW CONFIG reports with another value. Values compare equal as
// text, as numbers (30 and 30.0), as booleans (1/on/true/yes) or as lists (spaces around commas
// ignored). Keys SHOW CONFIG does not report are not compared.
std::vector<Mismatch> CompareConfig(const std::map<std::string, std::string>& ini,
                                    const postgres::ConsoleTable& show_config);

}  // namespace poolkeeper::agent
