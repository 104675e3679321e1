// Secrets: decoding one, holding them in memory, and resolving a pool's passwords from any source.
#include "secrets/secrets.h"

#include <cctype>
#include <set>

#include "api/field_reader.h"
#include "common/base64.h"

namespace poolkeeper::secrets {
using nlohmann::json;

void SecretMap::Put(Secret secret) {
  auto key = std::make_pair(secret.namespace_, secret.name);
  secrets_[std::move(key)] = std::move(secret);
}

std::optional<Secret> SecretMap::Find(const std::string& namespace_,
                                      const std::string& name) const {
  auto it = secrets_.find({namespace_, name});
  if (it == secrets_.end()) return std::nullopt;
  return it->second;
}

std::string ExposeSelector() { return std::string(kExposeLabel) + "=" + std::string(kExposeValue); }

bool Exposed(const Secret& secret) {
  auto it = secret.labels.find(std::string(kExposeLabel));
  return it != secret.labels.end() && it->second == kExposeValue;
}

Result<Secret> ParseSecret(const json& object) {
  std::vector<FieldIssue> issues;
  Secret secret;
  api::FieldReader meta(object.contains("metadata") ? &object["metadata"] : nullptr, "metadata",
                        issues);
  secret.name = meta.String("name", true).value_or("");
  secret.namespace_ = meta.String("namespace").value_or("default");
  secret.resource_version = meta.String("resourceVersion").value_or("");
  if (const json* labels = meta.Object("labels")) {
    for (const auto& [key, value] : labels->items()) {
      if (value.is_string()) secret.labels[key] = value.get<std::string>();
    }
  }
  // Values are never echoed in errors: they are secrets.
  api::FieldReader reader(&object, "", issues);
  if (const json* data = reader.Object("data")) {
    for (const auto& [key, value] : data->items()) {
      auto decoded = value.is_string() ? DecodeBase64(value.get<std::string>()) : std::nullopt;
      if (!decoded) {
        issues.push_back({"data." + key, "must be base64"});
        continue;
      }
      secret.data[key] = *decoded;
    }
  }
  if (const json* data = reader.Object("stringData")) {
    for (const auto& [key, value] : data->items()) {
      if (!value.is_string()) {
        issues.push_back({"stringData." + key, "must be a string"});
        continue;
      }
      secret.data[key] = value.get<std::string>();
    }
  }
  if (!issues.empty()) return Invalid(std::move(issues));
  return secret;
}

Result<Secret> ParseConfigMap(const json& object) {
  json as_secret = object;
  as_secret.erase("data");  // a ConfigMap's data is text, not base64
  auto parsed = ParseSecret(as_secret);
  if (!parsed) return parsed;
  if (auto data = object.find("data"); data != object.end() && data->is_object()) {
    for (const auto& [key, value] : data->items()) {
      if (value.is_string()) parsed->data[key] = value.get<std::string>();
    }
  }
  return parsed;
}

Result<Secret> FindExposed(const SecretSource& secrets, const std::string& ns,
                           const std::string& name, const std::string& field,
                           std::string_view kind) {
  std::optional<Secret> secret = secrets.Find(ns, name);
  const std::string who = std::string(kind) + " " + ns + "/" + name;
  if (!secret) return FieldFail(ErrorCode::kNotFound, field, who + " not found");
  if (!Exposed(*secret)) {
    std::string lower(kind);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return FieldFail(ErrorCode::kUnauthorized, field,
                     who + " is not labelled " + ExposeSelector() + ": pools only read " +
                         std::string(kind) + "s that opt in (kubectl label " + lower + " -n " + ns +
                         " " + name + " " + ExposeSelector() + ")");
  }
  return *secret;
}

Result<ResolvedPasswords> ResolvePasswords(const api::ConnectionPool& pool,
                                           const SecretSource& secrets) {
  ResolvedPasswords resolved;
  std::set<std::string> revisions;
  // authQuery: no application password is read at all (the auth user's is the operator's own).
  if (pool.spec.auth_mode == api::AuthMode::kAuthQuery) return resolved;
  for (size_t i = 0; i < pool.spec.users.size(); ++i) {
    const api::UserSpec& user = pool.spec.users[i];
    const api::SecretKeyRef& ref = user.password_secret_ref;
    std::string field = "spec.users[" + std::to_string(i) + "].passwordSecretRef";
    auto secret = FindExposed(secrets, pool.metadata.namespace_, ref.name, field + ".name");
    if (!secret) return std::unexpected(secret.error());
    auto it = secret->data.find(ref.key);
    if (it == secret->data.end()) {
      return FieldFail(ErrorCode::kNotFound, field + ".key",
                       "Secret " + pool.metadata.namespace_ + "/" + ref.name + " has no key \"" +
                           ref.key + "\"");
    }
    resolved.passwords[user.name] = it->second;
    revisions.insert(ref.name + "@" + secret->resource_version);
  }
  for (const auto& revision : revisions) {
    if (!resolved.revision.empty()) resolved.revision += ",";
    resolved.revision += revision;
  }
  return resolved;
}

}  // namespace poolkeeper::secrets
