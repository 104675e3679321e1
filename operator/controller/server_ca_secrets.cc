// ServerCaSecrets: a read by name, cut down to the certificate, kept for a while.
#include "controller/server_ca_secrets.h"

namespace poolkeeper::controller {

std::optional<secrets::Secret> ServerCaSecrets::Find(const std::string& namespace_,
                                                     const std::string& name) const {
  const auto key = std::make_pair(namespace_, name);
  {
    std::lock_guard guard(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end() && clock_.Now() - it->second.read_at < ttl_) return it->second.secret;
  }
  // Outside the lock: a slow read must not hold up the pools of other servers.
  std::optional<secrets::Secret> found;
  if (auto stored = client_.Get(kube::resources::kSecret, namespace_, name)) {
    if (auto secret = secrets::ParseSecret(*stored)) {
      auto ca = secret->data.find("ca.crt");
      std::map<std::string, std::string> kept;
      if (ca != secret->data.end()) kept.emplace(ca->first, std::move(ca->second));
      secret->data = std::move(kept);  // never the issuer's private key
      found = std::move(*secret);
    }
  }
  std::lock_guard guard(mutex_);
  cache_[key] = Entry{clock_.Now(), found};
  return found;
}

void ServerCaSecrets::Forget(const std::string& namespace_, const std::string& name) {
  std::lock_guard guard(mutex_);
  cache_.erase(std::make_pair(namespace_, name));
}

}  // namespace poolkeeper::controller
