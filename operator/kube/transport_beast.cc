// The HTTP/1.1 transport over Boost.Beast and OpenSSL. Why it looks the way it does:
// - One TLS context per client certificate: parsing PEM and building an SSL_CTX per request was
//   half of the operator's CPU (issue 14). The context is built again only when the credential's
//   certificate changes (an exec plugin handed out another one).
// - Connections are kept alive and reused, most recent first; before reuse, one that the server
//   has closed (readable while idle: a FIN or close_notify) is dropped. A request that still
//   meets a dead kept-alive connection is sent once more on a fresh one, but only when nothing of
//   it can have reached the server (the write failed at once) or the method is idempotent.
// - Every pooled connection has its own io_context, run on the calling thread for the duration
//   of one operation: a request needs no I/O thread, and a stop (HttpRequest::stop) from another
//   thread stops that io_context.
// - Streams (watches) run on one event loop, its thread started with the first
//   (transport_beast_stream.h): however many watches, one thread waits on them all.
#include <future>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/thread.h"
#include "kube/credentials.h"
#include "kube/tls.h"
#include "kube/transport.h"
#include "kube/transport_beast_parts.h"
#include "kube/transport_beast_stream.h"

namespace poolkeeper::kube::beast_transport {
namespace {

class BeastTransport : public Transport {
 public:
  BeastTransport(Endpoint endpoint, std::shared_ptr<const TlsSettings> tls,
                 std::shared_ptr<Credentials> credentials, TransportOptions options)
      : endpoint_(std::move(endpoint)),
        tls_(std::move(tls)),
        credentials_(std::move(credentials)),
        options_(options) {}

  ~BeastTransport() override {
    streams_guard_.reset();
    streams_.stop();  // the streams' owners have ended them; nothing of theirs is left to run
    if (streams_thread_.joinable()) streams_thread_.join();
  }

  // One request, and once more with a fresh credential when a plugin's was refused (401): the
  // token may have been revoked or rotated before its expirationTimestamp.
  Result<HttpResponse> Send(const HttpRequest& request) override {
    for (int attempt = 0;; ++attempt) {
      auto credential = credentials_->Current();
      if (!credential) return std::unexpected(credential.error());
      auto response = Once(request, *credential);
      if (response && response->status == 401 && attempt == 0 &&
          credentials_->Rejected(*credential)) {
        continue;
      }
      return response;
    }
  }

  Result<HttpResponse> Stream(const HttpRequest& request, const OnData& on_data) override {
    auto ended = std::make_shared<std::promise<Result<HttpResponse>>>();
    StreamAsync(request, on_data,
                [ended](Result<HttpResponse> result) { ended->set_value(std::move(result)); });
    return ended->get_future().get();
  }

  // Credential, TLS context and address on the calling thread (a plugin or a resolver may take
  // a while); the rest on the streams' loop.
  void StreamAsync(HttpRequest request, OnData on_data, OnDone on_done) override {
    const std::string what = Describe(request);
    auto credential = credentials_->Current();
    if (!credential) return on_done(std::unexpected(credential.error()));
    auto context = ContextFor(*credential, what);
    if (!context) return on_done(std::unexpected(context.error()));
    auto io = StreamsLoop();
    if (!io) return on_done(std::unexpected(io.error()));
    error_code ec;
    auto addresses = tcp::resolver(**io).resolve(endpoint_.host, endpoint_.port, ec);
    if (ec) return on_done(Fail(ErrorCode::kUnavailable, what + ": " + ec.message()));
    bhttp::request<bhttp::string_body> message = Message(request, *credential);
    // A refused credential is dropped so that the next request (the informer's LIST) gets a
    // fresh one; the stream is not tried again here, on the loop, where a plugin must not run.
    auto done = [credentials = credentials_, used = *credential,
                 on_done = std::move(on_done)](Result<HttpResponse> result) {
      if (result && result->status == 401) credentials->Rejected(used);
      on_done(std::move(result));
    };
    StartStream(**io, {.request = std::move(request),
                       .what = what,
                       .message = std::move(message),
                       .context = std::move(*context),
                       .addresses = std::move(addresses),
                       .on_data = std::move(on_data),
                       .on_done = std::move(done)});
  }

 private:
  // The streams' io_context, its thread started with the first stream.
  Result<asio::io_context*> StreamsLoop() {
    std::lock_guard guard(mutex_);
    if (!streams_thread_.joinable()) {
      auto started = StartThread("kube-streams", [this] { streams_.run(); });
      if (!started) return std::unexpected(started.error());
      streams_thread_ = std::move(*started);
    }
    return &streams_;
  }

  // "GET /api/v1/...": the request in errors, without its query.
  static std::string Describe(const HttpRequest& request) {
    return request.method + " " + request.path.substr(0, request.path.find('?'));
  }

  // The TLS context for `credential`'s client certificate (null for http://): the current one,
  // or a new one when the certificate changed. Errors name `what`.
  Result<std::shared_ptr<TlsContext>> ContextFor(const Credential& credential,
                                                 const std::string& what) {
    if (!endpoint_.tls) return nullptr;
    std::lock_guard guard(mutex_);
    if (context_ && context_->cert_pem == credential.client_cert_pem &&
        context_->key_pem == credential.client_key_pem) {
      return context_;
    }
    auto context = std::make_shared<TlsContext>();
    try {
      tls_->Apply(context->context.native_handle());
      if (!credential.client_cert_pem.empty()) {
        context->context.use_certificate_chain(asio::buffer(credential.client_cert_pem));
        context->context.use_private_key(asio::buffer(credential.client_key_pem),
                                         asio::ssl::context::pem);
      }
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kUnavailable, what + ": client certificate: " + e.what());
    }
    context->cert_pem = credential.client_cert_pem;
    context->key_pem = credential.client_key_pem;
    context_ = context;
    // Idle connections of an older certificate would authenticate as it: closed.
    std::erase_if(idle_, [&](const auto& c) { return c->context != context_; });
    return context_;
  }

  // An idle connection made with `context` that the server has not closed, or null.
  std::unique_ptr<Connection> TakeIdle(const std::shared_ptr<TlsContext>& context) {
    std::lock_guard guard(mutex_);
    while (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->context == context && !connection->ServerClosed()) return connection;
    }
    return nullptr;
  }

  void GiveBack(std::unique_ptr<Connection> connection) {
    connection->reused = true;
    std::lock_guard guard(mutex_);
    if (connection->context == context_ && idle_.size() < options_.max_idle_connections) {
      idle_.push_back(std::move(connection));
    }
  }

  std::unique_ptr<Connection> NewConnection(std::shared_ptr<TlsContext> context) {
    return std::make_unique<Connection>(std::move(context));
  }

  // Resolves (on this thread: asio's asynchronous resolver would start a thread per
  // io_context), connects and, for https, shakes hands, all before `deadline`.
  error_code Open(Connection& connection, Runner& runner,
                  std::chrono::steady_clock::time_point deadline, bool* handshake) {
    error_code ec;
    tcp::resolver resolver(connection.io);
    auto addresses = resolver.resolve(endpoint_.host, endpoint_.port, ec);
    if (ec) return ec;
    connection.socket.Lowest().expires_at(deadline);
    ec = runner.Run([&](auto handler) {
      connection.socket.Lowest().async_connect(
          addresses, [handler](error_code e, const tcp::endpoint&) mutable { handler(e, 0); });
    });
    if (ec || !connection.socket.secure) return ec;
    *handshake = true;
    return runner.Run([&](auto handler) {
      connection.socket.secure->async_handshake(asio::ssl::stream_base::client,
                                                [handler](error_code e) mutable { handler(e, 0); });
    });
  }

  bhttp::request<bhttp::string_body> Message(const HttpRequest& request,
                                             const Credential& credential) const {
    bhttp::request<bhttp::string_body> message;
    message.version(11);
    message.method_string(request.method);
    message.target(endpoint_.prefix + request.path);
    message.set(bhttp::field::host, endpoint_.authority);
    message.set(bhttp::field::accept, request.accept);
    message.set(bhttp::field::user_agent, "poolkeeper");
    if (!credential.token.empty()) {
      message.set(bhttp::field::authorization, "Bearer " + credential.token);
    }
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      message.set(bhttp::field::content_type, request.content_type);
      message.body() = request.body;
    }
    message.prepare_payload();
    return message;
  }

  template <typename Stream>
  static void StartWrite(Stream& stream, bhttp::request<bhttp::string_body>& message,
                         std::function<void(error_code, size_t)> handler) {
    bhttp::async_write(stream, message, std::move(handler));
  }

  // Does `operation` (write, read header, read some) on whichever stream the connection has.
  template <typename Op>
  static error_code OnStream(Connection& connection, Runner& runner, Op&& operation,
                             size_t* transferred = nullptr) {
    return runner.Run(
        [&](auto handler) {
          std::function<void(error_code, size_t)> done = [handler](error_code e, size_t n) mutable {
            handler(e, n);
          };
          connection.socket.On([&](auto& stream) { operation(stream, std::move(done)); });
        },
        transferred);
  }

  Result<HttpResponse> Once(const HttpRequest& request, const Credential& credential) {
    const std::string what = Describe(request);
    auto made = ContextFor(credential, what);
    if (!made) return std::unexpected(made.error());
    const std::shared_ptr<TlsContext>& context = *made;
    Attempt attempt{.request = request,
                    .what = what,
                    .message = Message(request, credential),
                    .deadline = std::chrono::steady_clock::now() + request.timeout};
    std::unique_ptr<Connection> connection = TakeIdle(context);
    if (!connection) connection = NewConnection(context);
    Outcome outcome = Exchange(std::move(connection), attempt);
    if (outcome.retry) outcome = Exchange(NewConnection(context), attempt);
    // Handed back only now that the request's stop callback, which could stop its io_context, is
    // gone.
    if (outcome.keep) GiveBack(std::move(outcome.keep));
    return std::move(outcome.result);
  }

  struct Attempt {
    const HttpRequest& request;
    const std::string& what;
    bhttp::request<bhttp::string_body> message;
    std::chrono::steady_clock::time_point deadline;
  };
  struct Outcome {
    Result<HttpResponse> result;
    bool retry = false;                // on a fresh connection: this one was dead
    std::unique_ptr<Connection> keep;  // to reuse
  };

  static Outcome Failure(const Attempt& attempt, const error_code& ec, bool stopped,
                         const std::string& stage = "") {
    return {
        std::unexpected(TransportError(attempt.what, ec, stopped, attempt.request.timeout, stage))};
  }

  // The request on `connection` (opened first when new), its response read to the end.
  Outcome Exchange(std::unique_ptr<Connection> connection, Attempt& attempt) {
    const HttpRequest& request = attempt.request;
    Runner runner(*connection, request.stop);
    if (!connection->reused) {
      bool handshake = false;
      if (error_code ec = Open(*connection, runner, attempt.deadline, &handshake)) {
        // A refused certificate lands here, before any request bytes were written.
        return Failure(attempt, ec, runner.stopped(), handshake ? "TLS handshake: " : "");
      }
    }
    connection->socket.Lowest().expires_at(attempt.deadline);
    size_t written = 0;
    error_code ec = OnStream(
        *connection, runner,
        [&](auto& stream, auto done) { StartWrite(stream, attempt.message, std::move(done)); },
        &written);
    // A kept-alive connection the server closed meanwhile: once more on a fresh one when
    // nothing can have arrived there or the method may be repeated.
    const bool may_retry = connection->reused && !runner.stopped() && ec != beast::error::timeout;
    if (ec) {
      if (may_retry && (written == 0 || Idempotent(request.method)))
        return {Result<HttpResponse>(), true};
      return Failure(attempt, ec, runner.stopped());
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.header_limit(64 * 1024);
    ec = OnStream(*connection, runner, [&](auto& stream, auto done) {
      bhttp::async_read_header(stream, connection->buffer, parser, std::move(done));
    });
    if (ec) {
      bool closed = ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                    ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated;
      if (may_retry && closed && Idempotent(request.method)) return {Result<HttpResponse>(), true};
      return Failure(attempt, ec, runner.stopped());
    }
    HttpResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    if (auto it = parser.get().find("Retry-After"); it != parser.get().end()) {
      out.retry_after = std::atoi(std::string(it->value()).c_str());
    }
    ec = OnStream(*connection, runner, [&](auto& stream, auto done) {
      bhttp::async_read(stream, connection->buffer, parser, std::move(done));
    });
    if (ec) return Failure(attempt, ec, runner.stopped());
    out.body = std::move(parser.get().body());
    Outcome outcome{out};
    if (parser.keep_alive() && !runner.stopped()) outcome.keep = std::move(connection);
    return outcome;
  }

  const Endpoint endpoint_;
  const std::shared_ptr<const TlsSettings> tls_;
  const std::shared_ptr<Credentials> credentials_;
  const TransportOptions options_;
  std::mutex mutex_;  // guards context_, idle_ and streams_thread_
  std::shared_ptr<TlsContext> context_;
  std::vector<std::unique_ptr<Connection>> idle_;
  asio::io_context streams_{1};
  asio::executor_work_guard<asio::io_context::executor_type> streams_guard_ =
      asio::make_work_guard(streams_);
  std::thread streams_thread_;
};

}  // namespace
}  // namespace poolkeeper::kube::beast_transport

namespace poolkeeper::kube {

Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config,
                                                     std::shared_ptr<Credentials> credentials,
                                                     TransportOptions options) {
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
  return std::unique_ptr<Transport>(std::make_unique<beast_transport::BeastTransport>(
      beast_transport::ParseEndpoint(config.server), *tls, std::move(credentials), options));
}

Result<std::unique_ptr<Transport>> MakeHttpTransport(const ClusterConfig& config) {
  return MakeHttpTransport(
      config, std::make_shared<Credentials>(config, std::make_shared<PosixProcessRunner>()));
}

}  // namespace poolkeeper::kube
