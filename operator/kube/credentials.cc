#include "kube/credentials.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/files.h"
#include "common/json_get.h"
#include "common/log.h"

namespace poolkeeper::kube {
namespace {

// A plugin's credential is replaced this long before it expires (less for short-lived ones), so
// a request never goes out with a token that lapses on the way.
constexpr int64_t kRefreshMargin = 30;
constexpr size_t kStderrInError = 300;

std::string Tail(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() > kStderrInError) text = "..." + text.substr(text.size() - kStderrInError);
  return text;
}

Result<std::string> StringField(const nlohmann::json& status, const char* name) {
  if (!status.contains(name) || status[name].is_null()) return std::string();
  if (!status[name].is_string()) {
    return Fail(ErrorCode::kInvalid, std::string("status.") + name + " is not a string");
  }
  return status[name].get<std::string>();
}

}  // namespace

Result<ExecCredentialStatus> ParseExecCredential(const std::string& output,
                                                 const std::string& api_version) {
  nlohmann::json doc = nlohmann::json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return Fail(ErrorCode::kInvalid, "its output is not a JSON object");
  std::string got = JsonGet<std::string>(doc, "apiVersion", "");
  if (got != api_version) {
    return Fail(ErrorCode::kInvalid,
                "it returned apiVersion \"" + got + "\", configured for \"" + api_version + "\"");
  }
  if (JsonGet<std::string>(doc, "kind", "") != "ExecCredential") {
    return Fail(ErrorCode::kInvalid, "its output is not an ExecCredential");
  }
  if (!doc.contains("status") || !doc["status"].is_object()) {
    return Fail(ErrorCode::kInvalid, "its ExecCredential has no status");
  }
  const nlohmann::json& status = doc["status"];
  ExecCredentialStatus out;
  auto token = StringField(status, "token");
  auto cert = StringField(status, "clientCertificateData");
  auto key = StringField(status, "clientKeyData");
  auto expiry = StringField(status, "expirationTimestamp");
  for (const auto* field : {&token, &cert, &key, &expiry}) {
    if (!*field) return std::unexpected(field->error());
  }
  out.credential.token = *token;
  out.credential.client_cert_pem = *cert;
  out.credential.client_key_pem = *key;
  if (cert->empty() != key->empty()) {
    return Fail(ErrorCode::kInvalid,
                "it returned only one of status.clientCertificateData and status.clientKeyData");
  }
  if (token->empty() && cert->empty()) {
    return Fail(ErrorCode::kInvalid,
                "it returned neither status.token nor status.clientCertificateData/clientKeyData");
  }
  if (!expiry->empty()) {
    auto seconds = ParseRfc3339(*expiry);
    if (!seconds) {
      return Fail(ErrorCode::kInvalid,
                  "status.expirationTimestamp \"" + *expiry + "\" is not an RFC 3339 UTC time");
    }
    out.expires = *seconds;
  }
  return out;
}

Credentials::Credentials(ClusterConfig config, std::shared_ptr<ProcessRunner> runner, WallClock now)
    : config_(std::move(config)), runner_(std::move(runner)), now_(std::move(now)) {}

Result<Credential> Credentials::Current() {
  if (!config_.exec) {
    Credential credential{config_.token, config_.client_cert_pem, config_.client_key_pem, 0};
    if (!config_.token_file.empty()) {
      auto token = ReadFile(config_.token_file);
      if (!token) return std::unexpected(token.error());
      while (!token->empty() && (token->back() == '\n' || token->back() == '\r')) {
        token->pop_back();
      }
      credential.token = *token;
    }
    return credential;
  }
  std::lock_guard guard(mutex_);
  const int64_t now = now_();
  if (cached_ && (expires_ == 0 || now < refresh_at_)) return *cached_;
  auto fresh = RunPlugin();
  if (!fresh && cached_ && (expires_ == 0 || now < expires_)) {
    // Still valid for a few seconds: use it, and try the plugin again on the next request.
    Log(LogLevel::kWarn, "exec credential plugin failed; using the credential until it expires",
        {{"user", config_.exec->user}, {"error", fresh.error().message}});
    return *cached_;
  }
  return fresh;
}

bool Credentials::Rejected(const Credential& used) {
  if (!config_.exec) return false;
  std::lock_guard guard(mutex_);
  if (cached_ && cached_->generation == used.generation) cached_.reset();
  return true;
}

std::string Credentials::ExecInfo() const {
  const ExecConfig& exec = *config_.exec;
  nlohmann::json spec = {{"interactive", false}};
  if (exec.provide_cluster_info) {
    nlohmann::json cluster = {{"server", config_.server}};
    if (!config_.tls_server_name.empty()) cluster["tls-server-name"] = config_.tls_server_name;
    if (config_.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!config_.ca_pem.empty())
      cluster["certificate-authority-data"] = EncodeBase64(config_.ca_pem);
    if (!exec.cluster_config.is_null()) cluster["config"] = exec.cluster_config;
    spec["cluster"] = std::move(cluster);
  }
  nlohmann::json info = {
      {"apiVersion", exec.api_version}, {"kind", "ExecCredential"}, {"spec", std::move(spec)}};
  return info.dump();
}

Result<Credential> Credentials::RunPlugin() {
  const ExecConfig& exec = *config_.exec;
  const std::string who = "user \"" + exec.user + "\": exec plugin \"" + exec.command + "\"";
  if (!runner_) return Fail(ErrorCode::kInternal, who + ": nothing to run it with");
  ProcessSpec spec;
  spec.argv.push_back(exec.command);
  spec.argv.insert(spec.argv.end(), exec.args.begin(), exec.args.end());
  spec.env = exec.env;
  spec.env.emplace_back("KUBERNETES_EXEC_INFO", ExecInfo());
  auto ran = runner_->Run(spec);
  if (!ran) {
    std::string message = who + ": " + ran.error().message;
    if (ran.error().code == ErrorCode::kNotFound && !exec.install_hint.empty()) {
      message += "\n" + exec.install_hint;
    }
    ErrorCode code =
        ran.error().code == ErrorCode::kNotFound ? ErrorCode::kInvalid : ran.error().code;
    return Fail(code, message);
  }
  if (ran->exit_code != 0) {
    // The plugin's own words say why (expired login, no network); they are about the plugin,
    // not a token, and are cut short.
    return Fail(ErrorCode::kUnavailable, who + " exited with " + std::to_string(ran->exit_code) +
                                             (ran->err.empty() ? "" : ": " + Tail(ran->err)));
  }
  auto parsed = ParseExecCredential(ran->out, exec.api_version);
  if (!parsed) return Fail(ErrorCode::kInvalid, who + ": " + parsed.error().message);
  const int64_t now = now_();
  if (parsed->expires != 0 && parsed->expires <= now) {
    return Fail(ErrorCode::kUnavailable, who + ": it returned a credential that has expired");
  }
  parsed->credential.generation = ++runs_;
  cached_ = parsed->credential;
  expires_ = parsed->expires;
  refresh_at_ = expires_ - std::min(kRefreshMargin, (expires_ - now) / 2);
  Log(LogLevel::kInfo, "exec credential plugin ran",
      {{"user", exec.user},
       {"command", exec.command},
       {"expires", expires_ == 0 ? "never" : FormatRfc3339(expires_)}});
  return *cached_;
}

}  // namespace poolkeeper::kube
