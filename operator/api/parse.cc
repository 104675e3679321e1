#include "api/parse.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "api/field_reader.h"
#include "api/names.h"
#include "api/parse_auth.h"
#include "api/parse_common.h"
#include "api/parse_tls.h"
#include "api/pgbouncer_settings.h"
#include "common/json_get.h"

namespace poolkeeper::api {
namespace {

using nlohmann::json;

constexpr int64_t kMaxPoolSize = 100000;
constexpr int64_t kMaxInstances = 1000;
constexpr int64_t kMaxSeconds = 31536000;  // a year
// Room for the "-config" and "-auth" suffixes of owned objects within a 63-character label.
constexpr size_t kMaxPoolNameLength = 56;

template <typename T>
void Assign(std::optional<int64_t> value, T& out) {
  if (value) out = static_cast<T>(*value);
}
template <typename T>
void Assign(std::optional<int64_t> value, std::optional<T>& out) {
  if (value) out = static_cast<T>(*value);
}

std::optional<PoolMode> ReadPoolMode(FieldReader& reader, std::string_view key) {
  auto text = reader.String(key);
  if (!text) return std::nullopt;
  if (*text == "session") return PoolMode::kSession;
  if (*text == "transaction") return PoolMode::kTransaction;
  if (*text == "statement") return PoolMode::kStatement;
  reader.Fail(key, "must be one of session, transaction, statement, not \"" + *text + "\"");
  return std::nullopt;
}

void ReadServer(FieldReader& reader, ServerSpec& server) {
  if (auto host = reader.String("host", true)) {
    server.host = *host;
    if (auto problem = CheckHost(*host)) reader.Fail("host", *problem);
  }
  Assign(reader.Int("port", 1, 65535), server.port);
  Assign(reader.Int("maxConnections", 1, kMaxBackends, true), server.max_connections);
  Assign(reader.Int("superuserReservedConnections", 0, kMaxBackends),
         server.superuser_reserved_connections);
  Assign(reader.Int("reservedConnections", 0, kMaxBackends), server.reserved_connections);
  ReadOverhead(reader, server.overhead);
  reader.RejectUnknown();
}

// A pool names its server inline (spec.server) or by reference to a PostgresServer
// (spec.serverRef.name), never both: one source of limits per pool.
void ReadServerOrRef(FieldReader& spec, ConnectionPoolSpec& out, std::vector<FieldIssue>& issues) {
  const bool inline_server = spec.Has("server"), by_ref = spec.Has("serverRef");
  if (inline_server == by_ref) {
    spec.Fail(by_ref ? "serverRef" : "server",
              by_ref ? "give either server or serverRef, not both"
                     : "required: the server inline, or serverRef naming a PostgresServer");
  }
  FieldReader server(spec.Object("server"), "spec.server", issues);
  if (server.present()) ReadServer(server, out.server);
  FieldReader ref(spec.Object("serverRef"), "spec.serverRef", issues);
  if (!ref.present()) return;
  if (auto name = ref.String("name", true)) {
    out.server_ref = *name;
    if (auto problem = CheckDns1123Subdomain(*name)) ref.Fail("name", *problem);
  }
  ref.RejectUnknown();
}

struct TimeoutField {
  std::string_view key;
  std::optional<int> Timeouts::*member;
};
constexpr TimeoutField kTimeoutFields[] = {
    {"serverIdleTimeoutSeconds", &Timeouts::server_idle_timeout},
    {"serverLifetimeSeconds", &Timeouts::server_lifetime},
    {"serverConnectTimeoutSeconds", &Timeouts::server_connect_timeout},
    {"serverLoginRetrySeconds", &Timeouts::server_login_retry},
    {"queryTimeoutSeconds", &Timeouts::query_timeout},
    {"queryWaitTimeoutSeconds", &Timeouts::query_wait_timeout},
    {"clientIdleTimeoutSeconds", &Timeouts::client_idle_timeout},
    {"clientLoginTimeoutSeconds", &Timeouts::client_login_timeout},
    {"idleTransactionTimeoutSeconds", &Timeouts::idle_transaction_timeout},
};

void ReadImageAndVersion(FieldReader& reader, const ParseDefaults& defaults, PoolerSpec& pooler) {
  auto image = reader.String("image");
  auto version_text = reader.String("pgbouncerVersion");
  std::optional<PgBouncerVersion> version;
  if (version_text) {
    version = ParsePgBouncerVersion(*version_text);
    if (!version) {
      reader.Fail("pgbouncerVersion",
                  "must be a PgBouncer version like \"1.18\", not \"" + *version_text + "\"");
      return;
    }
  }
  if (image) {
    if (image->empty() || std::ranges::any_of(*image, [](unsigned char c) {
          return std::isspace(c) || std::iscntrl(c);
        })) {
      reader.Fail("image", "must be a non-empty image reference without spaces");
      return;
    }
    pooler.image = *image;
    if (!version) version = VersionFromImage(*image);
    if (!version) {
      reader.Fail("pgbouncerVersion", "required: the image tag of \"" + *image +
                                          "\" does not name a PgBouncer version");
      return;
    }
  } else {
    pooler.image = defaults.image;
    if (version && *version != defaults.image_version) {
      reader.Fail("image", "required: the default image runs PgBouncer " +
                               defaults.image_version.ToString() + ", not " + version->ToString());
      return;
    }
    version = defaults.image_version;
  }
  if (*version < kOldestSupportedVersion || *version > kNewestSupportedVersion) {
    reader.Fail("pgbouncerVersion", "PgBouncer " + version->ToString() +
                                        " is not supported; poolkeeper knows " +
                                        kOldestSupportedVersion.ToString() + " through " +
                                        kNewestSupportedVersion.ToString());
    return;
  }
  pooler.pgbouncer_version = *version;
}

void ReadPooler(FieldReader& reader, const ParseDefaults& defaults, PoolerSpec& pooler,
                std::optional<std::string>& legacy_server_ssl_mode) {
  Assign(reader.Int("instances", 0, kMaxInstances), pooler.instances);
  Assign(reader.Int("maxSurge", 0, kMaxInstances), pooler.max_surge);
  ReadImageAndVersion(reader, defaults, pooler);
  Assign(reader.Int("port", 1, 65535), pooler.port);
  if (auto mode = ReadPoolMode(reader, "poolMode")) pooler.pool_mode = *mode;
  Assign(reader.Int("maxClientConn", 1, 1000000), pooler.max_client_conn);
  Assign(reader.Int("defaultPoolSize", 1, kMaxPoolSize), pooler.default_pool_size);
  Assign(reader.Int("minPoolSize", 0, kMaxPoolSize), pooler.min_pool_size);
  Assign(reader.Int("reservePoolSize", 0, kMaxPoolSize), pooler.reserve_pool_size);
  Assign(reader.Int("reservePoolTimeoutSeconds", 0, kMaxSeconds),
         pooler.reserve_pool_timeout_seconds);
  Assign(reader.Int("maxDbConnections", 1, kMaxBackends), pooler.max_db_connections);
  Assign(reader.Int("maxUserConnections", 1, kMaxBackends), pooler.max_user_connections);
  for (const auto& field : kTimeoutFields) {
    Assign(reader.Int(field.key, 0, kMaxSeconds), pooler.timeouts.*field.member);
  }
  if (pooler.min_pool_size > pooler.default_pool_size) {
    reader.Fail("minPoolSize", "must not exceed defaultPoolSize (" +
                                   std::to_string(pooler.default_pool_size) + ")");
  }
  if (const json* parameters = reader.Object("parameters")) {
    for (const auto& [name, value] : parameters->items()) {
      std::string field = "parameters." + name;
      if (!value.is_string() && !value.is_number_integer()) {
        reader.Fail(field,
                    "must be a string or an integer, not " + std::string(JsonTypeName(value)));
        continue;
      }
      std::string text =
          value.is_string() ? value.get<std::string>() : std::to_string(value.get<int64_t>());
      if (name == kLegacyServerSslModeParameter) {  // spec.tls.server.sslMode now; see ReadTls
        legacy_server_ssl_mode = text;
        continue;
      }
      if (auto problem = CheckParameter(name, text, pooler.pgbouncer_version)) {
        reader.Fail(field, *problem);
        continue;
      }
      pooler.parameters[name] = text;
    }
  }
  auto pass_through = [&reader](std::string_view key, json::value_t type, json& out) {
    if (const json* value = reader.Raw(key, type)) out = *value;
  };
  pass_through("resources", json::value_t::object, pooler.resources);
  pass_through("affinity", json::value_t::object, pooler.affinity);
  pass_through("tolerations", json::value_t::array, pooler.tolerations);
  pass_through("nodeSelector", json::value_t::object, pooler.node_selector);
  pass_through("topologySpreadConstraints", json::value_t::array,
               pooler.topology_spread_constraints);
  pooler.priority_class_name = reader.String("priorityClassName").value_or("");
  reader.RejectUnknown();
}

// Names must be unique within their list: pgbouncer would silently keep only one of them.
void CheckUnique(const std::string& list_path, const std::vector<std::string>& names,
                 std::vector<FieldIssue>& issues) {
  std::set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!names[i].empty() && !seen.insert(names[i]).second) {
      issues.push_back(
          {list_path + "[" + std::to_string(i) + "].name", "duplicate name \"" + names[i] + "\""});
    }
  }
}

void ReadDatabases(FieldReader& spec, const PoolerSpec& pooler, std::vector<DatabaseSpec>& out,
                   std::vector<FieldIssue>& issues) {
  const json* list = spec.Array("databases", true);
  if (!list) return;
  if (list->empty()) spec.Fail("databases", "must list at least one database");
  std::vector<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    FieldReader reader(&(*list)[i], spec.Path("databases") + "[" + std::to_string(i) + "]", issues);
    DatabaseSpec db;
    if (auto name = reader.String("name", true)) {
      db.name = *name;
      if (auto problem = CheckPgIdentifier(*name)) {
        reader.Fail("name", *problem);
      } else if (*name == "pgbouncer") {
        reader.Fail("name", "\"pgbouncer\" is PgBouncer's admin console, not a database");
      }
    }
    db.dbname = reader.String("dbname").value_or(db.name);
    if (reader.Has("dbname")) {
      if (auto problem = CheckPgIdentifier(db.dbname)) reader.Fail("dbname", *problem);
    }
    Assign(reader.Int("poolSize", 1, kMaxPoolSize), db.pool_size);
    Assign(reader.Int("reservePoolSize", 0, kMaxPoolSize), db.reserve_pool_size);
    Assign(reader.Int("minPoolSize", 0, kMaxPoolSize), db.min_pool_size);
    Assign(reader.Int("maxDbConnections", 1, kMaxBackends), db.max_db_connections);
    db.pool_mode = ReadPoolMode(reader, "poolMode");
    int pool_size = db.pool_size.value_or(pooler.default_pool_size);
    if (db.min_pool_size.value_or(pooler.min_pool_size) > pool_size) {
      reader.Fail(db.min_pool_size ? "minPoolSize" : "poolSize",
                  "minPoolSize (" +
                      std::to_string(db.min_pool_size.value_or(pooler.min_pool_size)) +
                      ") must not exceed poolSize (" + std::to_string(pool_size) + ")");
    }
    reader.RejectUnknown();
    names.push_back(db.name);
    out.push_back(std::move(db));
  }
  CheckUnique(spec.Path("databases"), names, issues);
}

// In authQuery mode users are optional (any role the lookup returns may log in) and carry only
// per-user settings: a passwordSecretRef is not required, and is never read.
void ReadUsers(FieldReader& spec, AuthMode mode, std::vector<UserSpec>& out,
               std::vector<FieldIssue>& issues) {
  const bool auth_query = mode == AuthMode::kAuthQuery;
  const json* list = spec.Array("users", !auth_query);
  if (!list) return;
  if (list->empty() && !auth_query) spec.Fail("users", "must list at least one user");
  std::vector<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    FieldReader reader(&(*list)[i], spec.Path("users") + "[" + std::to_string(i) + "]", issues);
    UserSpec user;
    if (auto name = reader.String("name", true)) {
      user.name = *name;
      if (auto problem = CheckPgIdentifier(*name)) {
        reader.Fail("name", *problem);
      } else if (*name == kAgentUser) {
        reader.Fail("name", std::string("\"") + kAgentUser +
                                "\" is the pooler agent's admin user, which poolkeeper sets up");
      } else if (auth_query && *name == kAuthUser) {
        reader.Fail("name", std::string("\"") + kAuthUser +
                                "\" is the auth user poolkeeper sets up in authQuery mode");
      }
    }
    FieldReader ref(reader.Object("passwordSecretRef", !auth_query),
                    reader.Path("passwordSecretRef"), issues);
    if (ref.present()) {
      if (auto name = ref.String("name", true)) {
        user.password_secret_ref.name = *name;
        if (auto problem = CheckDns1123Subdomain(*name)) ref.Fail("name", *problem);
      }
      if (auto key = ref.String("key")) {
        user.password_secret_ref.key = *key;
        if (auto problem = CheckSecretKey(*key)) ref.Fail("key", *problem);
      }
      ref.RejectUnknown();
    }
    user.pool_mode = ReadPoolMode(reader, "poolMode");
    Assign(reader.Int("maxUserConnections", 1, kMaxBackends), user.max_user_connections);
    reader.RejectUnknown();
    names.push_back(user.name);
    out.push_back(std::move(user));
  }
  CheckUnique(spec.Path("users"), names, issues);
}

void ReadClients(FieldReader& spec, std::vector<ClientSpec>& out, std::vector<FieldIssue>& issues) {
  const json* list = spec.Array("clients");
  if (!list) return;
  std::vector<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    FieldReader reader(&(*list)[i], spec.Path("clients") + "[" + std::to_string(i) + "]", issues);
    ClientSpec client;
    if (auto name = reader.String("name", true)) {
      client.name = *name;
      if (client.name.empty()) reader.Fail("name", "must not be empty");
    }
    Assign(reader.Int("instances", 0, 100000), client.instances);
    Assign(reader.Int("poolSize", 0, kMaxPoolSize, true), client.pool_size);
    Assign(reader.Int("maxOverflow", 0, kMaxPoolSize), client.max_overflow);
    reader.RejectUnknown();
    names.push_back(client.name);
    out.push_back(std::move(client));
  }
  CheckUnique(spec.Path("clients"), names, issues);
}

void ReadBudget(FieldReader& spec, BudgetPolicy& policy, std::vector<FieldIssue>& issues) {
  FieldReader reader(spec.Object("budget"), spec.Path("budget"), issues);
  if (auto text = reader.String("policy")) {
    if (*text == "Enforce") {
      policy = BudgetPolicy::kEnforce;
    } else if (*text == "Warn") {
      policy = BudgetPolicy::kWarn;
    } else {
      reader.Fail("policy", "must be Enforce or Warn, not \"" + *text + "\"");
    }
  }
  reader.RejectUnknown();
}

}  // namespace

std::optional<PgBouncerVersion> ParsePgBouncerVersion(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) continue;
    if (i > 0 && std::isdigit(static_cast<unsigned char>(text[i - 1]))) continue;
    int major = 0, minor = 0;
    auto [after_major, ec1] = std::from_chars(text.data() + i, text.data() + text.size(), major);
    if (ec1 != std::errc() || after_major == text.data() + text.size() || *after_major != '.') {
      continue;
    }
    auto [after_minor, ec2] = std::from_chars(after_major + 1, text.data() + text.size(), minor);
    if (ec2 != std::errc() || after_minor == after_major + 1) continue;
    return PgBouncerVersion{major, minor};
  }
  return std::nullopt;
}

Result<ParseDefaults> MakeParseDefaults(const std::string& image, const std::string& version) {
  ParseDefaults defaults;
  if (image.empty()) {
    if (!version.empty()) return Invalid("--default-pgbouncer-version", "needs an image");
    return defaults;
  }
  if (std::ranges::any_of(image,
                          [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); })) {
    return Invalid("--default-pgbouncer-image", "must be an image reference without spaces");
  }
  auto parsed = version.empty() ? VersionFromImage(image) : ParsePgBouncerVersion(version);
  if (!parsed) {
    return version.empty()
               ? Invalid("--default-pgbouncer-version",
                         "required: the tag of \"" + image + "\" does not name a PgBouncer version")
               : Invalid("--default-pgbouncer-version", "\"" + version + "\" is not a version");
  }
  if (*parsed < kOldestSupportedVersion || *parsed > kNewestSupportedVersion) {
    return Invalid("--default-pgbouncer-version",
                   "PgBouncer " + parsed->ToString() + " is not supported; poolkeeper knows " +
                       kOldestSupportedVersion.ToString() + " through " +
                       kNewestSupportedVersion.ToString());
  }
  defaults.image = image;
  defaults.image_version = *parsed;
  return defaults;
}

std::optional<PgBouncerVersion> VersionFromImage(std::string_view image) {
  if (auto at = image.find('@'); at != std::string_view::npos) image = image.substr(0, at);
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) {
    return std::nullopt;
  }
  return ParsePgBouncerVersion(image.substr(colon + 1));
}

Result<ConnectionPool> ParseConnectionPool(const json& object, const ParseDefaults& defaults) {
  std::vector<FieldIssue> issues;
  if (!object.is_object()) return Invalid("", "a ConnectionPool must be an object");
  ConnectionPool pool;
  if (JsonGet<std::string>(object, "apiVersion", "") != kApiVersion) {
    issues.push_back({"apiVersion", std::string("must be ") + kApiVersion});
  }
  if (JsonGet<std::string>(object, "kind", "") != kKind)
    issues.push_back({"kind", std::string("must be ") + kKind});
  ReadMetadata(object, pool.metadata, issues, kMaxPoolNameLength);

  FieldReader spec(object.contains("spec") ? &object["spec"] : nullptr, "spec", issues);
  if (!spec.present()) {
    issues.push_back({"spec", "required"});
    return Invalid(std::move(issues));
  }
  ReadServerOrRef(spec, pool.spec, issues);
  FieldReader pooler(spec.Object("pooler"), "spec.pooler", issues);
  std::optional<std::string> legacy_server_ssl_mode;
  ReadPooler(pooler, defaults, pool.spec.pooler, legacy_server_ssl_mode);
  pool.spec.pooler.agent_image = defaults.agent_image;
  ReadDatabases(spec, pool.spec.pooler, pool.spec.databases, issues);
  ReadAuthentication(spec, pool.spec.auth_mode, issues);
  ReadUsers(spec, pool.spec.auth_mode, pool.spec.users, issues);
  ReadBudget(spec, pool.spec.budget_policy, issues);
  ReadClients(spec, pool.spec.clients, issues);
  ReadTls(spec, legacy_server_ssl_mode, pool.spec, issues);
  if (const json* paused = spec.Raw("paused", json::value_t::boolean)) {
    pool.spec.paused = paused->get<bool>();
  }
  spec.RejectUnknown();
  CheckAuthQuery(pool, issues);

  if (!issues.empty()) return Invalid(std::move(issues));
  return pool;
}

}  // namespace poolkeeper::api
