// The cpprestsdk transport. cpprestsdk's U() macro breaks fmt when its headers come first, so it
// is turned off and these headers stay in this file.
#define _TURN_OFF_PLATFORM_STRING
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <boost/asio/ssl.hpp>
#include <string>

#include "common/files.h"
#include "kube/transport.h"

namespace poolkeeper::kube {
namespace {

namespace http = web::http;

class CppRestTransport : public Transport {
 public:
  explicit CppRestTransport(ClusterConfig config) : config_(std::move(config)) {}

  Result<HttpResponse> Send(const HttpRequest& request) override { return Run(request, nullptr); }
  Result<HttpResponse> Stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_data) override {
    return Run(request, &on_data);
  }

 private:
  http::client::http_client_config ClientConfig(std::chrono::seconds timeout) const {
    http::client::http_client_config client_config;
    client_config.set_timeout(timeout);
    client_config.set_validate_certificates(!config_.insecure_skip_tls_verify);
    ClusterConfig config = config_;
    client_config.set_ssl_context_callback([config](boost::asio::ssl::context& context) {
      if (!config.ca_pem.empty()) {
        context.add_certificate_authority(boost::asio::buffer(config.ca_pem));
      } else {
        context.set_default_verify_paths();
      }
      if (!config.client_cert_pem.empty()) {
        context.use_certificate_chain(boost::asio::buffer(config.client_cert_pem));
        context.use_private_key(boost::asio::buffer(config.client_key_pem),
                                boost::asio::ssl::context::pem);
      }
    });
    return client_config;
  }

  Result<std::string> Token() const {
    if (!config_.token_file.empty()) {
      auto token = ReadFile(config_.token_file);
      if (!token) return std::unexpected(token.error());
      while (!token->empty() && (token->back() == '\n' || token->back() == '\r')) token->pop_back();
      return *token;
    }
    return config_.token;
  }

  Result<HttpResponse> Run(const HttpRequest& request,
                           const std::function<bool(std::string_view)>* on_data) {
    auto token = Token();
    if (!token) return std::unexpected(token.error());
    std::string what = request.method + " " + request.path.substr(0, request.path.find('?'));
    try {
      http::client::http_client client(config_.server, ClientConfig(request.timeout));
      http::http_request message(request.method);
      message.set_request_uri(request.path);
      message.headers().add("Accept", request.accept);
      message.headers().add("User-Agent", "poolkeeper");
      if (!token->empty()) message.headers().add("Authorization", "Bearer " + *token);
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
    } catch (const http::http_exception& e) {
      return Fail(ErrorCode::kUnavailable, what + ": " + e.what());
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kUnavailable, what + ": " + e.what());
    }
  }

  ClusterConfig config_;
};

}  // namespace

Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return Fail(ErrorCode::kInvalid, "server \"" + config.server + "\" is not an http(s) URL");
  }
  return std::unique_ptr<Transport>(std::make_unique<CppRestTransport>(config));
}

}  // namespace poolkeeper::kube
