#include "api/manifests.h"

#include <set>

#include "api/field_reader.h"
#include "api/parse.h"
#include "api/yaml.h"
#include "common/base64.h"

namespace poolkeeper::api {
namespace {

using nlohmann::json;

}  // namespace

const Secret* Manifests::Find(const std::string& namespace_, const std::string& name) const {
  auto it = secrets.find({namespace_, name});
  return it == secrets.end() ? nullptr : &it->second;
}

Result<Secret> ParseSecret(const json& object) {
  std::vector<FieldIssue> issues;
  Secret secret;
  FieldReader meta(object.contains("metadata") ? &object["metadata"] : nullptr, "metadata", issues);
  secret.name = meta.String("name", true).value_or("");
  secret.namespace_ = meta.String("namespace").value_or("default");
  secret.resource_version = meta.String("resourceVersion").value_or("");
  // Values are never echoed in errors: they are secrets.
  FieldReader reader(&object, "", issues);
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

Result<Manifests> LoadManifests(const std::vector<std::pair<std::string, std::string>>& sources) {
  Manifests manifests;
  std::vector<FieldIssue> issues;
  std::set<std::pair<std::string, std::string>> pool_names;
  std::set<std::string> server_names;
  for (const auto& [source, text] : sources) {
    auto documents = ParseYamlDocuments(text, source);
    if (!documents) {
      issues.push_back({source, documents.error().message});
      continue;
    }
    for (size_t i = 0; i < documents->size(); ++i) {
      const json& doc = (*documents)[i];
      std::string kind = doc.is_object() ? doc.value("kind", "") : "";
      std::string where = source + " document " + std::to_string(i + 1) + " (" + kind;
      if (doc.is_object() && doc.contains("metadata") && doc["metadata"].is_object()) {
        where += " " + doc["metadata"].value("namespace", "default") + "/" +
                 doc["metadata"].value("name", "");
      }
      where += ")";
      auto prefix = [&](const Error& error) {
        for (const auto& issue : error.fields) {
          issues.push_back({where + " " + issue.field, issue.message});
        }
        if (error.fields.empty()) issues.push_back({where, error.message});
      };
      if (kind == kKind) {
        auto pool = ParseConnectionPool(doc);
        if (!pool) {
          prefix(pool.error());
          continue;
        }
        auto name = std::make_pair(pool->metadata.namespace_, pool->metadata.name);
        if (!pool_names.insert(name).second) {
          issues.push_back({where, "a ConnectionPool with this namespace and name came before"});
          continue;
        }
        manifests.pools.push_back(std::move(*pool));
      } else if (kind == kServerKind) {
        auto server = ParsePostgresServer(doc);
        if (!server) {
          prefix(server.error());
          continue;
        }
        if (!server_names.insert(server->name).second) {
          issues.push_back({where, "a PostgresServer with this name came before"});
          continue;
        }
        manifests.servers.push_back(std::move(*server));
      } else if (kind == "Secret" && doc.value("apiVersion", "") == "v1") {
        auto secret = ParseSecret(doc);
        if (!secret) {
          prefix(secret.error());
          continue;
        }
        auto key = std::make_pair(secret->namespace_, secret->name);
        manifests.secrets[key] = std::move(*secret);
      }
    }
  }
  if (!issues.empty()) return Invalid(std::move(issues));
  return manifests;
}

Result<ResolvedPasswords> ResolvePasswords(const ConnectionPool& pool,
                                           const SecretSource& secrets) {
  ResolvedPasswords resolved;
  std::set<std::string> revisions;
  for (size_t i = 0; i < pool.spec.users.size(); ++i) {
    const UserSpec& user = pool.spec.users[i];
    const SecretKeyRef& ref = user.password_secret_ref;
    std::string field = "spec.users[" + std::to_string(i) + "].passwordSecretRef";
    const Secret* secret = secrets.Find(pool.metadata.namespace_, ref.name);
    if (!secret) {
      Error error{ErrorCode::kNotFound,
                  {},
                  {{field + ".name",
                    "Secret " + pool.metadata.namespace_ + "/" + ref.name + " not found"}}};
      error.message = error.ToString();
      return std::unexpected(std::move(error));
    }
    auto it = secret->data.find(ref.key);
    if (it == secret->data.end()) {
      Error error{ErrorCode::kNotFound,
                  {},
                  {{field + ".key", "Secret " + pool.metadata.namespace_ + "/" + ref.name +
                                        " has no key \"" + ref.key + "\""}}};
      error.message = error.ToString();
      return std::unexpected(std::move(error));
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

}  // namespace poolkeeper::api
