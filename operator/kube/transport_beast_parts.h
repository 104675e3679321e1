// The pieces of the Beast transport (transport_beast.cc) below the request logic: the server URL
// split into what a connection needs, a TLS context with the client certificate it holds, a
// socket, one pooled connection with its own io_context, and the Runner that drives one
// asynchronous operation of it on the calling thread, stoppable from another. Only the
// transport's own files include this header.
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
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "common/error.h"
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

// A TCP connection, TLS (with `context`) or plain (null), on the io_context its owner runs.
struct Socket {
  Socket(asio::io_context& io, const std::shared_ptr<TlsContext>& context) {
    if (context) {
      secure.emplace(io, context->context);
    } else {
      plain.emplace(io);
    }
  }
  beast::tcp_stream& Lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  // Starts `operation` (write, read header, read some) on whichever stream this is.
  template <typename Op>
  void On(Op&& operation) {
    if (secure) {
      operation(*secure);
    } else {
      operation(*plain);
    }
  }

  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> secure;
};

// One kept-alive connection of the pool, used by one request at a time. The io_context is
// declared first so that it outlives the socket whose operations it holds.
struct Connection {
  explicit Connection(std::shared_ptr<TlsContext> tls)
      : context(std::move(tls)), socket(io, context) {}

  asio::io_context io{1};
  std::shared_ptr<TlsContext> context;  // null for http://
  Socket socket;
  beast::flat_buffer buffer;
  bool reused = false;

  // Idle, the server sends nothing: readable (or hung up) means it closed its end.
  bool ServerClosed() {
    pollfd fd{socket.Lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&fd, 1, 0) != 0;
  }
};

// What a request that got no response failed with: stopped, timed out, or the connection's error.
inline Error TransportError(const std::string& what, const error_code& ec, bool stopped,
                            std::chrono::milliseconds timeout, const std::string& stage = "") {
  if (stopped) return Error{ErrorCode::kUnavailable, what + ": stopped", {}, 0};
  if (ec == beast::error::timeout) {
    return Error{ErrorCode::kTimeout,
                 what + ": no answer within " + std::to_string(timeout.count()) + " ms",
                 {},
                 0};
  }
  return Error{ErrorCode::kUnavailable, what + ": " + stage + ec.message(), {}, 0};
}

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
