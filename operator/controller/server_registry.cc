#include "controller/server_registry.h"

#include <optional>
#include <vector>

namespace poolkeeper::controller {
namespace {

std::string NameOf(const nlohmann::json& object) {
  return object.value("/metadata/name"_json_pointer, "");
}

void AddBudgetOf(const budget::ServerDirectory& directory, const std::string& name,
                 std::set<std::string>& references) {
  references.merge(directory.SharingBudgetWith(api::ServerRefKey(name)));
  references.insert(api::ServerRefKey(name));  // pools naming it, even while it is invalid
}

}  // namespace

std::set<std::string> ServerRegistry::Update(const nlohmann::json* before,
                                             const nlohmann::json* after) {
  std::lock_guard guard(mutex_);
  std::set<std::string> touched;
  const std::string name = NameOf(after ? *after : *before);
  std::optional<Result<api::PostgresServer>> parsed;
  if (after) parsed = api::ParsePostgresServer(*after);
  // A status write that only records the time of an observation plans nothing differently.
  if (auto it = valid_.find(name);
      parsed && *parsed && it != valid_.end() && it->second.PlansLike(**parsed)) {
    it->second = std::move(**parsed);
    Rebuild();
    return touched;
  }
  AddBudgetOf(*directory_, name, touched);
  valid_.erase(name);
  // A server whose spec does not validate is no server: its pools are refused (ServerNotFound)
  // and its own status says why.
  if (parsed && *parsed) valid_[name] = std::move(**parsed);
  Rebuild();
  AddBudgetOf(*directory_, name, touched);
  return touched;
}

void ServerRegistry::Rebuild() {
  std::vector<api::PostgresServer> servers;
  for (const auto& [name, server] : valid_) servers.push_back(server);
  directory_ = std::make_shared<const budget::ServerDirectory>(std::move(servers));
}

std::shared_ptr<const budget::ServerDirectory> ServerRegistry::Directory() const {
  std::lock_guard guard(mutex_);
  return directory_;
}

}  // namespace poolkeeper::controller
