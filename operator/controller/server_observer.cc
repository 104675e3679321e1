#include "controller/server_observer.h"

#include <algorithm>

#include "common/files.h"
#include "common/log.h"
#include "common/thread.h"
#include "controller/resources.h"
#include "controller/role_limits.h"
#include "controller/server_status.h"
#include "secrets/secrets.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

// How soon a server that could not be observed is tried again (its interval may be long).
constexpr std::chrono::seconds kRetryUnreachable{10};

}  // namespace

api::ServerObservation ToApiObservation(const postgres::Observation& seen, std::string now) {
  return {seen.max_connections,
          seen.superuser_reserved_connections,
          seen.reserved_connections,
          seen.server_version,
          seen.system_identifier,
          seen.in_use_by_others,
          seen.role_limits,
          seen.database_limits,
          std::move(now)};
}

Status ServerObserver::Start() {
  auto started = StartThread("server-observer", [this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      RunDue();
      lock.lock();
      // A bounded wait: due times move with the Clock, pokes wake it at once.
      wake_.wait_for(lock, std::chrono::seconds(1),
                     [this] { return stopping_ || !poked_.empty(); });
    }
  });
  if (!started) return std::unexpected(started.error());
  thread_ = std::move(*started);
  return {};
}

void ServerObserver::Stop() {
  {
    std::lock_guard guard(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServerObserver::Poke(const std::string& name) {
  {
    std::lock_guard guard(mutex_);
    poked_.insert(name);
  }
  wake_.notify_all();
}

int ServerObserver::RunDue() {
  const Clock::TimePoint now = deps_.clock.Now();
  std::vector<std::string> due;
  {
    std::lock_guard guard(mutex_);
    std::set<std::string> present;
    for (const auto& object : deps_.servers.List()) {
      const std::string name = object->value("/metadata/name"_json_pointer, "");
      present.insert(name);
      auto next = next_.find(name);
      if (poked_.contains(name) || next == next_.end() || next->second <= now) due.push_back(name);
    }
    std::erase_if(next_, [&](const auto& entry) { return !present.contains(entry.first); });
    poked_.clear();
  }
  for (const auto& name : due) {
    Status recorded = ObserveAndRecord(name);
    if (!recorded) {
      Log(LogLevel::kWarn, "recording a server's status failed",
          {{"server", name}, {"error", recorded.error().message}});
    }
  }
  return static_cast<int>(due.size());
}

Result<postgres::Endpoint> ServerObserver::EndpointOf(const api::PostgresServer& server) {
  const api::PostgresServerSpec& spec = server.spec;
  auto secret = [this](const api::NamespacedSecretRef& ref,
                       const char* field) -> Result<secrets::Secret> {
    auto stored = deps_.client.Get(kube::resources::kSecret, ref.namespace_, ref.name);
    if (!stored) {
      Error error = stored.error();
      error.message = std::string("spec.") + field + ": Secret " + ref.namespace_ + "/" + ref.name +
                      ": " + error.message;
      return std::unexpected(error);
    }
    return secrets::ParseSecret(*stored);
  };
  auto credentials = secret(*spec.credentials_secret_ref, "credentialsSecretRef");
  if (!credentials) return std::unexpected(credentials.error());
  postgres::Endpoint endpoint{.host = spec.host, .port = spec.port, .sslmode = spec.ssl_mode};
  for (const char* key : {"username", "password"}) {
    auto it = credentials->data.find(key);
    if (it == credentials->data.end()) {
      return Fail(ErrorCode::kNotFound, std::string("spec.credentialsSecretRef: Secret ") +
                                            credentials->namespace_ + "/" + credentials->name +
                                            " has no key " + key);
    }
    (std::string_view(key) == "username" ? endpoint.user : endpoint.password) = it->second;
  }
  if (spec.ca_secret_ref) {
    auto ca = secret(*spec.ca_secret_ref, "caSecretRef");
    if (!ca) return std::unexpected(ca.error());
    auto it = ca->data.find("ca.crt");
    if (it == ca->data.end()) {
      return Fail(ErrorCode::kNotFound, "spec.caSecretRef: Secret " + ca->namespace_ + "/" +
                                            ca->name + " has no key ca.crt");
    }
    // libpq reads a CA bundle from a file only.
    endpoint.sslrootcert = deps_.ca_dir + "/" + server.name + ".crt";
    Status written = MakeDirectories(deps_.ca_dir);
    if (written) written = WriteFileAtomically(endpoint.sslrootcert, it->second, 0600);
    if (!written) return std::unexpected(written.error());
  }
  return endpoint;
}

Status ServerObserver::ObserveAndRecord(const std::string& name) {
  kube::ObjectPtr stored = deps_.servers.Get("", name);
  if (!stored) return {};
  ServerStatusInputs in{*stored,     api::ParsePostgresServer(*stored), std::nullopt, nullptr, {},
                        Rfc3339Now()};
  std::chrono::seconds interval{30};
  const auto cached = deps_.registry.Directory();  // one snapshot for the whole pass
  std::vector<api::PostgresServer> servers = cached->servers();
  Result<postgres::Endpoint> endpoint = Fail(ErrorCode::kNotFound, "no credentialsSecretRef");
  if (in.server) {
    interval = std::chrono::seconds(in.server->spec.observe_interval_seconds);
    if (in.server->spec.credentials_secret_ref) {
      endpoint = EndpointOf(*in.server);
      if (endpoint) {
        auto seen = deps_.database.Observe(
            *endpoint,
            deps_.holdings.PodAddresses(cached->SharingBudgetWith(api::ServerRefKey(name))));
        if (seen) {
          in.observation = ToApiObservation(*seen, in.now);
        } else {
          in.observation = std::unexpected(seen.error());
        }
      } else {
        in.observation = std::unexpected(endpoint.error());
      }
      // Plan the status on what was just seen, not on what the caches still hold.
      api::PostgresServer fresh = *in.server;
      fresh.unreachable = !*in.observation;
      if (*in.observation) fresh.observed = **in.observation;
      std::erase_if(servers, [&](const api::PostgresServer& s) { return s.name == name; });
      servers.push_back(fresh);
      if (!*in.observation) interval = std::min(interval, kRetryUnreachable);
    }
  }
  const budget::ServerDirectory directory(std::move(servers));
  in.directory = &directory;
  const std::set<std::string> references = directory.SharingBudgetWith(api::ServerRefKey(name));
  const std::vector<budget::SharedPool> pools = deps_.pools.OnServers(references);
  const budget::Holdings holdings = deps_.holdings.OnServers(references);
  in.plan = budget::PlanOnServers(pools, directory, holdings);
  {
    std::lock_guard guard(mutex_);
    next_[name] = deps_.clock.Now() + interval;
  }
  if (in.server && in.observation && *in.observation) {
    const api::PostgresServer& server = *in.server;
    const bool enforcing = server.spec.enforce_role_limits && !server.deleting;
    if (enforcing || !server.managed_role_limits.empty()) {
      in.role_limits =
          ApplyRoleLimits(deps_.database, *endpoint,
                          enforcing ? budget::RoleGrants(pools, directory, in.plan, holdings)
                                    : std::map<std::string, int64_t>{},
                          **in.observation, server.managed_role_limits);
    }
  }
  // authQuery: not while the server cannot be reached (the Reachable condition says why).
  const bool unreachable = endpoint && in.observation && !*in.observation;
  if (in.server && !unreachable && !deps_.secret_namespace.empty()) {
    const std::vector<std::string> wanted =
        in.server->deleting ? std::vector<std::string>{} : AuthQueryDatabases(pools, name);
    // The directory holds this server with what was just observed (its system identifier).
    const api::PostgresServer* self = directory.Find(name);
    in.auth_query = KeepAuthQuery({deps_.client, deps_.database, deps_.secret_namespace},
                                  self ? *self : *in.server, *stored, endpoint, wanted,
                                  AuthRoleManager(directory.servers(), pools, name));
  }
  if (Status kept = KeepFinalizer(*stored, in); !kept) return kept;
  json status = BuildServerStatus(in);
  if (status == stored->value("status", json::object())) return {};
  json object = {{"apiVersion", std::string(kPostgresServerType.ApiVersion())},
                 {"kind", kPostgresServerType.kind},
                 {"metadata", {{"name", name}}},
                 {"status", std::move(status)}};
  auto applied = deps_.client.ApplyStatus(kPostgresServerType, object, kube::Reply::kStatusOnly);
  if (!applied) return std::unexpected(applied.error());
  return {};
}

// While the operator has limits of the server's roles to restore, the server object waits for
// them: the finalizer is added when enforcement starts and removed once nothing is left to
// restore (enforcement turned off, or the server deleted and every role restored).
Status ServerObserver::KeepFinalizer(const json& stored, const ServerStatusInputs& in) {
  if (!in.server) return {};
  const std::vector<api::ManagedRoleLimit>& managed =
      in.role_limits ? in.role_limits->managed : in.server->managed_role_limits;
  const bool want =
      (in.server->spec.enforce_role_limits && !in.server->deleting) || !managed.empty();
  json finalizers = stored.value("/metadata/finalizers"_json_pointer, json::array());
  const bool has = std::ranges::find(finalizers, json(kRoleLimitsFinalizer)) != finalizers.end();
  if (want == has) return {};
  if (want) {
    finalizers.push_back(kRoleLimitsFinalizer);
  } else {
    json kept = json::array();
    for (const auto& f : finalizers) {
      if (f != kRoleLimitsFinalizer) kept.push_back(f);
    }
    finalizers = std::move(kept);
  }
  // The resourceVersion makes it a compare-and-swap: another writer's finalizer is not lost.
  auto patched = deps_.client.MergePatch(
      kPostgresServerType, "", in.server->name,
      {{"metadata",
        {{"finalizers", finalizers},
         {"resourceVersion", stored.value("/metadata/resourceVersion"_json_pointer, "")}}}},
      "", kube::Reply::kStatusOnly);
  if (!patched) return std::unexpected(patched.error());
  return {};
}

}  // namespace poolkeeper::controller
