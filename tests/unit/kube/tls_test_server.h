// A real TLS server on loopback for the transport tests, and the certificates it needs, made with
// OpenSSL in the test (no files from elsewhere, no openssl CLI): a CA, a server certificate with
// chosen SANs signed by it. The server records what each connection brought (handshake failed,
// the SNI name, the request's bytes) and answers requests from a script of statuses.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace poolkeeper::kube::testing {

struct KeyAndCert {
  std::shared_ptr<EVP_PKEY> key;
  std::shared_ptr<X509> cert;

  std::string CertPem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(bio.get(), cert.get());
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(size));
  }
};

inline void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

// A certificate for `common_name`; self-signed CA when `issuer` is null, else a server
// certificate with `sans` ("IP:127.0.0.1,DNS:kubernetes.default.svc") signed by `issuer`.
inline KeyAndCert MakeCert(const std::string& common_name, const KeyAndCert* issuer,
                           const std::string& sans = "") {
  static std::atomic<long> serial{1};
  KeyAndCert out;
  out.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  out.cert.reset(X509_new(), X509_free);
  X509* cert = out.cert.get();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, out.key.get());
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509* issuer_cert = issuer ? issuer->cert.get() : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));
  if (issuer == nullptr) {
    AddExtension(cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert, issuer_cert, NID_ext_key_usage, "serverAuth");
    if (!sans.empty()) AddExtension(cert, issuer_cert, NID_subject_alt_name, sans.c_str());
  }
  X509_sign(cert, issuer ? issuer->key.get() : out.key.get(), EVP_sha256());
  return out;
}

// A TLS server context presenting `identity`.
inline SSL_CTX* ServerContext(const KeyAndCert& identity) {
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(context, identity.cert.get());
  SSL_CTX_use_PrivateKey(context, identity.key.get());
  return context;
}

// A listening socket on 127.0.0.1 and a port the kernel chose, written to `port`.
inline int ListenOnLoopback(int backlog, int& port) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address);
  listen(listener, backlog);
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return listener;
}

class TlsServer {
 public:
  struct Connection {
    bool handshake_ok = false;
    std::string server_name;  // SNI, empty when none
    std::string request;      // the request's head, as received
  };

  explicit TlsServer(const KeyAndCert& identity) {
    context_ = ServerContext(identity);
    listener_ = ListenOnLoopback(16, port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TlsServer() {
    stop_ = true;
    thread_.join();
    close(listener_);
    SSL_CTX_free(context_);
  }

  int port() const { return port_; }
  // Statuses for the next requests, in order; 200 when the script is empty.
  void Answer(std::vector<int> statuses) {
    std::lock_guard guard(mutex_);
    statuses_.assign(statuses.begin(), statuses.end());
  }
  std::vector<Connection> Connections() {
    std::lock_guard guard(mutex_);
    return connections_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd fd{listener_, POLLIN, 0};
      if (poll(&fd, 1, 50) <= 0) continue;
      int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      timeval timeout{5, 0};
      setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      Handle(client);
      close(client);
    }
  }

  void Handle(int client) {
    SSL* ssl = SSL_new(context_);
    SSL_set_fd(ssl, client);
    Connection connection;
    if (SSL_accept(ssl) == 1) {
      connection.handshake_ok = true;
      if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
        connection.server_name = name;
      }
      char buffer[4096];
      while (connection.request.find("\r\n\r\n") == std::string::npos) {
        int n = SSL_read(ssl, buffer, sizeof buffer);
        if (n <= 0) break;
        connection.request.append(buffer, static_cast<size_t>(n));
      }
    }
    int status = 200;
    {
      std::lock_guard guard(mutex_);
      connections_.push_back(connection);
      if (connection.handshake_ok && !statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
    }
    if (connection.handshake_ok) {
      std::string body = status == 200 ? "{}" : R"({"kind":"Status","code":401})";
      std::string response =
          "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Unauthorized") +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      SSL_write(ssl, response.data(), static_cast<int>(response.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
  }

  SSL_CTX* context_ = nullptr;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::deque<int> statuses_;
  std::vector<Connection> connections_;
  std::thread thread_;
};

}  // namespace poolkeeper::kube::testing
