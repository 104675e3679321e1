// What a request to the API server authenticates with, built once per cluster configuration: a
// static token, a token file (re-read on every use: service-account tokens rotate), a client
// certificate, or an exec credential plugin (client.authentication.k8s.io/v1 or v1beta1, as
// EKS, GKE and OIDC logins ship them). A plugin's credential is cached until shortly before its
// expirationTimestamp, and thrown away when the server answers 401 with it. A plugin that fails
// is an error naming the user and the command, never an anonymous request. Nothing here logs a
// token.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/error.h"
#include "kube/config.h"
#include "kube/process.h"

namespace poolkeeper::kube {

struct Credential {
  std::string token;  // bearer token; empty: none
  std::string client_cert_pem;
  std::string client_key_pem;
  uint64_t generation = 0;  // which run of the plugin produced it (0: static)
};

class Credentials {
 public:
  using WallClock = std::function<int64_t()>;  // seconds since the epoch
  // `runner` runs exec plugins (unused without one); `now` is the wall clock the plugin's
  // expirationTimestamp is compared with.
  Credentials(ClusterConfig config, std::shared_ptr<ProcessRunner> runner, WallClock now = UnixNow);

  // The credential for the next request: the static one, or the plugin's, run again when none is
  // cached, it expires within the refresh margin, or the server rejected it.
  Result<Credential> Current();

  // The server answered 401 to a request made with `used`. Returns true when asking Current()
  // again can give another credential (a plugin), so the request is worth one retry.
  bool Rejected(const Credential& used);

  // KUBERNETES_EXEC_INFO for the plugin: the ExecCredential it is asked for (spec.interactive is
  // false: the operator has no terminal; spec.cluster when provideClusterInfo).
  std::string ExecInfo() const;

 private:
  Result<Credential> RunPlugin();

  const ClusterConfig config_;
  const std::shared_ptr<ProcessRunner> runner_;
  const WallClock now_;
  std::mutex mutex_;  // one plugin run at a time; the others wait for its credential
  std::optional<Credential> cached_;
  int64_t expires_ = 0;     // 0: no expiry given
  int64_t refresh_at_ = 0;  // when to run the plugin again, a little before expires_
  uint64_t runs_ = 0;
};

// Reads a plugin's standard output: an ExecCredential of `api_version` with status.token and/or
// status.clientCertificateData + clientKeyData, and an optional expirationTimestamp (seconds
// since the epoch, 0 when absent). Errors say what is wrong with it, never what the token is.
struct ExecCredentialStatus {
  Credential credential;
  int64_t expires = 0;
};
Result<ExecCredentialStatus> ParseExecCredential(const std::string& output,
                                                 const std::string& api_version);

}  // namespace poolkeeper::kube
