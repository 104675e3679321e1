// The cpprestsdk transport. cpprestsdk's U() macro breaks fmt when its headers come first, so it
// is turned off and these headers stay in this file.
#define _TURN_OFF_PLATFORM_STRING
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <boost/asio/ssl.hpp>
#include <string>

#include "common/log.h"
#include "kube/credentials.h"
#include "kube/tls.h"
#include "kube/transport.h"

namespace poolkeeper::kube {
namespace {

namespace http = web::http;

class CppRestTransport : public Transport {
 public:
  CppRestTransport(std::string server, std::shared_ptr<const TlsSettings> tls,
                   std::shared_ptr<Credentials> credentials)
      : server_(std::move(server)), tls_(std::move(tls)), credentials_(std::move(credentials)) {}

  Result<HttpResponse> Send(const HttpRequest& request) override { return Run(request, nullptr); }
  Result<HttpResponse> Stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_data) override {
    return Run(request, &on_data);
  }

 private:
  http::client::http_client_config ClientConfig(std::chrono::milliseconds timeout,
                                                const Credential& credential) const {
    http::client::http_client_config client_config;
    client_config.set_timeout(timeout);
    // On: cpprestsdk asks for the peer's certificate, and the chain check of TlsSettings runs.
    client_config.set_validate_certificates(tls_->verify());
    client_config.set_ssl_context_callback(
        [tls = tls_, cert = credential.client_cert_pem,
         key = credential.client_key_pem](boost::asio::ssl::context& context) {
          tls->Apply(context.native_handle());
          if (!cert.empty()) {
            context.use_certificate_chain(boost::asio::buffer(cert));
            context.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
          }
        });
    return client_config;
  }

  // One request, and once more with a fresh credential when a plugin's was refused (401): the
  // token may have been revoked or rotated before its expirationTimestamp. A 401 on a watch
  // comes before any event, so the retry repeats nothing.
  Result<HttpResponse> Run(const HttpRequest& request,
                           const std::function<bool(std::string_view)>* on_data) {
    for (int attempt = 0;; ++attempt) {
      auto credential = credentials_->Current();
      if (!credential) return std::unexpected(credential.error());
      auto response = Once(request, on_data, *credential);
      if (response && response->status == 401 && attempt == 0 &&
          credentials_->Rejected(*credential)) {
        continue;
      }
      return response;
    }
  }

  Result<HttpResponse> Once(const HttpRequest& request,
                            const std::function<bool(std::string_view)>* on_data,
                            const Credential& credential) {
    std::string what = request.method + " " + request.path.substr(0, request.path.find('?'));
    try {
      http::client::http_client client(server_, ClientConfig(request.timeout, credential));
      http::http_request message(request.method);
      message.set_request_uri(request.path);
      message.headers().add("Accept", request.accept);
      message.headers().add("User-Agent", "poolkeeper");
      if (!credential.token.empty()) {
        message.headers().add("Authorization", "Bearer " + credential.token);
      }
      if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
          request.method == "PATCH") {
        message.set_body(request.body, request.content_type);
      }
      http::http_response response = client.request(message).get();
      HttpResponse out;
      out.status = response.status_code();
      if (auto it = response.headers().find("Retry-After"); it != response.headers().end()) {
        out.retry_after = std::atoi(it->second.c_str());
      }
      bool success = out.status >= 200 && out.status < 300;
      if (on_data == nullptr || !success) {
        out.body = response.extract_string(true).get();
        return out;
      }
      // A watch: hand each line on as it arrives (the server ends every event with a newline;
      // the caller's splitter does not rely on it).
      auto body = response.body();
      for (;;) {
        concurrency::streams::container_buffer<std::string> line;
        size_t n = body.read_line(line).get();
        if (n == 0 && body.is_eof()) break;
        std::string data = std::move(line.collection());
        data.push_back('\n');
        if (!(*on_data)(data)) break;
      }
      return out;
    } catch (const std::exception& e) {
      // A refused certificate lands here too ("Error in SSL handshake"), before any request
      // bytes were written.
      return Fail(ErrorCode::kUnavailable, what + ": " + e.what());
    }
  }

  const std::string server_;
  const std::shared_ptr<const TlsSettings> tls_;
  const std::shared_ptr<Credentials> credentials_;
};

}  // namespace

Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config,
                                                     std::shared_ptr<Credentials> credentials) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return Fail(ErrorCode::kInvalid, "server \"" + config.server + "\" is not an http(s) URL");
  }
  auto tls = TlsSettings::Make(config);
  if (!tls) return std::unexpected(tls.error());
  if (config.insecure_skip_tls_verify) {
    // Once, here: the transport is built once per configuration.
    Log(LogLevel::kWarn,
        "insecure-skip-tls-verify: the API server's certificate is not checked; anyone on the "
        "path can read the operator's credentials",
        {{"server", config.server}});
  }
  return std::unique_ptr<Transport>(
      std::make_unique<CppRestTransport>(config.server, *tls, std::move(credentials)));
}

Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config) {
  return MakeHttpTransport(
      config, std::make_shared<Credentials>(config, std::make_shared<PosixProcessRunner>()));
}

}  // namespace poolkeeper::kube
