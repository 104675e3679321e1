// The operator's HTTP endpoints: for the kubelet and Prometheus, GET /healthz (liveness probe),
// GET /readyz (readiness probe, with the reason when not ready) and GET /metrics (the text
// exposition its owner renders; this module only routes, it holds no metrics); for the API server,
// POST routes over TLS (the admission webhook). The transport is cpprestsdk's listener, kept inside
// server.cc so its macros and exceptions stay out of every other translation unit; routing is a
// pure function so the answers are tested without a socket.
#pragma once

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
  // POST requests: the reply for a path it serves, nullopt for a 404. Empty: POST is a 405.
  std::function<std::optional<Reply>(std::string_view path, const std::string& body)> post;
  // PEM files of the serving certificate (chain) and its key: serve HTTPS instead of HTTP. They
  // are read when the server starts.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// What the server answers to `method` on `path` (no query string). Callbacks that throw are
// answered as failing probes (503) or a failed scrape (500), never as a crash.
Reply Route(const ServerOptions& options, std::string_view method, std::string_view path,
            const std::string& body = "");

class Server {
 public:
  // Listens on options.address and serves until destroyed. The callbacks are called from the
  // listener's threads, concurrently: they must be thread-safe. kInvalid for an address that is not
  // host:port, kUnavailable when it cannot be bound.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options);

  // Stops listening and waits for the requests in flight; the port is free once it returns.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address actually listened on, "host:port" with the real port (also when 0 was asked).
  const std::string& address() const;

 private:
  struct Impl;  // the cpprestsdk listener, so its headers stay in server.cc
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace poolkeeper::http
