// The cpprestsdk side of the HTTP server. Its U() macro breaks fmt when cpprestsdk's headers come
// first, so it is turned off and they are included after everything that pulls in spdlog/fmt.
#include "http/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <utility>

#include "common/log.h"

#define _TURN_OFF_PLATFORM_STRING
#include <cpprest/http_listener.h>

#include <boost/asio/ssl.hpp>

namespace poolkeeper::http {
namespace {

namespace listener = web::http::experimental::listener;

struct HostPort {
  std::string host;  // without brackets
  bool ipv6 = false;
  uint16_t port = 0;
};

Result<HostPort> ParseAddress(std::string_view address) {
  auto invalid = [&] {
    return Fail(ErrorCode::kInvalid,
                "listen address \"" + std::string(address) + "\" is not host:port");
  };
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return invalid();
  HostPort out;
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    out.ipv6 = true;
  } else if (host.find_first_of("[]:") != std::string_view::npos) {
    return invalid();  // an IPv6 literal needs its brackets
  }
  out.host = host.empty() ? "0.0.0.0" : std::string(host);
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) return invalid();
  return out;
}

std::string Join(const HostPort& hp, uint16_t port) {
  return (hp.ipv6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(port);
}

// Binds host:port ourselves (0: any free port), releases it and returns the port. cpprestsdk
// cannot tell which port it bound, so this is how port 0 works; and for a fixed port it keeps a
// port in use away from cpprestsdk, whose failed open on an address this process already serves
// unregisters the listener that was there. Another process may take the port in between; Start()
// then tries again.
Result<uint16_t> ProbeBind(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return Fail(ErrorCode::kUnavailable, "resolving " + host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd < 0) return Fail(ErrorCode::kUnavailable, "socket: " + std::string(strerror(errno)));
  // As Boost.Asio's acceptor does: a port in TIME_WAIT is free, one with a listener is not.
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  bool ok = bind(fd, found->ai_addr, found->ai_addrlen) == 0 &&
            getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0;
  std::string error = ok ? "" : strerror(errno);
  close(fd);
  if (!ok) return Fail(ErrorCode::kUnavailable, "binding " + host + ":" + service + ": " + error);
  if (bound.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

Reply Text(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

}  // namespace

Reply Route(const ServerOptions& options, std::string_view method, std::string_view path,
            const std::string& body) {
  if (method == "POST" && options.post) {
    try {
      if (std::optional<Reply> reply = options.post(path, body)) return *reply;
    } catch (const std::exception& e) {
      return Text(500, std::string("request failed: ") + e.what());
    }
    return Text(404, "not found");
  }
  if (method != "GET") {
    Reply reply = Text(405, "method not allowed");
    reply.allow = options.post ? "GET, POST" : "GET";
    return reply;
  }
  if (path == "/healthz") {
    try {
      if (options.live && !options.live()) return Text(503, "not live");
    } catch (const std::exception& e) {
      return Text(503, std::string("liveness check failed: ") + e.what());
    } catch (...) {
      return Text(503, "liveness check failed");
    }
    return Text(200, "ok");
  }
  if (path == "/readyz") {
    try {
      if (options.not_ready_reason) {
        if (std::optional<std::string> reason = options.not_ready_reason()) {
          return Text(503, reason->empty() ? "not ready" : *reason);
        }
      }
    } catch (const std::exception& e) {
      return Text(503, std::string("readiness check failed: ") + e.what());
    } catch (...) {
      return Text(503, "readiness check failed");
    }
    return Text(200, "ok");
  }
  if (path == "/metrics" && options.metrics) {
    try {
      Reply reply = Text(200, options.metrics());
      reply.content_type = kMetricsContentType;
      return reply;
    } catch (const std::exception& e) {
      return Text(500, std::string("metrics failed: ") + e.what());
    } catch (...) {
      return Text(500, "metrics failed");
    }
  }
  return Text(404, "not found");
}

struct Server::Impl {
  ServerOptions options;
  std::string address;
  std::unique_ptr<listener::http_listener> listener;

  void Serve(web::http::http_request request) const {
    try {
      std::string body;
      if (request.method() == web::http::methods::POST) body = request.extract_string(true).get();
      Reply reply = Route(options, request.method(), request.relative_uri().path(), body);
      web::http::http_response response(static_cast<web::http::status_code>(reply.status));
      response.set_body(std::move(reply.body), reply.content_type);
      if (!reply.allow.empty()) response.headers().add("Allow", reply.allow);
      // The client may be gone by the time the reply is written: nothing to do about it.
      request.reply(response).then([](pplx::task<void> sent) {
        try {
          sent.get();
        } catch (...) {
        }
      });
    } catch (const std::exception& e) {
      Log(LogLevel::kWarn, "http request failed", {{"error", e.what()}});
    }
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (!impl_ || !impl_->listener) return;
  try {
    impl_->listener->close().wait();
  } catch (const std::exception& e) {
    Log(LogLevel::kWarn, "http server did not stop cleanly",
        {{"address", impl_->address}, {"error", e.what()}});
  }
}

const std::string& Server::address() const { return impl_->address; }

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto parsed = ParseAddress(options.address);
  if (!parsed) return std::unexpected(parsed.error());
  for (const std::string* file : {&options.tls_cert_file, &options.tls_key_file}) {
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return Fail(ErrorCode::kInvalid, "TLS needs both a certificate and a key file");
    }
    if (!file->empty() && access(file->c_str(), R_OK) != 0) {
      return Fail(ErrorCode::kInvalid, "TLS file " + *file + ": " + strerror(errno));
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const bool any_port = parsed->port == 0;
  std::string last_error;
  for (int attempt = 0; attempt < (any_port ? 5 : 1); ++attempt) {
    auto port = ProbeBind(parsed->host, parsed->port);
    if (!port) return std::unexpected(port.error());
    std::string address = Join(*parsed, *port);
    try {
      const bool tls = !impl->options.tls_cert_file.empty();
      listener::http_listener_config config;
      if (tls) {
        config.set_ssl_context_callback(
            [cert = impl->options.tls_cert_file,
             key = impl->options.tls_key_file](boost::asio::ssl::context& context) {
              context.set_options(
                  boost::asio::ssl::context::default_workarounds |
                  boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                  boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1);
              context.use_certificate_chain_file(cert);
              context.use_private_key_file(key, boost::asio::ssl::context::pem);
            });
      }
      auto created = std::make_unique<listener::http_listener>(
          std::string(tls ? "https://" : "http://") + address, config);
      Impl* self = impl.get();  // outlives the listener: ~Server closes it first
      created->support([self](web::http::http_request request) { self->Serve(request); });
      created->open().wait();
      impl->listener = std::move(created);
      impl->address = std::move(address);
      Log(LogLevel::kInfo, "http server listening", {{"address", impl->address}});
      return std::unique_ptr<Server>(new Server(std::move(impl)));
    } catch (const std::exception& e) {
      last_error = "listening on " + address + ": " + e.what();
    }
  }
  return Fail(ErrorCode::kUnavailable, last_error);
}

}  // namespace poolkeeper::http
