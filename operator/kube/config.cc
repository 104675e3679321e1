#include "kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/base64.h"
#include "common/files.h"

namespace poolkeeper::kube {
namespace {

constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";
constexpr char kExecV1[] = "client.authentication.k8s.io/v1";
constexpr char kExecV1Beta1[] = "client.authentication.k8s.io/v1beta1";

YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const char* field) {
  if (list && list.IsSequence()) {
    for (const auto& entry : list) {
      if (entry["name"] && entry["name"].as<std::string>() == name) return entry[field];
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string Quoted(const std::string& name) { return "[\"" + name + "\"]"; }

std::string Resolve(const std::string& path, const std::string& base_dir) {
  std::filesystem::path resolved = path;
  if (resolved.is_relative()) resolved = std::filesystem::path(base_dir) / resolved;
  return resolved.string();
}

// Reads a `<key>-data` (base64) or `<key>` (file path) pair into PEM text; `field` is the path of
// the map that holds them, for errors.
Status ReadPem(const YAML::Node& node, const std::string& key, const std::string& base_dir,
               const std::string& field, std::string& out) {
  if (node[key + "-data"]) {
    auto pem = DecodeBase64(node[key + "-data"].as<std::string>());
    if (!pem) return Invalid(field + "." + key + "-data", "not base64");
    out = *pem;
  } else if (node[key]) {
    auto pem = ReadFile(Resolve(node[key].as<std::string>(), base_dir));
    if (!pem) return Invalid(field + "." + key, pem.error().message);
    out = *pem;
  }
  return {};
}

Status ParseExec(const YAML::Node& exec, const std::string& field, const std::string& user_name,
                 const std::string& base_dir, ExecConfig& out) {
  out.user = user_name;
  if (!exec.IsMap()) return Invalid(field, "must be a map");
  if (!exec["command"] || exec["command"].as<std::string>().empty()) {
    return Invalid(field + ".command", "required");
  }
  out.command = exec["command"].as<std::string>();
  // As client-go: a relative path with a separator is relative to the kubeconfig; a bare name is
  // looked up on PATH.
  if (out.command.find('/') != std::string::npos) out.command = Resolve(out.command, base_dir);
  out.api_version = exec["apiVersion"] ? exec["apiVersion"].as<std::string>() : "";
  if (out.api_version != kExecV1 && out.api_version != kExecV1Beta1) {
    return Invalid(field + ".apiVersion", "\"" + out.api_version + "\" is not supported: use " +
                                              kExecV1 + " or " + kExecV1Beta1);
  }
  if (exec["args"]) {
    if (!exec["args"].IsSequence()) return Invalid(field + ".args", "must be a list");
    for (const auto& arg : exec["args"]) out.args.push_back(arg.as<std::string>());
  }
  if (exec["env"] && !exec["env"].IsNull()) {
    if (!exec["env"].IsSequence()) return Invalid(field + ".env", "must be a list");
    for (size_t i = 0; i < exec["env"].size(); ++i) {
      const YAML::Node entry = exec["env"][i];
      std::string at = field + ".env[" + std::to_string(i) + "]";
      if (!entry["name"] || entry["name"].as<std::string>().empty()) {
        return Invalid(at + ".name", "required");
      }
      if (!entry["value"]) return Invalid(at + ".value", "required");
      out.env.emplace_back(entry["name"].as<std::string>(), entry["value"].as<std::string>());
    }
  }
  if (exec["installHint"]) out.install_hint = exec["installHint"].as<std::string>();
  out.provide_cluster_info = exec["provideClusterInfo"] && exec["provideClusterInfo"].as<bool>();
  std::string mode = exec["interactiveMode"] ? exec["interactiveMode"].as<std::string>() : "";
  if (mode.empty() && out.api_version == kExecV1) {
    return Invalid(field + ".interactiveMode",
                   std::string("required for ") + kExecV1 + " (Never or IfAvailable)");
  }
  if (mode == "Always") {
    return Invalid(field + ".interactiveMode",
                   "Always needs a terminal and the operator has none: use Never or IfAvailable");
  }
  if (!mode.empty() && mode != "Never" && mode != "IfAvailable") {
    return Invalid(field + ".interactiveMode", "\"" + mode + "\": must be Never or IfAvailable");
  }
  return {};
}

// The user's credentials. Every key is either understood or refused: an auth method this client
// does not implement must not turn into an anonymous client.
Status ParseUser(const YAML::Node& user, const std::string& user_name, const std::string& base_dir,
                 ClusterConfig& config) {
  const std::string field = "users" + Quoted(user_name) + ".user";
  if (user.IsNull()) return {};
  if (!user.IsMap()) return Invalid(field, "must be a map");
  static const std::set<std::string> kUnderstood = {"client-certificate",
                                                    "client-certificate-data",
                                                    "client-key",
                                                    "client-key-data",
                                                    "token",
                                                    "tokenFile",
                                                    "exec",
                                                    "extensions"};
  for (const auto& entry : user) {
    const std::string key = entry.first.as<std::string>();
    if (kUnderstood.contains(key)) continue;
    if (key == "auth-provider") {
      std::string name = entry.second["name"] ? entry.second["name"].as<std::string>() : "";
      return Invalid(field + ".auth-provider",
                     "auth-provider \"" + name + "\" is not supported, use exec (a " + kExecV1 +
                         " credential plugin, e.g. gke-gcloud-auth-plugin or kubelogin)");
    }
    if (key == "username" || key == "password") {
      return Invalid(field + "." + key, "basic authentication is not supported");
    }
    if (key.rfind("as", 0) == 0) {
      return Invalid(field + "." + key, "impersonation is not supported");
    }
    return Invalid(field + "." + key, "unknown user field: refusing to connect without it");
  }
  if (auto s = ReadPem(user, "client-certificate", base_dir, field, config.client_cert_pem); !s) {
    return s;
  }
  if (auto s = ReadPem(user, "client-key", base_dir, field, config.client_key_pem); !s) return s;
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return Invalid(
        field + (config.client_key_pem.empty() ? ".client-key" : ".client-certificate"),
        "required with " +
            std::string(config.client_key_pem.empty() ? "client-certificate" : "client-key"));
  }
  if (user["token"]) config.token = user["token"].as<std::string>();
  if (user["tokenFile"]) config.token_file = Resolve(user["tokenFile"].as<std::string>(), base_dir);
  if (user["exec"] && !user["exec"].IsNull()) {
    if (!config.token.empty() || !config.token_file.empty() || !config.client_cert_pem.empty()) {
      return Invalid(field + ".exec",
                     "cannot be combined with token, tokenFile or a client certificate");
    }
    ExecConfig exec;
    if (auto s = ParseExec(user["exec"], field + ".exec", user_name, base_dir, exec); !s) return s;
    config.exec = std::move(exec);
  }
  return {};
}

// The cluster's exec extension, for KUBERNETES_EXEC_INFO. Scalars stay strings: the plugin reads
// its own configuration, and YAML's guesses at types are not ours to make.
nlohmann::json ToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& entry : node) out[entry.first.as<std::string>()] = ToJson(entry.second);
    return out;
  }
  if (node.IsSequence()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& entry : node) out.push_back(ToJson(entry));
    return out;
  }
  if (node.IsScalar()) return node.as<std::string>();
  return nullptr;
}

Status ParseCluster(const YAML::Node& cluster, const std::string& cluster_name,
                    const std::string& base_dir, ClusterConfig& config,
                    nlohmann::json& config_extension) {
  const std::string field = "clusters" + Quoted(cluster_name) + ".cluster";
  if (!cluster.IsDefined() || cluster.IsNull() || !cluster["server"]) {
    return Invalid(field + ".server", "cluster \"" + cluster_name + "\" has no server");
  }
  config.server = cluster["server"].as<std::string>();
  config.insecure_skip_tls_verify =
      cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>();
  const char* ca_key = cluster["certificate-authority-data"] ? "certificate-authority-data"
                       : cluster["certificate-authority"]    ? "certificate-authority"
                                                             : nullptr;
  if (config.insecure_skip_tls_verify && ca_key != nullptr) {
    // As kubectl: a CA with the insecure flag is a contradiction, and guessing which one was meant
    // either drops the check or breaks the connection.
    return Invalid(field + ".insecure-skip-tls-verify",
                   std::string("true together with ") + ca_key +
                       ": specifying a root certificates file with the insecure flag is not "
                       "allowed");
  }
  if (auto s = ReadPem(cluster, "certificate-authority", base_dir, field, config.ca_pem); !s) {
    return s;
  }
  if (ca_key != nullptr) config.ca_origin = field + "." + ca_key;
  if (cluster["tls-server-name"])
    config.tls_server_name = cluster["tls-server-name"].as<std::string>();
  if (auto extensions = cluster["extensions"]; extensions && extensions.IsSequence()) {
    for (const auto& extension : extensions) {
      if (extension["name"] &&
          extension["name"].as<std::string>() == "client.authentication.k8s.io/exec") {
        config_extension = ToJson(extension["extension"]);
      }
    }
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
    if (name.empty()) return Invalid("current-context", "not set and no context given");
    YAML::Node context = FindNamed(root["contexts"], name, "context");
    if (!context.IsDefined() || context.IsNull()) {
      return Invalid("contexts", "no context \"" + name + "\"");
    }
    std::string cluster_name = context["cluster"] ? context["cluster"].as<std::string>() : "";
    std::string user_name = context["user"] ? context["user"].as<std::string>() : "";
    ClusterConfig config;
    nlohmann::json config_extension;
    if (auto s = ParseCluster(FindNamed(root["clusters"], cluster_name, "cluster"), cluster_name,
                              base_dir, config, config_extension);
        !s) {
      return std::unexpected(s.error());
    }
    if (context["namespace"]) config.namespace_ = context["namespace"].as<std::string>();
    if (!user_name.empty()) {
      // A user named but missing would be anonymous: kubectl allows it, an operator should not.
      YAML::Node user = FindNamed(root["users"], user_name, "user");
      if (!user.IsDefined()) {
        return Invalid("contexts" + Quoted(name) + ".context.user",
                       "no user \"" + user_name + "\" in users");
      }
      if (auto s = ParseUser(user, user_name, base_dir, config); !s) {
        return std::unexpected(s.error());
      }
      if (config.exec) config.exec->cluster_config = std::move(config_extension);
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
  config.ca_origin = dir + "/ca.crt";
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
