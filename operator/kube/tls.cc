#include "kube/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace poolkeeper::kube {
namespace {

// Before the ClientHello is written: SNI carries the name the certificate is checked against
// (the URL's host, or tls-server-name), as client-go's ServerName does.
void SetServerName(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  SSL* mutable_ssl = const_cast<SSL*>(ssl);
  const char* host = X509_VERIFY_PARAM_get0_host(SSL_get0_param(mutable_ssl), 0);
  if (host != nullptr) SSL_set_tlsext_host_name(mutable_ssl, host);
}

bool IsIpAddress(const std::string& name) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

}  // namespace

std::string UrlHost(const std::string& url) {
  std::string rest = url;
  if (auto scheme = rest.find("://"); scheme != std::string::npos) rest = rest.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.find(':'));
}

Result<std::shared_ptr<const TlsSettings>> TlsSettings::Make(const ClusterConfig& config) {
  std::shared_ptr<TlsSettings> settings(new TlsSettings());
  settings->insecure_ = config.insecure_skip_tls_verify;
  settings->name_ =
      config.tls_server_name.empty() ? UrlHost(config.server) : config.tls_server_name;
  settings->name_is_ip_ = IsIpAddress(settings->name_);
  if (settings->name_.empty()) return Invalid("server", "no host in \"" + config.server + "\"");
  if (config.ca_pem.empty() || settings->insecure_) return settings;
  const std::string origin = config.ca_origin.empty() ? "certificate-authority" : config.ca_origin;
  settings->store_ = X509_STORE_new();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(config.ca_pem.data(), static_cast<int>(config.ca_pem.size())), BIO_free);
  if (!settings->store_ || !bio) return Fail(ErrorCode::kInternal, "out of memory");
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(settings->store_, cert) == 1) ++added;
    X509_free(cert);
  }
  ERR_clear_error();  // the read that ends the loop leaves "no start line" behind
  if (added == 0) return Invalid(origin, "holds no PEM certificate");
  // As Go's (client-go's) roots: every configured certificate is an anchor, an intermediate too.
  X509_STORE_set_flags(settings->store_, X509_V_FLAG_PARTIAL_CHAIN);
  return settings;
}

TlsSettings::~TlsSettings() { X509_STORE_free(store_); }

void TlsSettings::Apply(SSL_CTX* context) const {
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  if (insecure_) return;
  // Only the configured CA is trusted (the store is shared, each context holds a reference);
  // the system's, as a kubeconfig without a CA wants, only when none is configured.
  if (store_ != nullptr) {
    SSL_CTX_set1_cert_store(context, store_);
  } else {
    SSL_CTX_set_default_verify_paths(context);
  }
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(context);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (name_is_ip_) {
    X509_VERIFY_PARAM_set1_ip_asc(param, name_.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, name_.c_str(), name_.size());
  }
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_info_callback(context, SetServerName);
}

}  // namespace poolkeeper::kube
