#include "kube/config.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

#include "common/base64.h"
#include "common/files.h"

namespace poolkeeper::kube {
namespace {

constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

const YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const char* field) {
  if (list && list.IsSequence()) {
    for (const auto& entry : list) {
      if (entry["name"] && entry["name"].as<std::string>() == name) return entry[field];
    }
  }
  return YAML::Node();
}

// Reads a `<key>-data` (base64) or `<key>` (file path) pair into PEM text.
Status ReadPem(const YAML::Node& node, const std::string& key, const std::string& base_dir,
               std::string& out) {
  if (node[key + "-data"]) {
    auto pem = DecodeBase64(node[key + "-data"].as<std::string>());
    if (!pem) return Fail(ErrorCode::kInvalid, "kubeconfig: " + key + "-data is not base64");
    out = *pem;
  } else if (node[key]) {
    std::filesystem::path path = node[key].as<std::string>();
    if (path.is_relative()) path = std::filesystem::path(base_dir) / path;
    auto pem = ReadFile(path.string());
    if (!pem) return std::unexpected(pem.error());
    out = *pem;
  }
  return {};
}

}  // namespace

std::optional<std::string> ProcessGetenv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (!value) return std::nullopt;
  return std::string(value);
}

Result<ClusterConfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                      const std::string& context_name) {
  try {
    YAML::Node root = YAML::Load(text);
    std::string name = context_name;
    if (name.empty() && root["current-context"]) name = root["current-context"].as<std::string>();
    if (name.empty()) return Fail(ErrorCode::kInvalid, "kubeconfig: no current-context");
    YAML::Node context = FindNamed(root["contexts"], name, "context");
    if (!context.IsDefined() || context.IsNull())
      return Fail(ErrorCode::kInvalid, "kubeconfig: no context \"" + name + "\"");
    std::string cluster_name = context["cluster"] ? context["cluster"].as<std::string>() : "";
    std::string user_name = context["user"] ? context["user"].as<std::string>() : "";
    YAML::Node cluster = FindNamed(root["clusters"], cluster_name, "cluster");
    if (!cluster.IsDefined() || cluster.IsNull() || !cluster["server"]) {
      return Fail(ErrorCode::kInvalid,
                  "kubeconfig: cluster \"" + cluster_name + "\" has no server");
    }
    ClusterConfig config;
    config.server = cluster["server"].as<std::string>();
    if (context["namespace"]) config.namespace_ = context["namespace"].as<std::string>();
    config.insecure_skip_tls_verify =
        cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>();
    if (auto s = ReadPem(cluster, "certificate-authority", base_dir, config.ca_pem); !s) {
      return std::unexpected(s.error());
    }
    YAML::Node user = FindNamed(root["users"], user_name, "user");
    if (user.IsDefined() && user.IsMap()) {
      if (auto s = ReadPem(user, "client-certificate", base_dir, config.client_cert_pem); !s) {
        return std::unexpected(s.error());
      }
      if (auto s = ReadPem(user, "client-key", base_dir, config.client_key_pem); !s) {
        return std::unexpected(s.error());
      }
      if (user["token"]) config.token = user["token"].as<std::string>();
      if (user["tokenFile"]) {
        std::filesystem::path path = user["tokenFile"].as<std::string>();
        if (path.is_relative()) path = std::filesystem::path(base_dir) / path;
        config.token_file = path.string();
      }
    }
    return config;
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalid, std::string("kubeconfig: ") + e.what());
  }
}

Result<ClusterConfig> InClusterConfig(const Getenv& getenv) {
  auto host = getenv("KUBERNETES_SERVICE_HOST");
  auto port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    return Fail(ErrorCode::kInvalid,
                "no kubeconfig given (--kubeconfig, KUBECONFIG) and not in a cluster "
                "(KUBERNETES_SERVICE_HOST/PORT unset)");
  }
  std::string dir = getenv("POOLKEEPER_SERVICEACCOUNT_DIR").value_or(kServiceAccountDir);
  ClusterConfig config;
  bool ipv6 = host->find(':') != std::string::npos;
  config.server = "https://" + (ipv6 ? "[" + *host + "]" : *host) + ":" + *port;
  config.token_file = dir + "/token";
  auto ca = ReadFile(dir + "/ca.crt");
  if (!ca) return std::unexpected(ca.error());
  config.ca_pem = *ca;
  if (auto ns = ReadFile(dir + "/namespace"); ns && !ns->empty()) config.namespace_ = *ns;
  return config;
}

Result<ClusterConfig> LoadClusterConfig(const std::string& kubeconfig_flag, const Getenv& getenv) {
  std::string path = kubeconfig_flag;
  if (path.empty()) {
    std::string env = getenv("KUBECONFIG").value_or("");
    path = env.substr(0, env.find(':'));
  }
  if (path.empty()) return InClusterConfig(getenv);
  auto text = ReadFile(path);
  if (!text) return std::unexpected(text.error());
  return ParseKubeconfig(*text, std::filesystem::path(path).parent_path().string());
}

}  // namespace poolkeeper::kube
