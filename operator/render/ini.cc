// pgbouncer.ini from a validated ConnectionPool and its PoolPlan.
//
// The file is deterministic (databases and users sorted by name, [pgbouncer] keys sorted) so the
// config hash only moves when the content does, and version-aware: every [pgbouncer] key is gated
// by the settings table for the image's PgBouncer version, because 1.18 refuses to start on a key
// it does not know. Caps are never rendered as 0, which PgBouncer reads as "unlimited".
#include <algorithm>
#include <map>
#include <vector>

#include "api/pgbouncer_settings.h"
#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace internal {

std::string IniName(std::string_view name) {
  // PgBouncer's ini parser (libusual parse_ini_file) reads a key as [A-Za-z0-9_.*-]+; checked
  // against the real 1.18: `my-db = ...` and `my.db = ...` load, `"my-db" = ...` is a syntax
  // error that stops pgbouncer from starting, whatever the documentation says about quoting.
  bool bare = !name.empty() && std::ranges::all_of(name, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
  if (bare) return std::string(name);
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::string ConnValue(std::string_view value) {
  bool plain = !value.empty() && std::ranges::all_of(value, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == ':' || c == '@' || c == '$';
  });
  if (plain) return std::string(value);
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'') quoted.push_back('\'');
    quoted.push_back(c);
  }
  quoted.push_back('\'');
  return quoted;
}

}  // namespace internal

namespace {

using internal::ConnValue;
using internal::IniName;

// The cap pgbouncer enforces for one database: the plan's (declared or derived) value, else the
// spec's when the plan does not list the database. Never 0: 0 would mean "unlimited".
std::optional<int> DatabaseCap(const api::ConnectionPool& pool, const budget::PoolPlan& plan,
                               const api::DatabaseSpec& db) {
  for (const auto& planned : plan.databases) {
    if (planned.name == db.name) {
      if (planned.max_db_connections > 0) return planned.max_db_connections;
      break;
    }
  }
  auto declared = pool.MaxDbConnections(db);
  if (declared && *declared > 0) return declared;
  return std::nullopt;
}

std::string DatabaseLine(const api::ConnectionPool& pool, const budget::PoolPlan& plan,
                         const api::DatabaseSpec& db) {
  const auto& spec = pool.spec;
  std::string line = IniName(db.name) + " = host=" + ConnValue(spec.server.host) +
                     " port=" + std::to_string(spec.server.port) +
                     " dbname=" + ConnValue(db.dbname.empty() ? db.name : db.dbname);
  if (db.pool_size) line += " pool_size=" + std::to_string(*db.pool_size);
  if (db.reserve_pool_size) {
    // 1.24 renamed the per-database key; the old name stays an alias there, but 1.18-1.23 only
    // know `reserve_pool`.
    bool new_name = spec.pooler.pgbouncer_version >= api::PgBouncerVersion{1, 24};
    line += new_name ? " reserve_pool_size=" : " reserve_pool=";
    line += std::to_string(*db.reserve_pool_size);
  }
  if (auto cap = DatabaseCap(pool, plan, db)) {
    line += " max_db_connections=" + std::to_string(*cap);
  }
  if (db.pool_mode) line += " pool_mode=" + std::string(api::PoolModeName(*db.pool_mode));
  if (db.min_pool_size) line += " min_pool_size=" + std::to_string(*db.min_pool_size);
  return line;
}

// spec.tls: modes and protocols from the spec, files at the fixed paths pod.cc mounts. Without a
// client block nothing is rendered and PgBouncer's default (client_tls_sslmode disable) holds.
void AddTlsSettings(const api::TlsSpec& tls, std::map<std::string, std::string>& keys) {
  if (const auto& client = tls.client) {
    const std::string dir = std::string(kClientTlsDir) + "/";
    keys["client_tls_sslmode"] = api::SslModeName(client->ssl_mode);
    keys["client_tls_cert_file"] = dir + kTlsCertFile;
    keys["client_tls_key_file"] = dir + kTlsKeyFile;
    // PgBouncer (libusual's TLS) loads a CA for its client side even when it asks clients for no
    // certificate, and without client_tls_ca_file it loads the system bundle: on an image with
    // none (no ca-certificates) it exits at start ("failed to load CA"). Below verify-ca the
    // pool's own certificate stands in: a readable PEM that verifies nothing, as nothing is asked.
    keys["client_tls_ca_file"] =
        dir + (api::SslModeVerifies(client->ssl_mode) ? kCaFile : kTlsCertFile);
    keys["client_tls_protocols"] =
        client->min_version == api::TlsVersion::kTls13 ? "tlsv1.3" : "tlsv1.2,tlsv1.3";
  }
  if (const auto& server = tls.server) {
    keys["server_tls_sslmode"] = api::SslModeName(server->ssl_mode);
    if (server->ca_ref) keys["server_tls_ca_file"] = std::string(kServerCaDir) + "/" + kCaFile;
  }
}

// The [pgbouncer] keys poolkeeper owns, from the spec and the pod layout (render.h).
std::map<std::string, std::string> ManagedSettings(const api::ConnectionPool& pool) {
  const auto& pooler = pool.spec.pooler;
  std::map<std::string, std::string> keys = {
      // The pod's own addresses; the local test kubelet rewrites it to the pod IP.
      {"listen_addr", "*"},
      {"listen_port", std::to_string(pooler.port)},
      // No Unix socket unless the pooler agent needs one (below): the root filesystem is
      // read-only.
      {"unix_socket_dir", ""},
      {"auth_type", "scram-sha-256"},
      {"auth_file", std::string(kAuthDir) + "/" + kUserlistFile},
      {"pool_mode", std::string(api::PoolModeName(pooler.pool_mode))},
      {"max_client_conn", std::to_string(pooler.max_client_conn)},
      {"default_pool_size", std::to_string(pooler.default_pool_size)},
      {"min_pool_size", std::to_string(pooler.min_pool_size)},
      {"reserve_pool_size", std::to_string(pooler.reserve_pool_size)},
      {"reserve_pool_timeout", std::to_string(pooler.reserve_pool_timeout_seconds)},
  };
  if (!pooler.agent_image.empty()) {
    // The pooler agent's console: a socket in the emptyDir it shares with pgbouncer, and its user.
    keys["unix_socket_dir"] = kSocketDir;
    keys["admin_users"] = api::kAgentUser;
  }
  if (pool.spec.auth_mode == api::AuthMode::kAuthQuery) {
    // The userlist then holds only the auth user; every other role's verifier comes from the
    // server, and PgBouncer logs in to the server with what the client's SCRAM exchange proved.
    keys["auth_user"] = api::kAuthUser;
    keys["auth_query"] = api::kAuthQuery;
  }
  if (pooler.max_db_connections && *pooler.max_db_connections > 0) {
    keys["max_db_connections"] = std::to_string(*pooler.max_db_connections);
  }
  if (pooler.max_user_connections && *pooler.max_user_connections > 0) {
    keys["max_user_connections"] = std::to_string(*pooler.max_user_connections);
  }
  const api::Timeouts& t = pooler.timeouts;
  const std::pair<const char*, const std::optional<int>*> timeouts[] = {
      {"server_idle_timeout", &t.server_idle_timeout},
      {"server_lifetime", &t.server_lifetime},
      {"server_connect_timeout", &t.server_connect_timeout},
      {"server_login_retry", &t.server_login_retry},
      {"query_timeout", &t.query_timeout},
      {"query_wait_timeout", &t.query_wait_timeout},
      {"client_idle_timeout", &t.client_idle_timeout},
      {"client_login_timeout", &t.client_login_timeout},
      {"idle_transaction_timeout", &t.idle_transaction_timeout},
  };
  for (const auto& [key, value] : timeouts) {
    if (*value) keys[key] = std::to_string(**value);
  }
  AddTlsSettings(pool.spec.tls, keys);
  return keys;
}

bool KnownTo(std::string_view key, api::PgBouncerVersion version) {
  const api::SettingInfo* setting = api::FindSetting(key);
  return setting && api::SettingExistsIn(*setting, version);
}

void AppendSetting(std::string& out, const std::string& key, const std::string& value) {
  out += key;
  out += value.empty() ? " =\n" : " = " + value + "\n";
}

}  // namespace

std::string RenderIni(const api::ConnectionPool& pool, const budget::PoolPlan& plan) {
  const auto& spec = pool.spec;
  const api::PgBouncerVersion version = spec.pooler.pgbouncer_version;
  std::string out = "# Rendered by poolkeeper for " + pool.metadata.namespace_ + "/" +
                    pool.metadata.name + "; do not edit\n# PgBouncer " + version.ToString() +
                    "\n\n[databases]\n";

  std::vector<const api::DatabaseSpec*> databases;
  for (const auto& db : spec.databases) databases.push_back(&db);
  std::ranges::sort(databases, {}, &api::DatabaseSpec::name);
  for (const auto* db : databases) out += DatabaseLine(pool, plan, *db) + "\n";

  // [users] only for users with their own pool mode or cap; the pooler-wide cap is a [pgbouncer]
  // setting. Both keys exist in [users] since long before 1.18.
  std::vector<const api::UserSpec*> users;
  for (const auto& user : spec.users) {
    if (user.pool_mode || (user.max_user_connections && *user.max_user_connections > 0)) {
      users.push_back(&user);
    }
  }
  std::ranges::sort(users, {}, &api::UserSpec::name);
  if (!users.empty()) {
    out += "\n[users]\n";
    for (const auto* user : users) {
      std::string line = IniName(user->name) + " =";
      if (user->pool_mode) line += " pool_mode=" + std::string(api::PoolModeName(*user->pool_mode));
      if (user->max_user_connections && *user->max_user_connections > 0) {
        line += " max_user_connections=" + std::to_string(*user->max_user_connections);
      }
      out += line + "\n";
    }
  }

  out += "\n[pgbouncer]\n";
  for (const auto& [key, value] : ManagedSettings(pool)) {
    // A managed key the version lacks is skipped, never rendered (all exist in 1.18 today; the
    // gate keeps that true as the table grows).
    if (KnownTo(key, version)) AppendSetting(out, key, value);
  }
  if (!spec.pooler.parameters.empty()) {
    out += "# spec.pooler.parameters\n";
    for (const auto& [key, value] : spec.pooler.parameters) {
      // Validation already ran CheckParameter; running it again keeps a hand-built pool from
      // writing a managed, refused, unknown or unsafe key. Only known (hence safe) names are
      // mentioned in the comment.
      if (auto problem = api::CheckParameter(key, value, version)) {
        if (api::FindSetting(key)) out += "# skipped " + key + ": " + *problem + "\n";
        continue;
      }
      AppendSetting(out, key, value);
    }
  }
  return out;
}

}  // namespace poolkeeper::render
