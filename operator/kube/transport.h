// HTTP to the API server, as a small interface: the client (client.h) speaks Kubernetes over it,
// tests can hand it an in-memory double, and the only implementation that touches the network
// (cpprestsdk over OpenSSL, transport_cpprest.cc) stays behind it, the one place cpprestsdk is
// included.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
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
  std::chrono::seconds timeout{30};
};

struct HttpResponse {
  int status = 0;
  std::string body;
  int retry_after = 0;  // seconds, from Retry-After
};

class Transport {
 public:
  virtual ~Transport() = default;
  // One request and its whole response. Fails only when no response came (kUnavailable,
  // kTimeout); any HTTP status is a response.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
  // A long request (a watch): `on_data` gets the body as it arrives and returns false to stop.
  // Returns the status when the stream ends; a non-2xx status is returned with its body.
  virtual Result<HttpResponse> Stream(const HttpRequest& request,
                                      const std::function<bool(std::string_view)>& on_data) = 0;
};

// The real transport for `config`: TLS with the config's CA and client certificate, bearer token
// (re-read from the token file on every request, since it rotates).
Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config);

}  // namespace poolkeeper::kube
