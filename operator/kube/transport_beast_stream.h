// One streamed request (a watch) run asynchronously on a shared io_context: the Beast
// transport's StreamAsync (transport.h). Every watch of the operator runs on that one event loop
// and its one thread, instead of a thread of its own blocked on a quiet stream (issue 14). The
// stream opens a connection of its own and closes it at the end: a watch lasts minutes, so one
// handshake per watch costs nothing worth pooling for. Only transport_beast.cc includes this.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "kube/transport.h"
#include "kube/transport_beast_parts.h"

namespace poolkeeper::kube::beast_transport {

struct StreamStart {
  HttpRequest request;  // its timeout is the whole stream's deadline; its stop ends it at once
  std::string what;     // "GET /api/v1/..." for errors
  bhttp::request<bhttp::string_body> message;
  std::shared_ptr<TlsContext> context;  // null for http://
  tcp::resolver::results_type addresses;
  Transport::OnData on_data;
  Transport::OnDone on_done;
};

// Connects, shakes hands, writes the request and streams the response's body to on_data, all as
// handlers on `io`; then on_done, once, on `io`'s thread. Returns at once.
void StartStream(asio::io_context& io, StreamStart start);

}  // namespace poolkeeper::kube::beast_transport
