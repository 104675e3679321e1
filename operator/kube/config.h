// Where the API server is and how to authenticate to it, found the way kubectl finds it:
// --kubeconfig, else $KUBECONFIG, else the in-cluster service account. Certificates are loaded as
// PEM text; a token file is kept as a path so a rotated service-account token is re-read; an exec
// credential plugin is kept as what to run (credentials.h runs it). Every user auth method is
// either understood here or refused with the kubeconfig field named: nothing unknown falls back
// to anonymous.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace poolkeeper::kube {

// A kubeconfig user's `exec` section: a client.authentication.k8s.io ExecCredential plugin.
struct ExecConfig {
  std::string user;     // the kubeconfig user's name, for errors
  std::string command;  // a path (relative ones resolved against the kubeconfig) or a name on PATH
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string api_version;  // client.authentication.k8s.io/v1 or /v1beta1
  std::string install_hint;
  bool provide_cluster_info = false;
  nlohmann::json cluster_config;  // the cluster's extension "client.authentication.k8s.io/exec"
};

struct ClusterConfig {
  std::string server;  // https://host:port
  // The only trust anchors for the server's certificate; empty: the system store (as kubectl,
  // when the kubeconfig names no CA at all).
  std::string ca_pem;
  std::string ca_origin;        // where ca_pem came from (a kubeconfig field or a path), for errors
  std::string tls_server_name;  // the name the server's certificate must carry, if not the host's
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;       // a static bearer token
  std::string token_file;  // re-read on use (service-account tokens rotate)
  std::optional<ExecConfig> exec;
  bool insecure_skip_tls_verify = false;
  std::string namespace_ = "default";  // the context's or the service account's namespace
};

using Getenv = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> ProcessGetenv(const std::string& name);

// Parses kubeconfig text; relative file paths are resolved against `base_dir`. `context` picks a
// context other than current-context. Errors name the field, e.g. users["dev"].user.exec.command.
Result<ClusterConfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                      const std::string& context = "");

// The in-cluster configuration from KUBERNETES_SERVICE_HOST/PORT and the service-account directory
// (/var/run/secrets/kubernetes.io/serviceaccount, or $POOLKEEPER_SERVICEACCOUNT_DIR).
Result<ClusterConfig> InClusterConfig(const Getenv& getenv);

// --kubeconfig if given, else $KUBECONFIG (first entry), else in-cluster.
Result<ClusterConfig> LoadClusterConfig(const std::string& kubeconfig_flag, const Getenv& getenv);

}  // namespace poolkeeper::kube
