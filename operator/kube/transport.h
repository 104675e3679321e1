// HTTP to the API server, as a small interface: the client (client.h) speaks Kubernetes over it,
// tests can hand it an in-memory double, and the only implementation that touches the network
// (Boost.Beast over OpenSSL, transport_beast.cc) stays behind it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "common/error.h"
#include "kube/config.h"

namespace poolkeeper::kube {

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // absolute path with query, e.g. /api/v1/namespaces/a/pods?limit=500
  std::string body;
  std::string content_type = "application/json";
  std::string accept = "application/json";  // or a PartialObjectMetadata type (Client::GetMetadata)
  // How long the request may take. Milliseconds, not seconds: a write fenced by leader election
  // gets exactly the time left until the renew deadline (client.h, RequestGate).
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // A stop requested here ends the request at once, even a watch waiting on a quiet stream (the
  // informer's Stop); the connection is closed, not reused. Default: cannot be stopped.
  std::stop_token stop;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  int retry_after = 0;  // seconds, from Retry-After
};

class Transport {
 public:
  using OnData = std::function<bool(std::string_view)>;
  using OnDone = std::function<void(Result<HttpResponse>)>;

  virtual ~Transport() = default;
  // One request and its whole response. Fails only when no response came (kUnavailable,
  // kTimeout); any HTTP status is a response.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
  // A long request (a watch): `on_data` gets the body as it arrives and returns false to stop.
  // Returns the status when the stream ends; a non-2xx status is returned with its body.
  virtual Result<HttpResponse> Stream(const HttpRequest& request, const OnData& on_data) = 0;
  // The same stream without a thread waiting on it: returns at once, then `on_data` and, once,
  // `on_done` (what Stream would have returned) run on the transport's event loop, which carries
  // every stream (the real transport: one thread for all the operator's watches). Nothing in
  // them may block. When the stream cannot start (no credential, no address), on_done may run
  // on the calling thread before this returns. A 401 is handed to on_done as it is (no retry on
  // the loop): the refused credential is dropped, so the next request gets a fresh one.
  // This default runs Stream on the calling thread (test doubles).
  virtual void StreamAsync(HttpRequest request, OnData on_data, OnDone on_done) {
    on_done(Stream(request, on_data));
  }
};

class Credentials;

struct TransportOptions {
  // Idle kept-alive connections kept for reuse; more are closed when they are handed back. A
  // watch holds its connection for as long as it runs, so this bounds what is idle, not what is
  // open.
  size_t max_idle_connections = 16;
};

// The real transport for `config`: TLS trusting only the config's CA (tls.h), client certificate
// and bearer token from `credentials` (credentials.h: token file re-read on every request, exec
// plugins run when their credential expires or is refused with 401, then the request once more).
// One TLS context per client certificate (built again only when the plugin hands out another
// one), connections kept alive and reused; requests run on the calling thread, streams on one
// event-loop thread of the transport's, started with the first stream.
Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config,
                                                     std::shared_ptr<Credentials> credentials,
                                                     TransportOptions options = {});
// The same with the config's own credentials, plugins run as real processes.
Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config);

}  // namespace poolkeeper::kube
