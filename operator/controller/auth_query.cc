#include "controller/auth_query.h"

#include <algorithm>
#include <set>

#include "common/digest.h"
#include "render/render.h"
#include "secrets/secrets.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

postgres::AuthQuerySetup SetupFor(const api::PostgresServer& server, std::string password,
                                  std::vector<std::string> databases) {
  return {api::kAuthUser,     std::move(password),  api::kAuthSchema,
          api::kAuthFunction, std::move(databases), server.spec.auth_query_member_of};
}

api::Condition MakeCondition(const api::PostgresServer& server, bool ok, std::string reason,
                             std::string message) {
  return {kConditionAuthQueryReady, ok ? "True" : "False", std::move(reason),
          std::move(message),       server.generation,     ""};
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string ReasonOf(const Error& error) {
  switch (error.code) {
    case ErrorCode::kUnauthorized:
      return "AdminPrivilegeMissing";
    case ErrorCode::kNotFound:
      return "DatabaseNotFound";
    default:
      return "SetupFailed";
  }
}

// The auth role's password: the Secret's, or a new one (none yet, or the server's rotation
// annotation asks for one) that is written only once the server has it.
struct AuthPassword {
  std::string password;
  std::optional<json> to_write;  // the Secret to apply after a successful setup
};

Result<AuthPassword> ReadPassword(const AuthQueryDeps& deps, const api::PostgresServer& server,
                                  const json& stored_server) {
  const std::string name = AuthSecretName(server.name);
  const std::string rotate = stored_server.value(
      json::json_pointer("/metadata/annotations/poolkeeper.io~1rotate-auth-password"), "");
  auto existing = deps.client.Get(kube::resources::kSecret, deps.secret_namespace, name);
  if (!existing && existing.error().code != ErrorCode::kNotFound) {
    return std::unexpected(existing.error());
  }
  if (existing) {
    auto parsed = secrets::ParseSecret(*existing);
    const std::string rotated_for =
        existing->value(json::json_pointer("/metadata/annotations/poolkeeper.io~1rotated-for"), "");
    if (parsed && parsed->data.contains(kAuthSecretKey) && rotated_for == rotate) {
      return AuthPassword{parsed->data.at(kAuthSecretKey), std::nullopt};
    }
  }
  auto password = RandomHex(24);  // 192 bits
  if (!password) return std::unexpected(password.error());
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata",
                  {{"name", name},
                   {"namespace", deps.secret_namespace},
                   {"labels",
                    {{render::kManagedByLabel, render::kManagedByValue},
                     {std::string(secrets::kExposeLabel), std::string(secrets::kExposeValue)},
                     {"poolkeeper.io/postgresserver", server.name}}},
                   {"annotations", {{kRotatedForAnnotation, rotate}}}}},
                 {"type", "Opaque"},
                 {"stringData", {{kAuthSecretKey, *password}}}};
  return AuthPassword{*password, std::move(secret)};
}

}  // namespace

std::string AuthSecretName(std::string_view server) {
  return kAuthSecretPrefix + std::string(server);
}

std::vector<std::string> AuthQueryDatabases(const std::vector<budget::SharedPool>& pools,
                                            std::string_view server) {
  std::set<std::string> databases;
  for (const auto& pool : pools) {
    if (pool->spec.auth_mode != api::AuthMode::kAuthQuery || pool->spec.server_ref != server) {
      continue;
    }
    for (const auto& db : pool->spec.databases) {
      databases.insert(db.dbname.empty() ? db.name : db.dbname);
    }
  }
  return {databases.begin(), databases.end()};
}

std::vector<std::string> RecordedAuthQueryDatabases(const json& server_status) {
  std::vector<std::string> out;
  const json databases =
      server_status.value(json::json_pointer("/authQuery/databases"), json::array());
  if (!databases.is_array()) return out;
  for (const auto& db : databases) {
    if (db.is_string()) out.push_back(db.get<std::string>());
  }
  std::ranges::sort(out);
  return out;
}

std::string AuthRoleManager(const std::vector<api::PostgresServer>& servers,
                            const std::vector<budget::SharedPool>& pools, std::string_view server) {
  auto self = std::ranges::find(servers, server, &api::PostgresServer::name);
  if (self == servers.end() || !self->observed || self->observed->system_identifier.empty()) {
    return std::string(server);  // not known to share anything
  }
  std::string first(server);
  for (const auto& other : servers) {
    if (other.name >= first || !other.observed ||
        other.observed->system_identifier != self->observed->system_identifier) {
      continue;
    }
    if (other.auth_query_set_up || !AuthQueryDatabases(pools, other.name).empty()) {
      first = other.name;
    }
  }
  return first;
}

AuthQueryOutcome KeepAuthQuery(const AuthQueryDeps& deps, const api::PostgresServer& server,
                               const json& stored, const Result<postgres::Endpoint>& endpoint,
                               const std::vector<std::string>& wanted, const std::string& manager) {
  AuthQueryOutcome outcome;
  outcome.databases = RecordedAuthQueryDatabases(stored.value("status", json::object()));
  const std::string secret_key = deps.secret_namespace + "/" + AuthSecretName(server.name);
  if (wanted.empty() && outcome.databases.empty()) return outcome;  // nothing here, ever
  if (!manager.empty() && manager != server.name) {
    // The recorded databases stay recorded: they are on the server, for whoever manages later.
    // This server's own Secret goes once; the status records it until then, so a server that keeps
    // deferring sends no DELETE at every pass.
    if (!stored.value(json::json_pointer("/status/authQuery/secret"), std::string()).empty()) {
      auto deleted = deps.client.Delete(kube::resources::kSecret, deps.secret_namespace,
                                        AuthSecretName(server.name));
      if (!deleted && deleted.error().code != ErrorCode::kNotFound) outcome.secret = secret_key;
    }
    outcome.condition = MakeCondition(
        server, false, "AuthRoleShared",
        "PostgresServer " + manager + " reaches the same PostgreSQL server (system identifier " +
            (server.observed ? server.observed->system_identifier : std::string("?")) +
            ") and manages its auth role " + api::kAuthUser +
            "; this one writes nothing there: put the authQuery pools on PostgresServer " +
            manager + " (spec.serverRef.name), or use spec.authentication.mode userlist");
    return outcome;
  }
  if (!endpoint) {
    outcome.condition = MakeCondition(
        server, false, "NoAdminCredentials",
        "authQuery pools on this server need spec.credentialsSecretRef with a superuser's "
        "credentials: " +
            endpoint.error().message);
    return outcome;
  }

  if (!wanted.empty()) {
    auto password = ReadPassword(deps, server, stored);
    if (!password) {
      outcome.condition = MakeCondition(server, false, "SecretFailed",
                                        "Secret " + secret_key + ": " + password.error().message);
      return outcome;
    }
    auto ensured =
        deps.database.EnsureAuthQuery(*endpoint, SetupFor(server, password->password, wanted));
    if (!ensured) {
      outcome.condition =
          MakeCondition(server, false, ReasonOf(ensured.error()), ensured.error().message);
      return outcome;
    }
    // Only now: the pools copy the Secret into their userlist, so it must not exist before the
    // role has its password (a failed setup leaves no half-usable auth user behind).
    if (password->to_write) {
      auto applied = deps.client.Apply(kube::resources::kSecret, *password->to_write,
                                       kube::Reply::kStatusOnly);
      if (!applied) {
        outcome.condition = MakeCondition(server, false, "SecretFailed",
                                          "Secret " + secret_key + ": " + applied.error().message);
        return outcome;
      }
    }
    outcome.secret = secret_key;
    // What is set up now: the wanted databases, and the recorded ones until they are removed.
    std::set<std::string> now(wanted.begin(), wanted.end());
    now.insert(outcome.databases.begin(), outcome.databases.end());
    outcome.databases.assign(now.begin(), now.end());
  }

  // Databases no pool serves any more; the role and the Secret once no database is left.
  std::vector<std::string> stale;
  std::ranges::set_difference(outcome.databases, wanted, std::back_inserter(stale));
  if (!stale.empty() || wanted.empty()) {
    Status removed =
        deps.database.RemoveAuthQuery(*endpoint, SetupFor(server, "", stale), wanted.empty());
    if (!removed) {
      outcome.condition = MakeCondition(
          server, false, "RemovalFailed",
          "removing the lookup from " + Joined(stale) + ": " + removed.error().message);
      return outcome;
    }
    outcome.databases = wanted;
  }
  if (wanted.empty()) {
    auto deleted = deps.client.Delete(kube::resources::kSecret, deps.secret_namespace,
                                      AuthSecretName(server.name));
    if (!deleted && deleted.error().code != ErrorCode::kNotFound) {
      outcome.secret = secret_key;
      outcome.condition = MakeCondition(server, false, "RemovalFailed",
                                        "Secret " + secret_key + ": " + deleted.error().message);
      return outcome;
    }
    outcome.secret.clear();
    return outcome;  // nothing wanted, nothing left: the condition goes
  }
  const std::string& gate = server.spec.auth_query_member_of;
  outcome.condition = MakeCondition(
      server, true, "SetUp",
      std::string(api::kAuthUser) + " and " + api::kAuthSchema + "." + api::kAuthFunction + " in " +
          Joined(wanted) +
          (gate.empty() ? "; every login role but superusers may log in (no authQuery.memberOf)"
                        : "; members of role " + gate + " may log in"));
  return outcome;
}

}  // namespace poolkeeper::controller
