// TLS to the API server, built once per cluster configuration and applied to every client SSL
// context: the configured CA is the only trust anchor (the system store is dropped, so a server
// certificate from any other CA is refused before a request, and its token, is sent), the
// server's certificate must name the host of the server URL (DNS or IP SAN) or the kubeconfig's
// tls-server-name, and TLS 1.2 is the floor. With insecure-skip-tls-verify nothing is checked
// (the transport warns). Only kube's .cc files and tests include this header (it is OpenSSL's).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "common/error.h"
#include "kube/config.h"

namespace poolkeeper::kube {

class TlsSettings {
 public:
  // Parses the CA bundle once; kInvalid naming config.ca_origin when it holds no certificate.
  static Result<std::shared_ptr<const TlsSettings>> Make(const ClusterConfig& config);
  ~TlsSettings();
  TlsSettings(const TlsSettings&) = delete;
  TlsSettings& operator=(const TlsSettings&) = delete;

  // Configures a fresh client context (before its first SSL is made from it): trust store, name
  // check, peer verification, SNI for tls-server-name. Verification runs inside the handshake,
  // so a failure ends the connection before any request bytes are written.
  void Apply(SSL_CTX* context) const;

 private:
  TlsSettings() = default;
  X509_STORE* store_ = nullptr;  // owned; null: the system store (no CA configured)
  std::string name_;
  bool name_is_ip_ = false;
  bool insecure_ = false;
};

// The host of an http(s) URL, without brackets for IPv6 ("https://[::1]:6443" -> "::1").
std::string UrlHost(const std::string& url);

}  // namespace poolkeeper::kube
