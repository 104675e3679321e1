// The settings table and CheckParameter: the version facts (1.18's exact key set, the keys each
// later release added), access, typing, and that nothing that could inject a line passes.
#include "api/pgbouncer_settings.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

namespace poolkeeper::api {
namespace {

constexpr PgBouncerVersion k118{1, 18};
constexpr PgBouncerVersion k121{1, 21};
constexpr PgBouncerVersion k124{1, 24};
constexpr PgBouncerVersion k125{1, 25};

std::string Problem(std::string_view name, std::string_view value, PgBouncerVersion version) {
  return CheckParameter(name, value, version).value_or("");
}

TEST(PgBouncerSettings, TableIsSortedAndUnique) {
  auto all = AllSettings();
  ASSERT_FALSE(all.empty());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].name, all[i].name) << all[i].name;
  }
  for (const auto& setting : all) {
    EXPECT_EQ(FindSetting(setting.name), &setting) << setting.name;
    if (setting.access != SettingAccess::kAllowed) {
      EXPECT_FALSE(setting.note.empty()) << setting.name << " needs a reason or a spec field";
    }
    if (setting.access == SettingAccess::kAllowed && setting.type == SettingType::kEnum) {
      EXPECT_FALSE(setting.allowed_values.empty()) << setting.name;
    }
  }
  EXPECT_EQ(FindSetting("no_such_setting"), nullptr);
}

// `SHOW CONFIG` of the real PgBouncer 1.18.0 lists exactly these 84 keys; 1.18 refuses to start on
// any other key, so the table must not claim more for 1.18.
TEST(PgBouncerSettings, KeysOf118AreExactlyThoseOfTheRealBinary) {
  const std::set<std::string> show_config_118 = {"admin_users",
                                                 "application_name_add_host",
                                                 "auth_file",
                                                 "auth_hba_file",
                                                 "auth_query",
                                                 "auth_type",
                                                 "auth_user",
                                                 "autodb_idle_timeout",
                                                 "client_idle_timeout",
                                                 "client_login_timeout",
                                                 "client_tls_ca_file",
                                                 "client_tls_cert_file",
                                                 "client_tls_ciphers",
                                                 "client_tls_dheparams",
                                                 "client_tls_ecdhcurve",
                                                 "client_tls_key_file",
                                                 "client_tls_protocols",
                                                 "client_tls_sslmode",
                                                 "conffile",
                                                 "default_pool_size",
                                                 "disable_pqexec",
                                                 "dns_max_ttl",
                                                 "dns_nxdomain_ttl",
                                                 "dns_zone_check_period",
                                                 "idle_transaction_timeout",
                                                 "ignore_startup_parameters",
                                                 "job_name",
                                                 "listen_addr",
                                                 "listen_backlog",
                                                 "listen_port",
                                                 "log_connections",
                                                 "log_disconnections",
                                                 "log_pooler_errors",
                                                 "log_stats",
                                                 "logfile",
                                                 "max_client_conn",
                                                 "max_db_connections",
                                                 "max_packet_size",
                                                 "max_user_connections",
                                                 "min_pool_size",
                                                 "pidfile",
                                                 "pkt_buf",
                                                 "pool_mode",
                                                 "query_timeout",
                                                 "query_wait_timeout",
                                                 "reserve_pool_size",
                                                 "reserve_pool_timeout",
                                                 "resolv_conf",
                                                 "sbuf_loopcnt",
                                                 "server_check_delay",
                                                 "server_check_query",
                                                 "server_connect_timeout",
                                                 "server_fast_close",
                                                 "server_idle_timeout",
                                                 "server_lifetime",
                                                 "server_login_retry",
                                                 "server_reset_query",
                                                 "server_reset_query_always",
                                                 "server_round_robin",
                                                 "server_tls_ca_file",
                                                 "server_tls_cert_file",
                                                 "server_tls_ciphers",
                                                 "server_tls_key_file",
                                                 "server_tls_protocols",
                                                 "server_tls_sslmode",
                                                 "so_reuseport",
                                                 "stats_period",
                                                 "stats_users",
                                                 "suspend_timeout",
                                                 "syslog",
                                                 "syslog_facility",
                                                 "syslog_ident",
                                                 "tcp_defer_accept",
                                                 "tcp_keepalive",
                                                 "tcp_keepcnt",
                                                 "tcp_keepidle",
                                                 "tcp_keepintvl",
                                                 "tcp_socket_buffer",
                                                 "tcp_user_timeout",
                                                 "unix_socket_dir",
                                                 "unix_socket_group",
                                                 "unix_socket_mode",
                                                 "user",
                                                 "verbose"};
  ASSERT_EQ(show_config_118.size(), 84u);
  std::set<std::string> in_118;
  for (const auto& setting : AllSettings()) {
    if (SettingExistsIn(setting, k118)) in_118.insert(std::string(setting.name));
  }
  EXPECT_EQ(in_118, show_config_118);
}

TEST(PgBouncerSettings, LaterReleasesAddTheirKeys) {
  struct Added {
    const char* name;
    PgBouncerVersion since;
  };
  for (const Added& added :
       {Added{"auth_dbname", {1, 19}}, Added{"cancel_wait_timeout", {1, 19}},
        Added{"peer_id", {1, 19}}, Added{"track_extra_parameters", {1, 20}},
        Added{"max_prepared_statements", {1, 21}}, Added{"auth_ident_file", {1, 23}},
        Added{"max_db_client_connections", {1, 24}}, Added{"max_user_client_connections", {1, 24}},
        Added{"auth_ldap_options", {1, 25}}, Added{"client_tls13_ciphers", {1, 25}},
        Added{"query_wait_notify", {1, 25}}, Added{"scram_iterations", {1, 25}},
        Added{"server_tls13_ciphers", {1, 25}}, Added{"transaction_timeout", {1, 25}}}) {
    const SettingInfo* setting = FindSetting(added.name);
    ASSERT_NE(setting, nullptr) << added.name;
    EXPECT_EQ(setting->since, added.since) << added.name;
    EXPECT_FALSE(SettingExistsIn(*setting, {1, added.since.minor - 1})) << added.name;
    EXPECT_TRUE(SettingExistsIn(*setting, added.since)) << added.name;
    EXPECT_TRUE(SettingExistsIn(*setting, k125)) << added.name;
  }
}

// The keys `SHOW CONFIG` of the real 1.18.0 reports with `changeable = no` (measured on the Debian
// binary): a change of any of them needs a new process; every other key RELOAD applies.
TEST(PgBouncerSettings, RestartKeysOf118AreThoseTheRealBinaryCannotChange) {
  const std::set<std::string> not_changeable_118 = {
      "disable_pqexec",    "job_name",         "listen_addr", "listen_backlog", "listen_port",
      "pidfile",           "pkt_buf",          "resolv_conf", "so_reuseport",   "unix_socket_dir",
      "unix_socket_group", "unix_socket_mode", "user"};
  std::set<std::string> restart;
  for (const auto& setting : AllSettings()) {
    if (!SettingExistsIn(setting, {1, 18})) continue;
    if (NeedsRestart(setting.name, {1, 18})) restart.insert(std::string(setting.name));
  }
  EXPECT_EQ(restart, not_changeable_118);
}

TEST(PgBouncerSettings, ReloadOrRestartPerSettingAndVersion) {
  struct Case {
    std::string name;
    PgBouncerVersion version;
    bool restart;
  };
  for (const Case& c : std::vector<Case>{
           {"default_pool_size", {1, 18}, false},
           {"max_db_connections", {1, 18}, false},
           {"max_client_conn", {1, 25}, false},
           {"query_wait_timeout", {1, 18}, false},
           {"auth_file", {1, 18}, false},
           {"client_tls_cert_file", {1, 18}, false},
           {"listen_port", {1, 18}, true},
           {"listen_addr", {1, 25}, true},
           {"unix_socket_dir", {1, 18}, true},
           {"pkt_buf", {1, 24}, true},
           {"peer_id", {1, 19}, true},
           {"max_prepared_statements", {1, 21}, false},
           {"transaction_timeout", {1, 25}, false},
           // A key the version does not have, or nobody knows: nothing says RELOAD applies it.
           {"transaction_timeout", {1, 18}, true},
           {"no_such_setting", {1, 25}, true},
       }) {
    EXPECT_EQ(NeedsRestart(c.name, c.version), c.restart) << c.name << " " << c.version.ToString();
  }
}

TEST(CheckParameter, AcceptsAllowedTuning) {
  EXPECT_EQ(CheckParameter("server_reset_query", "DISCARD ALL", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("server_reset_query", "", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("ignore_startup_parameters", "extra_float_digits, options", k118),
            std::nullopt);
  EXPECT_EQ(CheckParameter("tcp_keepidle", "60", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("log_connections", "0", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("application_name_add_host", "1", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("stats_period", "30", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("server_tls_ciphers", "HIGH:!aNULL", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("server_tls_protocols", "tlsv1.3", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("client_tls_ciphers", "HIGH:!aNULL", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("client_tls_ecdhcurve", "auto", k118), std::nullopt);
  EXPECT_EQ(CheckParameter("max_prepared_statements", "100", k121), std::nullopt);
  EXPECT_EQ(CheckParameter("track_extra_parameters", "IntervalStyle,search_path", k124),
            std::nullopt);
}

TEST(CheckParameter, UnknownKeys) {
  EXPECT_NE(Problem("no_such_setting", "1", k118).find("not a PgBouncer setting"),
            std::string::npos);
  EXPECT_NE(Problem("reserve_pool", "1", k118).find("spec.databases[].reservePoolSize"),
            std::string::npos);
  // Windows-only alias of job_name: unknown to a Linux pgbouncer.
  EXPECT_NE(Problem("service_name", "x", k118), "");
}

TEST(CheckParameter, ManagedKeysNameTheSpecField) {
  EXPECT_EQ(Problem("listen_port", "7000", k118),
            "managed by poolkeeper: set spec.pooler.port instead");
  EXPECT_EQ(Problem("default_pool_size", "5", k125),
            "managed by poolkeeper: set spec.pooler.defaultPoolSize instead");
  EXPECT_EQ(Problem("query_timeout", "5", k118),
            "managed by poolkeeper: set spec.pooler.queryTimeoutSeconds instead");
  EXPECT_NE(Problem("auth_type", "trust", k118).find("managed by poolkeeper"), std::string::npos);
  EXPECT_NE(Problem("unix_socket_dir", "/tmp", k118).find("managed by poolkeeper"),
            std::string::npos);
}

// spec.tls sets the TLS modes and files: the parameter names the field to use instead.
TEST(CheckParameter, TlsKeysTheOperatorSetsNameTheSpecTlsField) {
  const std::pair<const char*, const char*> cases[] = {
      {"client_tls_sslmode", "spec.tls.client.sslMode"},
      {"client_tls_cert_file", "spec.tls.client.certificateSecretRef"},
      {"client_tls_key_file", "spec.tls.client.certificateSecretRef"},
      {"client_tls_ca_file", "spec.tls.client.certificateSecretRef"},
      {"client_tls_protocols", "spec.tls.client.minProtocolVersion"},
      {"server_tls_sslmode", "spec.tls.server.sslMode"},
      {"server_tls_ca_file", "spec.tls.server.caRef"},
  };
  for (const auto& [name, field] : cases) {
    std::string problem = Problem(name, "x", k118);
    EXPECT_TRUE(problem.starts_with("managed by poolkeeper: set ")) << name << ": " << problem;
    EXPECT_NE(problem.find(field), std::string::npos) << name << ": " << problem;
  }
}

TEST(CheckParameter, RefusedKeysSayWhy) {
  for (const char* name : {"logfile", "pidfile", "user", "syslog", "conffile", "so_reuseport",
                           "admin_users", "auth_hba_file", "unix_socket_mode", "resolv_conf",
                           "server_tls_cert_file", "server_tls_key_file"}) {
    EXPECT_TRUE(Problem(name, "1", k125).starts_with("not allowed: ")) << name;
  }
  EXPECT_TRUE(Problem("peer_id", "1", k125).starts_with("not allowed: "));
}

TEST(CheckParameter, VersionGateNamesTheRelease) {
  EXPECT_EQ(Problem("max_prepared_statements", "100", k118),
            "not in PgBouncer 1.18 (added in 1.21; PgBouncer refuses to start on a setting it does "
            "not know)");
  EXPECT_NE(Problem("transaction_timeout", "10", k124).find("added in 1.25"), std::string::npos);
  EXPECT_EQ(CheckParameter("transaction_timeout", "10", k125), std::nullopt);
  EXPECT_NE(Problem("max_db_client_connections", "10", {1, 23}).find("added in 1.24"),
            std::string::npos);
}

TEST(CheckParameter, Types) {
  EXPECT_EQ(Problem("tcp_keepidle", "abc", k118),
            "must be a non-negative decimal integer of at most 2147483647");
  EXPECT_NE(Problem("tcp_keepidle", "-1", k118), "");
  EXPECT_NE(Problem("tcp_keepidle", "010", k118), "") << "octal to pgbouncer";
  EXPECT_NE(Problem("tcp_keepidle", "0x10", k118), "");
  EXPECT_NE(Problem("tcp_keepidle", "2147483648", k118), "");
  EXPECT_NE(Problem("tcp_keepidle", "", k118), "");
  EXPECT_EQ(CheckParameter("tcp_keepidle", "2147483647", k118), std::nullopt);
  EXPECT_EQ(Problem("log_connections", "true", k118), "must be 0 or 1");
  EXPECT_EQ(Problem("log_connections", "2", k118), "must be 0 or 1");
  EXPECT_NE(Problem("ignore_startup_parameters", "a,,b", k118), "");
  EXPECT_NE(Problem("stats_users", "a b", k118), "");
}

TEST(CheckParameter, RefusesAnythingThatCouldInject) {
  for (std::string value :
       {std::string("DISCARD ALL\nauth_type = trust"), std::string("DISCARD ALL\rx"),
        std::string("DISCARD\0ALL", 11), std::string("DISCARD ALL; x"), std::string("a=b"),
        std::string(" DISCARD ALL"), std::string("DISCARD ALL "), std::string("DISCARD\tALL"),
        std::string("SELECT 'x'"), std::string("caf\xc3\xa9"), std::string(2000, 'a')}) {
    auto problem = CheckParameter("server_reset_query", value, k118);
    ASSERT_TRUE(problem.has_value()) << value;
    EXPECT_EQ(problem->find('\n'), std::string::npos);
  }
  EXPECT_NE(Problem("ignore_startup_parameters", "a\n[databases]", k118), "");
  EXPECT_NE(Problem("tcp_keepidle", "1\n", k118), "");
}

}  // namespace
}  // namespace poolkeeper::api
