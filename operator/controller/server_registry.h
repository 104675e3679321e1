// The PostgresServers the operator knows, kept as an immutable budget::ServerDirectory snapshot
// that is rebuilt on every change: a reconcile takes the snapshot once and plans against one
// consistent view of which names are one server, whatever changes meanwhile. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "api/postgres_server.h"
#include "budget/servers.h"
#include "controller/resources.h"

namespace poolkeeper::controller {

class ServerRegistry {
 public:
  ServerRegistry() : directory_(std::make_shared<budget::ServerDirectory>()) {}

  // Stores (or, with `after` null, forgets) a server. Returns the reference keys of every budget
  // the change touches, before and after it: the pools under them must be planned again.
  std::set<std::string> Update(const nlohmann::json* before, const nlohmann::json* after);

  std::shared_ptr<const budget::ServerDirectory> Directory() const;

 private:
  void Rebuild();  // with mutex_ held

  mutable std::mutex mutex_;
  std::map<std::string, api::PostgresServer> valid_;
  std::shared_ptr<const budget::ServerDirectory> directory_;
};

}  // namespace poolkeeper::controller
