#include "api/postgres_server.h"

#include <algorithm>

#include "api/field_reader.h"
#include "api/names.h"
#include "api/parse_common.h"
#include "common/json_get.h"

namespace poolkeeper::api {
namespace {

using nlohmann::json;

std::optional<NamespacedSecretRef> ReadSecretRef(FieldReader& parent, std::string_view key,
                                                 std::vector<FieldIssue>& issues) {
  FieldReader ref(parent.Object(key), parent.Path(key), issues);
  if (!ref.present()) return std::nullopt;
  NamespacedSecretRef out;
  if (auto ns = ref.String("namespace", true)) {
    out.namespace_ = *ns;
    if (auto problem = CheckDns1123Label(*ns)) ref.Fail("namespace", *problem);
  }
  if (auto name = ref.String("name", true)) {
    out.name = *name;
    if (auto problem = CheckDns1123Subdomain(*name)) ref.Fail("name", *problem);
  }
  ref.RejectUnknown();
  return out;
}

void ReadHostPort(FieldReader& reader, std::string& host, int& port) {
  if (auto text = reader.String("host", true)) {
    host = *text;
    if (auto problem = CheckHost(*text)) reader.Fail("host", *problem);
  }
  if (auto value = reader.Int("port", 1, 65535)) port = static_cast<int>(*value);
}

std::optional<bool> ReadBool(FieldReader& reader, std::string_view key) {
  if (const json* value = reader.Raw(key, json::value_t::boolean)) return value->get<bool>();
  return std::nullopt;
}

void ReadTenancy(FieldReader& spec, PostgresServerSpec& out, std::vector<FieldIssue>& issues) {
  if (const json* list = spec.Array("allowedNamespaces")) {
    out.allowed_namespaces.emplace();
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string field = "allowedNamespaces[" + std::to_string(i) + "]";
      const json& item = (*list)[i];
      if (!item.is_string()) {
        spec.Fail(field, "must be a namespace name");
      } else if (auto problem = CheckDns1123Label(item.get<std::string>())) {
        spec.Fail(field, *problem);
      } else {
        out.allowed_namespaces->insert(item.get<std::string>());
      }
    }
  }
  const json* quotas = spec.Array("namespaceQuotas");
  if (!quotas) return;
  for (size_t i = 0; i < quotas->size(); ++i) {
    FieldReader quota(&(*quotas)[i], spec.Path("namespaceQuotas") + "[" + std::to_string(i) + "]",
                      issues);
    auto ns = quota.String("namespace", true);
    auto limit = quota.Int("maxConnections", 0, kMaxBackends, true);
    if (ns) {
      if (auto problem = CheckDns1123Label(*ns)) {
        quota.Fail("namespace", *problem);
      } else if (limit && !out.namespace_quotas.emplace(*ns, *limit).second) {
        quota.Fail("namespace", "duplicate namespace \"" + *ns + "\"");
      }
    }
    quota.RejectUnknown();
  }
}

// spec.authQuery: the roles the authQuery lookup may return.
void ReadAuthQuery(FieldReader& spec, PostgresServerSpec& out, std::vector<FieldIssue>& issues) {
  FieldReader auth(spec.Object("authQuery"), spec.Path("authQuery"), issues);
  if (!auth.present()) return;
  if (auto role = auth.String("memberOf")) {
    out.auth_query_member_of = *role;
    // The name reaches SQL only quoted (identifier and literal), but is held to what a pool's user
    // names may be, so that it reads the same in every place it shows up.
    if (auto problem = CheckPgIdentifier(*role)) {
      auth.Fail("memberOf", *problem);
    } else if (role->starts_with("pg_")) {
      auth.Fail("memberOf", "must not start with pg_ (PostgreSQL reserves those role names)");
    } else if (*role == "public" || *role == kAuthUser || *role == kAgentUser) {
      auth.Fail("memberOf", "must not be \"" + *role +
                                "\" (reserved by PostgreSQL or by poolkeeper's own roles)");
    }
    if (!out.credentials_secret_ref) {
      auth.Fail("memberOf", "needs credentialsSecretRef (the operator creates the role)");
    }
  }
  auth.RejectUnknown();
}

void ReadSpec(FieldReader& spec, PostgresServerSpec& out, std::vector<FieldIssue>& issues) {
  ReadHostPort(spec, out.host, out.port);
  if (const json* aliases = spec.Array("aliases")) {
    for (size_t i = 0; i < aliases->size(); ++i) {
      FieldReader alias(&(*aliases)[i], spec.Path("aliases") + "[" + std::to_string(i) + "]",
                        issues);
      std::string host;
      int port = out.port;
      ReadHostPort(alias, host, port);
      alias.RejectUnknown();
      out.aliases.push_back(EndpointKey(host, port));
    }
  }
  if (auto mode = spec.String("sslMode")) {
    if (!ParseSslMode(*mode)) {
      spec.Fail("sslMode",
                "must be one of disable, allow, prefer, require, verify-ca, verify-full, not \"" +
                    *mode + "\"");
    }
    out.ssl_mode = *mode;
  }
  out.ca_secret_ref = ReadSecretRef(spec, "caSecretRef", issues);
  if ((out.ssl_mode == "verify-ca" || out.ssl_mode == "verify-full") && !out.ca_secret_ref) {
    spec.Fail("caSecretRef", "required with sslMode " + out.ssl_mode);
  }
  out.credentials_secret_ref = ReadSecretRef(spec, "credentialsSecretRef", issues);
  out.max_connections = spec.Int("maxConnections", 1, kMaxBackends);
  if (!out.max_connections && !out.credentials_secret_ref) {
    spec.Fail("maxConnections",
              "required without credentialsSecretRef (the operator cannot observe the server)");
  }
  if (auto v = spec.Int("superuserReservedConnections", 0, kMaxBackends)) {
    out.superuser_reserved_connections = *v;
  }
  if (auto v = spec.Int("reservedConnections", 0, kMaxBackends)) out.reserved_connections = *v;
  ReadOverhead(spec, out.overhead);
  out.measure_overhead = ReadBool(spec, "measureOverhead").value_or(false);
  if (auto policy = spec.String("policy")) {
    if (*policy == "Enforce") {
      out.policy = BudgetPolicy::kEnforce;
    } else if (*policy == "Warn") {
      out.policy = BudgetPolicy::kWarn;
    } else {
      spec.Fail("policy", "must be Enforce or Warn, not \"" + *policy + "\"");
    }
  }
  ReadTenancy(spec, out, issues);
  if (auto v = spec.Int("observeIntervalSeconds", 5, 86400)) {
    out.observe_interval_seconds = static_cast<int>(*v);
  }
  out.enforce_role_limits = ReadBool(spec, "enforceRoleLimits").value_or(false);
  if (out.enforce_role_limits && !out.credentials_secret_ref) {
    spec.Fail("enforceRoleLimits", "needs credentialsSecretRef (a role with CREATEROLE)");
  }
  ReadAuthQuery(spec, out, issues);
  spec.RejectUnknown();
}

std::map<std::string, int64_t> LimitsFromJson(const json& object, const char* key) {
  std::map<std::string, int64_t> limits;
  auto it = object.find(key);
  if (it == object.end() || !it->is_object()) return limits;
  for (const auto& [name, value] : it->items()) {
    if (value.is_number_integer()) limits[name] = value.get<int64_t>();
  }
  return limits;
}

}  // namespace

Result<PostgresServer> ParsePostgresServer(const json& object) {
  if (!object.is_object()) return Invalid("", "a PostgresServer must be an object");
  std::vector<FieldIssue> issues;
  PostgresServer server;
  if (JsonGet<std::string>(object, "apiVersion", "") != kApiVersion) {
    issues.push_back({"apiVersion", std::string("must be ") + kApiVersion});
  }
  if (JsonGet<std::string>(object, "kind", "") != kServerKind) {
    issues.push_back({"kind", std::string("must be ") + kServerKind});
  }
  const json metadata = object.value("metadata", json::object());
  server.name = JsonGet<std::string>(metadata, "name", "");
  if (auto problem = CheckDns1123Label(server.name)) issues.push_back({"metadata.name", *problem});
  server.uid = JsonGet<std::string>(metadata, "uid", "");
  server.creation_timestamp = JsonGet<std::string>(metadata, "creationTimestamp", "");
  server.generation = JsonGet<int64_t>(metadata, "generation", 0);

  FieldReader spec(object.contains("spec") ? &object["spec"] : nullptr, "spec", issues);
  if (!spec.present()) {
    issues.push_back({"spec", "required"});
  } else {
    ReadSpec(spec, server.spec, issues);
  }
  if (!issues.empty()) return Invalid(std::move(issues));

  server.deleting = metadata.contains("deletionTimestamp");
  const json status = object.value("status", json::object());
  if (status.is_object()) {
    for (const auto& item : status.value("roleLimits", json::array())) {
      if (!item.is_object() || JsonGet<std::string>(item, "role", "").empty()) continue;
      server.managed_role_limits.push_back({JsonGet<std::string>(item, "role", ""),
                                            JsonGet<int64_t>(item, "limit", -1),
                                            JsonGet<int64_t>(item, "previous", -1)});
    }
    server.observed = ObservationFromJson(status.value("observed", json()));
    const json auth = status.value("authQuery", json::object());
    if (auth.is_object()) {
      const json databases = auth.value("databases", json::array());
      server.auth_query_set_up = (databases.is_array() && !databases.empty()) ||
                                 !JsonGet<std::string>(auth, "secret", "").empty();
    }
    for (const auto& condition : status.value("conditions", json::array())) {
      if (condition.is_object() && JsonGet<std::string>(condition, "type", "") == "Reachable" &&
          JsonGet<std::string>(condition, "status", "") == "False") {
        server.unreachable = true;
      }
    }
  }
  return server;
}

bool PostgresServer::PlansLike(const PostgresServer& other) const {
  PostgresServer a = *this, b = other;
  if (a.observed) a.observed->observed_at.clear();
  if (b.observed) b.observed->observed_at.clear();
  return a == b;
}

json ManagedRoleLimitsToJson(const std::vector<ManagedRoleLimit>& limits) {
  json out = json::array();
  for (const auto& l : limits) {
    out.push_back({{"role", l.role}, {"limit", l.limit}, {"previous", l.previous}});
  }
  return out;
}

json ObservationToJson(const ServerObservation& o) {
  return {{"maxConnections", o.max_connections},
          {"superuserReservedConnections", o.superuser_reserved_connections},
          {"reservedConnections", o.reserved_connections},
          {"serverVersion", o.server_version},
          {"systemIdentifier", o.system_identifier},
          {"inUseByOthers", o.in_use_by_others},
          {"roleConnectionLimits", o.role_limits},
          {"databaseConnectionLimits", o.database_limits},
          {"time", o.observed_at}};
}

std::optional<ServerObservation> ObservationFromJson(const json& observed) {
  if (!observed.is_object() || JsonGet<int64_t>(observed, "maxConnections", 0) <= 0)
    return std::nullopt;
  ServerObservation o;
  o.max_connections = JsonGet<int64_t>(observed, "maxConnections", 0);
  o.superuser_reserved_connections = JsonGet<int64_t>(observed, "superuserReservedConnections", 0);
  o.reserved_connections = JsonGet<int64_t>(observed, "reservedConnections", 0);
  o.server_version = JsonGet<std::string>(observed, "serverVersion", "");
  o.system_identifier = JsonGet<std::string>(observed, "systemIdentifier", "");
  o.in_use_by_others = JsonGet<int64_t>(observed, "inUseByOthers", 0);
  o.role_limits = LimitsFromJson(observed, "roleConnectionLimits");
  o.database_limits = LimitsFromJson(observed, "databaseConnectionLimits");
  o.observed_at = JsonGet<std::string>(observed, "time", "");
  return o;
}

}  // namespace poolkeeper::api
