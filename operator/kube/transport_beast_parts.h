// The pieces of the Beast transport (transport_beast.cc) below the request logic: the server URL
// split into what a connection needs, a TLS context with the client certificate it holds, one
// connection with its own io_context, and the Runner that drives one asynchronous operation of it
// on the calling thread, stoppable from another. Only transport_beast.cc includes this header.
#pragma once

#include <poll.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include "kube/tls.h"

namespace poolkeeper::kube::beast_transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// Where requests go: scheme, host and port of the server URL, and any path before /api.
struct Endpoint {
  bool tls = true;
  std::string host;       // without IPv6 brackets
  std::string port;       // "443" when the URL has none
  std::string authority;  // the Host header: host[:port] as written in the URL
  std::string prefix;     // e.g. "/k8s/clusters/c-1" behind a proxy; "" usually
};

inline Endpoint ParseEndpoint(const std::string& server) {
  Endpoint out;
  out.tls = server.rfind("https://", 0) == 0;
  std::string rest = server.substr(server.find("://") + 3);
  size_t slash = rest.find('/');
  out.authority = rest.substr(0, slash);
  if (slash != std::string::npos) out.prefix = rest.substr(slash);
  while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  out.host = UrlHost(server);
  size_t colon = out.authority.rfind(':');
  bool has_port = colon != std::string::npos && out.authority.find(']', colon) == std::string::npos;
  out.port = has_port ? out.authority.substr(colon + 1) : (out.tls ? "443" : "80");
  return out;
}

// A TLS context and the client certificate it holds; shared by the connections made from it.
struct TlsContext {
  asio::ssl::context context{asio::ssl::context::tls_client};
  std::string cert_pem;
  std::string key_pem;
};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection, used by one request at a time. The io_context is declared first so that it
// outlives the streams whose operations it holds.
struct Connection {
  asio::io_context io{1};
  std::shared_ptr<TlsContext> context;  // null for http://
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> secure;
  beast::flat_buffer buffer;
  bool reused = false;

  beast::tcp_stream& Lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  // Idle, the server sends nothing: readable (or hung up) means it closed its end.
  bool ServerClosed() {
    pollfd fd{Lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&fd, 1, 0) != 0;
  }
};

inline bool Idempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS";
}

// Runs one asynchronous operation of `connection` to its end on this thread. Returns
// operation_aborted when a stop was requested before or while it ran; the operation may then
// still be pending, so the connection must not be used again.
class Runner {
 public:
  Runner(Connection& connection, const std::stop_token& stop)
      : connection_(connection), on_stop_(stop, [this] {
          stopped_ = true;
          connection_.io.stop();
        }) {}

  template <typename Start>
  error_code Run(Start&& start, size_t* transferred = nullptr) {
    error_code result;
    bool done = false;
    start([&](error_code ec, size_t n = 0) {
      result = ec;
      if (transferred != nullptr) *transferred = n;
      done = true;
    });
    connection_.io.restart();
    if (!stopped_) connection_.io.run();
    if (!done) return asio::error::operation_aborted;
    return result;
  }
  bool stopped() const { return stopped_; }

 private:
  Connection& connection_;
  std::atomic<bool> stopped_{false};
  std::stop_callback<std::function<void()>> on_stop_;
};

}  // namespace poolkeeper::kube::beast_transport
