// Observes every PostgresServer that has credentials, on its own interval and at once when it is
// created or its spec changes: connects with libpq (postgres::ServerClient) as the role its
// credentials Secret names, reads the server's own figures, and records them with the budget the
// pools are planned against in the server's status (server_status.h). The status is what the
// operator's caches (ServerRegistry) plan from, so a lower max_connections, other clients taking
// connections, or an unreachable server reach every pool of the budget through the informer. Runs
// on the leader only; one thread, one server at a time (a server is a handful of queries).
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/clock.h"
#include "controller/holdings.h"
#include "controller/pool_index.h"
#include "controller/server_registry.h"
#include "controller/server_status.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "postgres/observer.h"

namespace poolkeeper::controller {

// What the server reported, as a PostgresServer's status records it.
api::ServerObservation ToApiObservation(const postgres::Observation& seen, std::string now);

struct ServerObserverDeps {
  kube::Client& client;
  const Clock& clock;
  postgres::ServerClient& database;
  const kube::Informer& servers;  // the stored PostgresServers
  const ServerRegistry& registry;
  const PoolIndex& pools;
  const HoldingsIndex& holdings;
  std::string ca_dir;                 // where CA bundles from caSecretRef are written for libpq
  std::string secret_namespace = {};  // authQuery's Secrets (auth_query.h); empty: not set up
};

class ServerObserver {
 public:
  explicit ServerObserver(ServerObserverDeps deps) : deps_(std::move(deps)) {}
  ~ServerObserver() { Stop(); }
  ServerObserver(const ServerObserver&) = delete;
  ServerObserver& operator=(const ServerObserver&) = delete;

  Status Start();  // kUnavailable when its thread cannot be created
  void Stop();
  // Observe `name` at the next turn (created, or its spec changed).
  void Poke(const std::string& name);
  // Observes and records every server that is due; returns how many were. The thread calls it;
  // so can a test.
  int RunDue();

 private:
  Status ObserveAndRecord(const std::string& name);
  Result<postgres::Endpoint> EndpointOf(const api::PostgresServer& server);
  Status KeepFinalizer(const nlohmann::json& stored, const ServerStatusInputs& in);

  ServerObserverDeps deps_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::set<std::string> poked_;
  std::map<std::string, Clock::TimePoint> next_;  // by name
  std::thread thread_;
};

}  // namespace poolkeeper::controller
