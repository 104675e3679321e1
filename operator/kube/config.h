// Where the API server is and how to authenticate to it, found the way kubectl finds it:
// --kubeconfig, else $KUBECONFIG, else the in-cluster service account. Certificates are loaded as
// PEM text; a token file is kept as a path so a rotated service-account token is re-read.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/error.h"

namespace poolkeeper::kube {

struct ClusterConfig {
  std::string server;  // https://host:port
  std::string ca_pem;  // empty: system trust store
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;       // a static bearer token
  std::string token_file;  // re-read on use (service-account tokens rotate)
  bool insecure_skip_tls_verify = false;
  std::string namespace_ = "default";  // the context's or the service account's namespace
};

using Getenv = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> ProcessGetenv(const std::string& name);

// Parses kubeconfig text; relative file paths are resolved against `base_dir`. `context` picks a
// context other than current-context.
Result<ClusterConfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                      const std::string& context = "");

// The in-cluster configuration from KUBERNETES_SERVICE_HOST/PORT and the service-account directory
// (/var/run/secrets/kubernetes.io/serviceaccount, or $POOLKEEPER_SERVICEACCOUNT_DIR).
Result<ClusterConfig> InClusterConfig(const Getenv& getenv);

// --kubeconfig if given, else $KUBECONFIG (first entry), else in-cluster.
Result<ClusterConfig> LoadClusterConfig(const std::string& kubeconfig_flag, const Getenv& getenv);

}  // namespace poolkeeper::kube
