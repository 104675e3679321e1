// The CA certificates PostgresServers name (spec.caSecretRef), read for the pools that verify
// their server with that CA (api::ServerTlsSpec::ca_from_server; the reconciler copies the
// certificate into the pool's ConfigMap). The Secret may be in any namespace and carries no
// opt-in label (only cluster administrators create PostgresServers), so it is not in the labelled
// cache: it is read by name (GET), and kept for `ttl` so that the pools of one server, reconciled
// together after a change, cost one read. ServerCaWatch (server_ca_watch.h) tells when the Secret
// changed: the entry is forgotten and the server's pools are queued, so a new CA reaches them at
// once; without that (a watch the operator may not open) within `ttl` of their next pass (every
// pool is passed again after --resync-seconds).
//
// Only the key ca.crt is kept: the Secret of a CA issuer (cert-manager's, for one) also holds the
// CA's private key, which the operator must never hold longer than the read. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "common/clock.h"
#include "kube/client.h"
#include "secrets/secrets.h"

namespace poolkeeper::controller {

class ServerCaSecrets : public secrets::SecretSource {
 public:
  ServerCaSecrets(kube::Client& client, const Clock& clock, std::chrono::seconds ttl)
      : client_(client), clock_(clock), ttl_(ttl) {}

  // The Secret with only its ca.crt (when it has one); nullopt when it cannot be read (404,
  // RBAC, network): the pool reports the CA missing and its next pass reads again.
  std::optional<secrets::Secret> Find(const std::string& namespace_,
                                      const std::string& name) const override;
  // The Secret changed: the next Find reads it again.
  void Forget(const std::string& namespace_, const std::string& name);

 private:
  struct Entry {
    Clock::TimePoint read_at;
    std::optional<secrets::Secret> secret;
  };
  kube::Client& client_;
  const Clock& clock_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<std::string, std::string>, Entry> cache_;
};

}  // namespace poolkeeper::controller
