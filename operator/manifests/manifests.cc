#include "manifests/manifests.h"

#include <set>

#include "api/field_reader.h"
#include "api/parse.h"
#include "common/base64.h"
#include "yaml/yaml.h"

namespace poolkeeper::manifests {

using nlohmann::json;

namespace {
// json::value(key, default) throws when the key holds another type (`kind: ~` ended `check` with
// an uncaught type_error; found by the fuzz target render): a field that is not a string is "".
std::string StringField(const json& object, const char* key, const std::string& otherwise = "") {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : otherwise;
}
}  // namespace

Result<Manifests> LoadManifests(const std::vector<std::pair<std::string, std::string>>& sources) {
  Manifests manifests;
  std::vector<FieldIssue> issues;
  std::set<std::pair<std::string, std::string>> pool_names;
  std::set<std::string> server_names;
  for (const auto& [source, text] : sources) {
    auto documents = yaml::ParseYamlDocuments(text, source);
    if (!documents) {
      issues.push_back({source, documents.error().message});
      continue;
    }
    for (size_t i = 0; i < documents->size(); ++i) {
      const json& doc = (*documents)[i];
      std::string kind = doc.is_object() ? StringField(doc, "kind") : "";
      std::string where = source + " document " + std::to_string(i + 1) + " (" + kind;
      if (doc.is_object() && doc.contains("metadata") && doc["metadata"].is_object()) {
        where += " " + StringField(doc["metadata"], "namespace", "default") + "/" +
                 StringField(doc["metadata"], "name");
      }
      where += ")";
      auto prefix = [&](const Error& error) {
        for (const auto& issue : error.fields) {
          issues.push_back({where + " " + issue.field, issue.message});
        }
        if (error.fields.empty()) issues.push_back({where, error.message});
      };
      if (kind == api::kKind) {
        auto pool = api::ParseConnectionPool(doc);
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
      } else if (kind == api::kServerKind) {
        auto server = api::ParsePostgresServer(doc);
        if (!server) {
          prefix(server.error());
          continue;
        }
        if (!server_names.insert(server->name).second) {
          issues.push_back({where, "a PostgresServer with this name came before"});
          continue;
        }
        manifests.servers.push_back(std::move(*server));
      } else if (kind == "Secret" && StringField(doc, "apiVersion") == "v1") {
        auto secret = secrets::ParseSecret(doc);
        if (!secret) {
          prefix(secret.error());
          continue;
        }
        manifests.secrets.Put(std::move(*secret));
      }
    }
  }
  if (!issues.empty()) return Invalid(std::move(issues));
  return manifests;
}

}  // namespace poolkeeper::manifests
