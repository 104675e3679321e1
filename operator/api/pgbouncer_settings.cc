// The [pgbouncer] settings table, 1.18 through 1.25, and the check every user-supplied parameter
// goes through before it can reach pgbouncer.ini.
//
// Where the table comes from (so a reviewer can re-check it):
//  - 1.18: `SHOW CONFIG` of the Debian bookworm pgbouncer 1.18.0 (84 keys, exactly the keys below
//    whose `since` is 1.18), and its pgbouncer(5) man page.
//  - 1.25: the `bouncer_params` table of src/main.c in pgbouncer's repository at 1.25.x. No key of
//    1.18 was removed up to 1.25; 14 were added, each dated by the changelog
//    (https://www.pgbouncer.org/changelog.html):
//      1.19 auth_dbname, cancel_wait_timeout, peer_id (peering)
//      1.20 track_extra_parameters
//      1.21 max_prepared_statements
//      1.23 auth_ident_file (user name maps, pgbouncer#996)
//      1.24 max_db_client_connections, max_user_client_connections
//      1.25 auth_ldap_options, client_tls13_ciphers, query_wait_notify, scram_iterations,
//           server_tls13_ciphers, transaction_timeout
//  - service_name exists only in Windows builds, so it is not a setting here.
//
// Apply: the keys marked Restart(...) are those SHOW CONFIG of the Debian 1.18.0 reports with
// `changeable = no` (measured: disable_pqexec, job_name, listen_addr, listen_backlog, listen_port,
// pidfile, pkt_buf, resolv_conf, so_reuseport, unix_socket_dir, unix_socket_group,
// unix_socket_mode, user), plus peer_id (1.19+, read at start: pgbouncer(5) "peering"). Every other
// key, the [databases] and [users] sections and the auth_file's content, PgBouncer applies on
// RELOAD.
//
// Access: kManaged keys are rendered by poolkeeper from the spec or its pod layout; kRefused keys
// would move files the read-only pod does not have, change authentication, or let something change
// settings around the budget; everything else is tuning and logging a user may set.
#include "api/pgbouncer_settings.h"

#include <algorithm>
#include <array>

namespace poolkeeper::api {
namespace {

constexpr PgBouncerVersion kV118{1, 18};
constexpr PgBouncerVersion kV119{1, 19};
constexpr PgBouncerVersion kV120{1, 20};
constexpr PgBouncerVersion kV121{1, 21};
constexpr PgBouncerVersion kV123{1, 23};
constexpr PgBouncerVersion kV124{1, 24};
constexpr PgBouncerVersion kV125{1, 25};

using enum SettingType;

constexpr SettingInfo Managed(std::string_view name, SettingType type, std::string_view instead,
                              PgBouncerVersion since = kV118) {
  return {name, since, std::nullopt, type, SettingAccess::kManaged, {}, instead};
}
constexpr SettingInfo Allowed(std::string_view name, SettingType type,
                              PgBouncerVersion since = kV118, std::string_view values = {}) {
  return {name, since, std::nullopt, type, SettingAccess::kAllowed, values, {}};
}
constexpr SettingInfo Refused(std::string_view name, SettingType type, std::string_view why,
                              PgBouncerVersion since = kV118) {
  return {name, since, std::nullopt, type, SettingAccess::kRefused, {}, why};
}

// A key only a new process applies (see Apply above).
constexpr SettingInfo Restart(SettingInfo setting) {
  setting.apply = SettingApply::kRestart;
  return setting;
}

constexpr std::string_view kAuth =
    "poolkeeper sets up authentication (auth_type scram-sha-256 with the userlist built from "
    "spec.users, or auth_user and auth_query in spec.authentication.mode authQuery)";
constexpr std::string_view kClientTlsFiles =
    "spec.tls.client.certificateSecretRef (the Secret's tls.crt, tls.key and ca.crt)";
constexpr std::string_view kServerTlsCa = "spec.tls.server.caRef";
constexpr std::string_view kServerClientCert =
    "poolkeeper does not mount a client certificate for logging in to the server";
constexpr std::string_view kNoFile = "it names a file the pod does not have";
constexpr std::string_view kStderr = "the pod logs to stderr";

// One line per key, sorted by name (FindSetting relies on it; a test checks it).
constexpr auto kSettings = std::to_array<SettingInfo>({
    Refused("admin_users", kList,
            "the admin console can SET settings, RELOAD, PAUSE and SHUTDOWN at run time, around "
            "the connection budget and the rollout; its only user is poolkeeper's pooler agent"),
    Allowed("application_name_add_host", kBool),
    Managed("auth_dbname", kString, kAuth, kV119),
    Managed("auth_file", kString,
            "poolkeeper's layout (the userlist Secret in /etc/pgbouncer-auth)"),
    Refused("auth_hba_file", kString, kAuth),
    Refused("auth_ident_file", kString, kAuth, kV123),
    Refused("auth_ldap_options", kString, kAuth, kV125),
    Managed("auth_query", kString, kAuth),
    Managed("auth_type", kEnum, kAuth),
    Managed("auth_user", kString, kAuth),
    Allowed("autodb_idle_timeout", kInt),
    Allowed("cancel_wait_timeout", kInt, kV119),
    Managed("client_idle_timeout", kInt, "spec.pooler.clientIdleTimeoutSeconds"),
    Managed("client_login_timeout", kInt, "spec.pooler.clientLoginTimeoutSeconds"),
    Allowed("client_tls13_ciphers", kString, kV125),
    Managed("client_tls_ca_file", kString, kClientTlsFiles),
    Managed("client_tls_cert_file", kString, kClientTlsFiles),
    Allowed("client_tls_ciphers", kString),
    Allowed("client_tls_dheparams", kString),
    Allowed("client_tls_ecdhcurve", kString),
    Managed("client_tls_key_file", kString, kClientTlsFiles),
    Managed("client_tls_protocols", kString, "spec.tls.client.minProtocolVersion"),
    Managed("client_tls_sslmode", kEnum, "spec.tls.client.sslMode"),
    Refused("conffile", kString, "the pod always runs /etc/pgbouncer/pgbouncer.ini"),
    Managed("default_pool_size", kInt, "spec.pooler.defaultPoolSize"),
    Restart(Allowed("disable_pqexec", kBool)),
    Allowed("dns_max_ttl", kInt),
    Allowed("dns_nxdomain_ttl", kInt),
    Allowed("dns_zone_check_period", kInt),
    Managed("idle_transaction_timeout", kInt, "spec.pooler.idleTransactionTimeoutSeconds"),
    Allowed("ignore_startup_parameters", kList),
    Restart(Refused("job_name", kString, "it only names a Windows service")),
    Restart(Managed("listen_addr", kList, "poolkeeper's layout (every address of the pod)")),
    Restart(Allowed("listen_backlog", kInt)),
    Restart(Managed("listen_port", kInt, "spec.pooler.port")),
    Allowed("log_connections", kBool),
    Allowed("log_disconnections", kBool),
    Allowed("log_pooler_errors", kBool),
    Allowed("log_stats", kBool),
    Refused("logfile", kString, "the pod logs to stderr and its root filesystem is read-only"),
    Managed("max_client_conn", kInt, "spec.pooler.maxClientConn"),
    Allowed("max_db_client_connections", kInt, kV124),
    Managed("max_db_connections", kInt, "spec.pooler.maxDbConnections"),
    Allowed("max_packet_size", kInt),
    Allowed("max_prepared_statements", kInt, kV121),
    Allowed("max_user_client_connections", kInt, kV124),
    Managed("max_user_connections", kInt, "spec.pooler.maxUserConnections"),
    Managed("min_pool_size", kInt, "spec.pooler.minPoolSize"),
    Restart(Refused(
        "peer_id", kInt,
        "every pod reads the same file, so all replicas would share one peer_id; poolkeeper "
        "does not configure peering",
        kV119)),
    Restart(Refused("pidfile", kString,
                    "pgbouncer runs in the foreground and the pod's root filesystem is read-only")),
    Restart(Allowed("pkt_buf", kInt)),
    Managed("pool_mode", kEnum, "spec.pooler.poolMode"),
    Managed("query_timeout", kInt, "spec.pooler.queryTimeoutSeconds"),
    Allowed("query_wait_notify", kInt, kV125),
    Managed("query_wait_timeout", kInt, "spec.pooler.queryWaitTimeoutSeconds"),
    Managed("reserve_pool_size", kInt, "spec.pooler.reservePoolSize"),
    Managed("reserve_pool_timeout", kInt, "spec.pooler.reservePoolTimeoutSeconds"),
    Restart(Refused("resolv_conf", kString, kNoFile)),
    Allowed("sbuf_loopcnt", kInt),
    Allowed("scram_iterations", kInt, kV125),
    Allowed("server_check_delay", kInt),
    Allowed("server_check_query", kString),
    Managed("server_connect_timeout", kInt, "spec.pooler.serverConnectTimeoutSeconds"),
    Allowed("server_fast_close", kBool),
    Managed("server_idle_timeout", kInt, "spec.pooler.serverIdleTimeoutSeconds"),
    Managed("server_lifetime", kInt, "spec.pooler.serverLifetimeSeconds"),
    Managed("server_login_retry", kInt, "spec.pooler.serverLoginRetrySeconds"),
    Allowed("server_reset_query", kString),
    Allowed("server_reset_query_always", kBool),
    Allowed("server_round_robin", kBool),
    Allowed("server_tls13_ciphers", kString, kV125),
    Managed("server_tls_ca_file", kString, kServerTlsCa),
    Refused("server_tls_cert_file", kString, kServerClientCert),
    Allowed("server_tls_ciphers", kString),
    Refused("server_tls_key_file", kString, kServerClientCert),
    Allowed("server_tls_protocols", kString),
    Managed("server_tls_sslmode", kEnum, "spec.tls.server.sslMode"),
    Restart(Refused("so_reuseport", kBool, "each pod runs one pgbouncer: nothing shares its port")),
    Allowed("stats_period", kInt),
    Allowed("stats_users", kList),
    Allowed("suspend_timeout", kInt),
    Refused("syslog", kBool, kStderr),
    Refused("syslog_facility", kString, kStderr),
    Refused("syslog_ident", kString, kStderr),
    Allowed("tcp_defer_accept", kInt),
    Allowed("tcp_keepalive", kBool),
    Allowed("tcp_keepcnt", kInt),
    Allowed("tcp_keepidle", kInt),
    Allowed("tcp_keepintvl", kInt),
    Allowed("tcp_socket_buffer", kInt),
    Allowed("tcp_user_timeout", kInt),
    Allowed("track_extra_parameters", kList, kV120),
    Allowed("transaction_timeout", kInt, kV125),
    Restart(
        Managed("unix_socket_dir", kString,
                "poolkeeper's layout (the pooler agent's socket in a shared emptyDir, or none)")),
    Restart(Refused("unix_socket_group", kString, "the pod has no Unix socket")),
    Restart(Refused("unix_socket_mode", kInt, "the pod has no Unix socket")),
    Restart(Refused("user", kString, "the pod already runs as a non-root user")),
    Allowed("verbose", kInt),
});

// Keys of the [databases] and [users] sections that users mistake for [pgbouncer] settings.
struct SectionHint {
  std::string_view key;
  std::string_view instead;
};
constexpr SectionHint kSectionHints[] = {
    {"pool_size", "spec.databases[].poolSize"},
    {"reserve_pool", "spec.databases[].reservePoolSize"},
    {"dbname", "spec.databases[].dbname"},
    {"host", "spec.server.host"},
    {"port", "spec.server.port"},
};

constexpr size_t kMaxValueLength = 1024;

// Characters that could end the value, start a new line or setting, or be read differently by
// pgbouncer's ini parser. Conservative: printable ASCII only, no quotes, ';' or '='.
std::optional<std::string> CheckSafeText(std::string_view value) {
  if (value.size() > kMaxValueLength) {
    return "must be at most " + std::to_string(kMaxValueLength) + " characters";
  }
  for (char c : value) {
    if (c == '\n' || c == '\r') return "must not contain a line break (it would start a new line)";
    if (c == '\0') return "must not contain a NUL byte";
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "must not contain control characters";
    if (u >= 0x80) return "must be printable ASCII";
    if (c == ';' || c == '=') {
      return "must not contain ';' or '=' (they could start a comment or another setting)";
    }
    if (c == '"' || c == '\'') return "must not contain quotes";
  }
  if (!value.empty() && (value.front() == ' ' || value.back() == ' ')) {
    return "must not start or end with whitespace";
  }
  return std::nullopt;
}

bool IsListItemChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-' || c == '@' || c == '$';
}

// What pgbouncer's loader accepts for the type, narrowed: integers are decimal without leading
// zeros (pgbouncer reads "010" as octal 8), booleans are 0 or 1 (pgbouncer keeps them as ints).
std::optional<std::string> CheckType(const SettingInfo& setting, std::string_view value) {
  switch (setting.type) {
    case kInt: {
      bool digits = !value.empty() && value.size() <= 10 &&
                    std::ranges::all_of(value, [](char c) { return c >= '0' && c <= '9'; }) &&
                    (value.size() == 1 || value.front() != '0');
      if (!digits || std::stoll(std::string(value)) > 2147483647) {
        return "must be a non-negative decimal integer of at most 2147483647";
      }
      return std::nullopt;
    }
    case kBool:
      if (value != "0" && value != "1") return "must be 0 or 1";
      return std::nullopt;
    case kEnum: {
      std::string_view rest = setting.allowed_values;
      while (!rest.empty()) {
        size_t bar = rest.find('|');
        if (rest.substr(0, bar) == value) return std::nullopt;
        rest = bar == std::string_view::npos ? std::string_view{} : rest.substr(bar + 1);
      }
      std::string listed(setting.allowed_values);
      std::ranges::replace(listed, '|', ',');
      return "must be one of " + listed + ", not \"" + std::string(value) + "\"";
    }
    case kList: {
      size_t start = 0;
      while (start <= value.size() && !value.empty()) {
        size_t comma = value.find(',', start);
        std::string_view item =
            value.substr(start, comma == value.npos ? value.npos : comma - start);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty() || !std::ranges::all_of(item, IsListItemChar)) {
          return "must be a comma-separated list of names (letters, digits, '_', '.', '-', '@', "
                 "'$')";
        }
        if (comma == value.npos) break;
        start = comma + 1;
      }
      return std::nullopt;
    }
    case kString:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::span<const SettingInfo> AllSettings() { return kSettings; }

const SettingInfo* FindSetting(std::string_view name) {
  auto it = std::ranges::lower_bound(kSettings, name, {}, &SettingInfo::name);
  return it != kSettings.end() && it->name == name ? &*it : nullptr;
}

bool SettingExistsIn(const SettingInfo& setting, PgBouncerVersion version) {
  return version >= setting.since && (!setting.until || version < *setting.until);
}

bool NeedsRestart(std::string_view name, PgBouncerVersion version) {
  const SettingInfo* setting = FindSetting(name);
  if (setting == nullptr || !SettingExistsIn(*setting, version)) return true;
  return setting->apply == SettingApply::kRestart;
}

std::optional<std::string> CheckParameter(std::string_view name, std::string_view value,
                                          PgBouncerVersion version) {
  const SettingInfo* setting = FindSetting(name);
  if (!setting) {
    for (const auto& hint : kSectionHints) {
      if (hint.key == name) {
        return "not a [pgbouncer] setting: set " + std::string(hint.instead) + " instead";
      }
    }
    return "not a PgBouncer setting (see https://www.pgbouncer.org/config.html)";
  }
  if (setting->access == SettingAccess::kManaged) {
    if (setting->note.starts_with("spec.")) {
      return "managed by poolkeeper: set " + std::string(setting->note) + " instead";
    }
    return "managed by poolkeeper: " + std::string(setting->note);
  }
  if (setting->access == SettingAccess::kRefused) {
    return "not allowed: " + std::string(setting->note);
  }
  if (!SettingExistsIn(*setting, version)) {
    std::string problem = "not in PgBouncer " + version.ToString();
    if (version < setting->since) {
      problem += " (added in " + setting->since.ToString() +
                 "; PgBouncer refuses to start on a setting it does not know)";
    } else {
      problem += " (removed in " + setting->until->ToString() + ")";
    }
    return problem;
  }
  if (value.empty() && setting->type != kString && setting->type != kList) {
    return "must not be empty";
  }
  if (auto problem = CheckSafeText(value)) return problem;
  return CheckType(*setting, value);
}

}  // namespace poolkeeper::api
