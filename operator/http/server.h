// The operator's HTTP endpoints: for the kubelet and Prometheus, GET /healthz (liveness probe),
// GET /readyz (readiness probe, with the reason when not ready) and GET /metrics (the text
// exposition its owner renders, behind an optional bearer-token check; this module only routes,
// it holds no metrics and knows no Kubernetes); for the API server, POST routes over TLS (the
// admission webhook). The transport is Boost.Beast over Asio, kept inside server.cc and
// connection.h; routing is a pure function so the answers are tested without a socket.
//
// The port is reachable by anyone on the pod network, so every resource a client can hold is
// bounded (ServerLimits): header and body sizes, the time to send a request, idle keep-alive time,
// open connections, and the threads (a fixed few, never one per connection).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace poolkeeper::http {

// The exposition format's content type, as Prometheus expects it.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// One answer, independent of the transport.
struct Reply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;  // the Allow header of a 405, else empty
};

// What an authorizer says about a bearer token asking for a path.
enum class Access {
  kAllowed,
  kUnauthenticated,  // the token is not valid: 401
  kForbidden,        // valid, but its user may not: 403
  kUnavailable,      // could not be decided now (e.g. the API server did not answer): 503
};

// Each bound has a default that serves Prometheus, the kubelet and the API server's webhook calls
// with room to spare, and keeps a hostile client to a few KiB of memory and one connection slot.
struct ServerLimits {
  // Request line plus headers; more is answered 431 and the connection closed.
  size_t max_header_bytes = 16 * 1024;
  // A POST body (an AdmissionReview of a large pool is tens of KiB); more is answered 413. Other
  // methods take no body: 413 too.
  size_t max_body_bytes = 4 * 1024 * 1024;
  // From the first byte of a request (or the connection's opening) to its last header byte: a
  // client that trickles its header (slowloris) is cut here.
  std::chrono::milliseconds header_timeout{10'000};
  // To receive a POST body once its header is in.
  std::chrono::milliseconds body_timeout{30'000};
  // A kept-alive connection waiting for its next request.
  std::chrono::milliseconds idle_timeout{30'000};
  // To write a reply to a client that does not read.
  std::chrono::milliseconds write_timeout{10'000};
  // The TLS handshake, on HTTPS servers.
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  // Open connections. At the cap a new connection closes the oldest one waiting for a request
  // (HTTP lets a server close an idle connection at any time); when every connection is busy the
  // new one is closed at once. Start() lowers it to a quarter of the process's file descriptor
  // limit, so the operator's own connections to the API server always find descriptors.
  int max_connections = 256;
  // Threads doing socket I/O, and threads running the slow callbacks (/metrics, its authorizer,
  // POST routes), so a slow scrape never delays a probe. Fixed at start.
  int io_threads = 1;
  int handler_threads = 2;
  // How long Stop() waits for requests in flight before closing their connections.
  std::chrono::milliseconds drain_timeout{10'000};
};

struct ServerOptions {
  // "host:port" to listen on, e.g. "127.0.0.1:8080", "0.0.0.0:8080", "[::1]:8080" or ":8080"
  // (every interface). Port 0 picks a free port; address() then tells which.
  std::string address;
  // Liveness: /healthz answers 503 when this returns false. Empty means live while the process
  // answers at all, which is what a liveness probe asks.
  std::function<bool()> live;
  // Readiness: nullopt when ready, else a short reason /readyz returns with 503. Empty means
  // always ready.
  std::function<std::optional<std::string>()> not_ready_reason;
  // The body of GET /metrics in the text exposition format, rendered at every scrape. Empty turns
  // /metrics into a 404.
  std::function<std::string()> metrics;
  // Who may GET /metrics: called with the bearer token of the request's Authorization header and
  // the path. A request without a token is answered 401 without calling it. Empty: /metrics is
  // open to anyone who reaches the port. The probes never ask it: the kubelet sends no token.
  std::function<Access(std::string_view token, std::string_view path)> authorize;
  // Other GET paths (e.g. the pooler agent's /status): the reply for a path it serves, nullopt
  // for a 404. Asked after /healthz, /readyz and /metrics; answered without the authorizer.
  std::function<std::optional<Reply>(std::string_view path)> get;
  // POST requests: the reply for a path it serves, nullopt for a 404. Empty: POST is a 405.
  std::function<std::optional<Reply>(std::string_view path, const std::string& body)> post;
  // PEM files of the serving certificate (chain) and its key: serve HTTPS instead of HTTP. They
  // are read when the server starts.
  std::string tls_cert_file;
  std::string tls_key_file;
  ServerLimits limits;
};

// What the server answers to `method` on `path` (no query string); `authorization` is the
// request's Authorization header. Callbacks that throw are answered as failing probes (503) or a
// failed scrape (500), never as a crash.
Reply Route(const ServerOptions& options, std::string_view method, std::string_view path,
            const std::string& body = "", std::string_view authorization = "");

// The token of an "Authorization: Bearer <token>" header (scheme case-insensitive), else empty.
std::string_view BearerToken(std::string_view authorization);

// Counters of what the limits turned away, for tests and logs.
struct ServerStats {
  uint64_t connections_refused = 0;    // closed at accept: every slot busy
  uint64_t connections_evicted = 0;    // idle connections closed to make room
  uint64_t connections_timed_out = 0;  // handshake, header, body, idle or write timeout
  uint64_t requests_too_large = 0;     // 431 and 413
  int open_connections = 0;
  int busy_connections = 0;  // answering a request (reading its body included)
};

class Server {
 public:
  // Listens on options.address and serves until Stop() or destruction. The callbacks are called
  // from the server's threads, concurrently: they must be thread-safe. kInvalid for an address
  // that is not host:port or TLS files that cannot be used, kUnavailable when it cannot be bound.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options);

  // Stops accepting (the port is free once it returns), closes idle connections, lets requests in
  // flight finish for up to limits.drain_timeout, then closes the rest and ends the threads.
  // Idempotent; the destructor calls it.
  void Stop();
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address actually listened on, "host:port" with the real port (also when 0 was asked).
  const std::string& address() const;
  // The limits in force (max_connections after Start() lowered it to fit the fd limit).
  const ServerLimits& limits() const;
  ServerStats stats() const;

  struct Impl;  // Asio and Beast, so their headers stay in server.cc

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace poolkeeper::http
