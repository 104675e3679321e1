// Fuzz target "manifests": the readers of user-written resources (targets.h).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "api/parse.h"
#include "api/postgres_server.h"
#include "budget/servers.h"
#include "manifests/manifests.h"
#include "secrets/secrets.h"
#include "targets.h"
#include "yaml/yaml.h"

namespace poolkeeper::fuzz {

void Violated(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "invariant broken: %.*s\n%.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

namespace {

// Every refusal says what is wrong: a message, and one for each field issue (whose field is empty
// only when the whole object is wrong).
void ExpectExplained(const Error& error, std::string_view where) {
  if (error.message.empty() && error.fields.empty()) Violated(where, "an error without a message");
  for (const auto& issue : error.fields) {
    if (issue.message.empty()) Violated(where, "a field issue without a message: " + issue.field);
  }
}

// The operator's door: an object from the API server, already JSON.
void ParseAsObject(const nlohmann::json& object) {
  if (auto pool = api::ParseConnectionPool(object); !pool) {
    ExpectExplained(pool.error(), "ParseConnectionPool");
  }
  if (auto server = api::ParsePostgresServer(object); !server) {
    ExpectExplained(server.error(), "ParsePostgresServer");
  }
  if (auto secret = secrets::ParseSecret(object); !secret) {
    ExpectExplained(secret.error(), "ParseSecret");
  }
}

}  // namespace

void Manifests(std::span<const uint8_t> data) {
  const std::string text(data.begin(), data.end());

  // `poolkeeper check -f`: the manifest reader, then the planner over what it accepted.
  auto manifests = manifests::LoadManifests({{"fuzz.yaml", text}});
  if (!manifests) {
    ExpectExplained(manifests.error(), "LoadManifests");
  } else {
    const budget::ServerDirectory directory(manifests->servers);
    const budget::Plan plan = budget::PlanOnServers(manifests->pools, directory);
    if (plan.pools.size() != manifests->pools.size()) {
      Violated("PlanOnServers", "not one PoolPlan per pool");
    }
  }

  // Each document as the operator would see it, and the YAML reader's own promises: a document
  // written back by ToYaml (what `render` prints) reads as the same JSON.
  if (auto documents = yaml::ParseYamlDocuments(text, "fuzz.yaml"); documents) {
    for (const auto& document : *documents) {
      ParseAsObject(document);
      auto again = yaml::ParseYamlDocuments(yaml::ToYaml(document), "again.yaml");
      if (!again || again->size() != 1 || (*again)[0] != document) {
        const auto changed = again && again->size() == 1
                                 ? nlohmann::json::diff(document, (*again)[0])
                                 : nlohmann::json("not one document");
        Violated("ToYaml then ParseYamlDocuments",
                 changed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    }
  } else {
    ExpectExplained(documents.error(), "ParseYamlDocuments");
  }

  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_discarded()) ParseAsObject(json);
}

}  // namespace poolkeeper::fuzz
