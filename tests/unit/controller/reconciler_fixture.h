// The reconciler tests' fixture: a pool on a 40-connection server, and a fake of what the API
// server and the caches would hold after each reconcile's writes.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/parse.h"
#include "controller/agent_status.h"
#include "controller/reconciler.h"
#include "secrets/secrets.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

// The label that lets pools read a Secret (secrets::kExposeLabel).
const std::map<std::string, std::string> kExposed = {{"poolkeeper.io/expose-to-pools", "true"}};

// A parsed pool as the pool index hands it out.
inline budget::SharedPool Shared(api::ConnectionPool pool) {
  return std::make_shared<const api::ConnectionPool>(std::move(pool));
}

// The pools of `in.server_pools` with the agent image set (copies: the index's are immutable).
inline void SetAgentImage(std::vector<budget::SharedPool>& pools, const std::string& image) {
  for (auto& pool : pools) {
    api::ConnectionPool with_agent = *pool;
    with_agent.spec.pooler.agent_image = image;
    pool = Shared(std::move(with_agent));
  }
}

inline json PoolJson(const std::string& name, int instances, int pool_size,
                     const std::string& created) {
  return json::parse(R"({
    "apiVersion": "poolkeeper.io/v1alpha1", "kind": "ConnectionPool",
    "metadata": {"name": ")" +
                     name + R"(", "namespace": "shop", "uid": "uid-)" + name + R"(",
                 "generation": 3, "finalizers": ["poolkeeper.io/pods-drained"],
                 "creationTimestamp": ")" +
                     created + R"("},
    "spec": {
      "server": {"host": "db.shop", "maxConnections": 40, "overhead": 2},
      "pooler": {"instances": )" +
                     std::to_string(instances) + R"(, "pgbouncerVersion": "1.18",
                 "image": "ghcr.io/cloudnative-pg/pgbouncer:1.18.0", "defaultPoolSize": )" +
                     std::to_string(pool_size) + R"(},
      "databases": [{"name": "orders", "maxDbConnections": )" +
                     std::to_string(pool_size) + R"(}],
      "users": [{"name": "app", "passwordSecretRef": {"name": "app-db"}}]}})");
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    secrets_.Put({"shop", "app-db", "7", {{"password", "s3cret"}}, kExposed});
  }

  PoolInputs Inputs(const json& pool) {
    PoolInputs in;
    in.pool = pool;
    auto parsed = api::ParseConnectionPool(pool);
    if (parsed) in.server_pools.push_back(Shared(*parsed));
    in.secrets = secrets_;
    in.owned = owned_;
    for (const auto& [name, pod] : pods_) in.pods.push_back(pod);
    in.now = "2026-11-23T10:00:00Z";
    return in;
  }

  // Stores what a reconcile wrote, as the API server (and then the cache) would hold it: pods it
  // deleted are gone at once, pods it created are ready or not.
  void Store(json& pool, const ReconcileResult& result, bool ready) {
    for (const auto& object : result.apply) owned_[object["kind"]] = object;
    for (const auto& kind : result.delete_kinds) owned_.erase(kind);
    for (const auto& pod : result.delete_pods) pods_.erase(pod.name);
    for (json pod : result.create_pods) {
      std::string name = pod["metadata"]["name"];
      pod["metadata"]["uid"] = "uid-" + name;
      pod["status"] = {{"phase", "Running"},
                       {"conditions", {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}}}};
      pods_[name] = pod;
    }
    if (result.status) pool["status"] = *result.status;
  }

  // Reconciles until nothing more is written, the pods becoming ready at once.
  void Settle(json& pool) {
    for (int i = 0; i < 10; ++i) {
      ReconcileResult result = Reconcile(Inputs(pool));
      bool quiet = result.apply.empty() && result.create_pods.empty() &&
                   result.delete_pods.empty() && !result.status;
      Store(pool, result, true);
      if (quiet) return;
    }
    FAIL() << "no steady state";
  }

  std::vector<std::string> PodNames() const {
    std::vector<std::string> names;
    for (const auto& [name, pod] : pods_) names.push_back(name);
    return names;
  }

  static std::string Condition(const json& status, const std::string& type, const char* field) {
    for (const auto& c : status["conditions"]) {
      if (c["type"] == type) return c[field];
    }
    return "";
  }

  secrets::SecretMap secrets_;
  std::map<std::string, json> owned_;
  std::map<std::string, json> pods_;
};

// Pools whose pods run the pooler agent (--agent-image), with what each pod's agent reports.
class AgentReconcilerTest : public ReconcilerTest {
 protected:
  static constexpr char kAgentImage[] = "localhost/poolkeeper:dev";

  PoolInputs AgentInputs(const json& pool) {
    PoolInputs in = Inputs(pool);
    in.defaults.agent_image = kAgentImage;
    in.policy.agent_image = kAgentImage;
    SetAgentImage(in.server_pools, kAgentImage);
    in.new_agent_password = "agent-pw";
    in.agents_asked = true;
    in.agent_reports = reports_;
    return in;
  }
  std::set<std::string> Uids() const {
    std::set<std::string> uids;
    for (const auto& [name, pod] : pods_) uids.insert(pod["metadata"]["uid"].get<std::string>());
    return uids;
  }

  std::map<std::string, AgentReport> reports_;  // pod name -> what its agent reports
};

inline std::vector<std::string> Names(const std::vector<json>& objects) {
  std::vector<std::string> names;
  for (const auto& o : objects) names.push_back(o["metadata"]["name"]);
  return names;
}

}  // namespace
}  // namespace poolkeeper::controller
