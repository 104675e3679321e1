// The HTTPS side (the admission webhook's): a POST route answered over TLS with a certificate
// made by the test, unusable certificate files refused at start, and a client that never
// finishes its handshake cut at the handshake timeout.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "http/server.h"
#include "loopback.h"

namespace poolkeeper::http {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

// A self-signed P-256 certificate for 127.0.0.1, written as tls.crt and tls.key in a fresh
// directory.
struct TestCertificate {
  std::filesystem::path dir;
  std::string cert;
  std::string key;

  TestCertificate() {
    char pattern[] = "/tmp/pk-http-tls-XXXXXX";
    dir = mkdtemp(pattern);
    cert = (dir / "tls.crt").string();
    key = (dir / "tls.key").string();
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x509 = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
    X509_gmtime_adj(X509_getm_notBefore(x509), 0);
    X509_gmtime_adj(X509_getm_notAfter(x509), 3600);
    X509_set_pubkey(x509, pkey);
    X509_NAME* name = X509_get_subject_name(x509);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(x509, name);
    X509_sign(x509, pkey, EVP_sha256());
    FILE* out = fopen(cert.c_str(), "w");
    PEM_write_X509(out, x509);
    fclose(out);
    out = fopen(key.c_str(), "w");
    PEM_write_PrivateKey(out, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(out);
    X509_free(x509);
    EVP_PKEY_free(pkey);
  }
  ~TestCertificate() { std::filesystem::remove_all(dir); }
};

// One request over TLS (the certificate is not verified: what is tested is the server's side).
std::string TlsExchange(const std::string& address, const std::string& request) {
  int fd = testing::Connect(testing::PortOf(address));
  if (fd < 0) return "connect failed";
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(context);
  SSL_set_fd(ssl, fd);
  std::string reply;
  if (SSL_connect(ssl) == 1) {
    SSL_write(ssl, request.data(), static_cast<int>(request.size()));
    char buffer[4096];
    for (int n; (n = SSL_read(ssl, buffer, sizeof buffer)) > 0;) reply.append(buffer, n);
  } else {
    reply = "handshake failed";
  }
  SSL_free(ssl);
  SSL_CTX_free(context);
  close(fd);
  return reply;
}

ServerOptions Webhook(const TestCertificate& certificate) {
  ServerOptions options;
  options.post = [](std::string_view path, const std::string& body) -> std::optional<Reply> {
    if (path != "/validate") return std::nullopt;
    return Reply{200, "application/json", "{\"seen\":\"" + body + "\"}", ""};
  };
  options.tls_cert_file = certificate.cert;
  options.tls_key_file = certificate.key;
  return options;
}

TEST(Tls, APostRouteIsAnsweredOverTls) {
  TestCertificate certificate;
  auto server = testing::StartOnLoopback(Webhook(certificate));
  std::string raw = TlsExchange(server->address(),
                                "POST /validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n"
                                "{\"a\":1}");
  auto reply = testing::Parse(raw);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "{\"seen\":\"{\"a\":1}\"}");
  EXPECT_NE(reply.headers.find("content-type: application/json"), std::string::npos);
  // The limits hold over TLS too.
  auto big = testing::Parse(
      TlsExchange(server->address(),
                  "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n"));
  EXPECT_EQ(big.status, 413);
}

TEST(Tls, ACertificateThatIsNotOneIsRefusedAtStart) {
  TestCertificate certificate;
  std::ofstream(certificate.cert) << "not a certificate\n";
  ServerOptions options = Webhook(certificate);
  options.address = "127.0.0.1:0";
  auto server = Server::Start(options);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, ErrorCode::kInvalid);
  EXPECT_NE(server.error().message.find(certificate.cert), std::string::npos)
      << server.error().message;
}

TEST(Tls, AClientThatNeverHandshakesIsCutAtTheHandshakeTimeout) {
  TestCertificate certificate;
  ServerOptions options = Webhook(certificate);
  options.limits.tls_handshake_timeout = 300ms;
  auto server = testing::StartOnLoopback(std::move(options));
  int fd = testing::Connect(testing::PortOf(server->address()));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(testing::ClosedWithin(fd, 3000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  EXPECT_TRUE(
      testing::Eventually([&] { return server->stats().connections_timed_out >= 1; }, 2000ms));
  close(fd);
}

}  // namespace
}  // namespace poolkeeper::http
