// One client connection of the HTTP server (server.cc), over plain TCP or TLS: Boost.Beast parses
// the requests; this file decides how long and how much each step may take. Internal to the http
// module, included by server.cc only (Asio and Beast headers stay out of every other unit).
//
// A connection's life: [TLS handshake] -> wait for a request (idle) -> its header (header
// deadline) -> [its POST body] -> the reply (inline for the probes, on the handler pool for
// /metrics and POST) -> again if kept alive. Every step has a deadline; an error reply with input
// left unread ends with a short lingering close, so the client reads the reply instead of a reset.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "http/server.h"

namespace poolkeeper::http::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// What a connection needs from its server: the options, the handler pool, the stop flag, the
// counters, and a way to say it is gone.
struct Hub {
  virtual ~Hub() = default;
  virtual const ServerOptions& options() const = 0;
  virtual net::thread_pool& handlers() = 0;
  virtual bool stopping() const = 0;
  virtual void Count(uint64_t ServerStats::*counter) = 0;
  virtual void Gone(uint64_t id) = 0;
};

// The part of a connection the server's registry sees: whether it may be closed to make room.
class ConnectionBase {
 public:
  explicit ConnectionBase(uint64_t id) : id_(id) {}
  virtual ~ConnectionBase() = default;
  uint64_t id() const { return id_; }
  // True while no request is being answered: waiting for one, or reading its header.
  bool idle() const { return idle_.load(); }
  // Closes the connection from any thread (posted to its own strand). `busy_too`: also when a
  // request is being answered (Stop() after its drain timeout).
  virtual void Close(bool busy_too) = 0;

 protected:
  std::atomic<bool> idle_{true};

 private:
  const uint64_t id_;
};

template <class Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(uint64_t id, Hub& hub, Stream stream)
      : ConnectionBase(id),
        hub_(hub),
        stream_(std::move(stream)),
        buffer_(hub.options().limits.max_header_bytes + 8192) {}
  ~Connection() override { hub_.Gone(id()); }

  void Begin() {
    const ServerLimits& limits = hub_.options().limits;
    if constexpr (kTls) {
      auto deadline = Clock::now() + limits.tls_handshake_timeout;
      Lowest().expires_at(deadline);
      // The TLS layer reports the timeout's close as its own error (e.g. a truncated stream),
      // so a timeout is told by the clock here.
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this(), deadline](beast::error_code ec) {
                                if (ec && Clock::now() >= deadline)
                                  return self->Fail(beast::error::timeout);
                                if (ec) return self->Fail(ec);
                                self->WaitForRequest(true);
                              });
    } else {
      WaitForRequest(true);
    }
  }

  void Close(bool busy_too) override {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), busy_too] {
      if (busy_too || self->idle()) self->Shutdown();
    });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void Shutdown() {
    beast::error_code ignored;
    Lowest().socket().shutdown(net::socket_base::shutdown_both, ignored);
    Lowest().close();
  }

  void Fail(beast::error_code ec) {
    if (ec == beast::error::timeout) hub_.Count(&ServerStats::connections_timed_out);
    Shutdown();
  }

  // A new connection has header_timeout for its first request, all of it; a kept-alive one
  // waits up to idle_timeout for a first byte, then has header_timeout for the header.
  void WaitForRequest(bool first) {
    idle_ = true;
    const ServerLimits& limits = hub_.options().limits;
    if (hub_.stopping()) return Shutdown();
    if (first) {
      header_deadline_ = Clock::now() + limits.header_timeout;
      Lowest().expires_at(header_deadline_);
    } else {
      Lowest().expires_after(limits.idle_timeout);
    }
    if (buffer_.size() > 0) {  // pipelined: the next request is here already
      if (!first) header_deadline_ = Clock::now() + limits.header_timeout;
      return ReadHeader();
    }
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this(), first](
                                                       beast::error_code ec, size_t n) {
      if (ec) return self->Fail(ec);
      self->buffer_.commit(n);
      if (!first)
        self->header_deadline_ = Clock::now() + self->hub_.options().limits.header_timeout;
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    const ServerLimits& limits = hub_.options().limits;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits.max_header_bytes));
    parser_->body_limit(limits.max_body_bytes);
    Lowest().expires_at(header_deadline_);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
      return Refuse(431, "request header too large");
    }
    if (ec == bhttp::error::body_limit) return Refuse(413, "request body too large");
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      return Fail(ec);
    }
    if (ec) return Refuse(400, "bad request");
    idle_ = false;
    if (parser_->get().method() != bhttp::verb::post) {
      if (!parser_->is_done()) return Refuse(413, "this method takes no request body");
      return Dispatch();
    }
    if (parser_->is_done()) return Dispatch();
    Lowest().expires_after(hub_.options().limits.body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec == bhttp::error::body_limit) {
                          return self->Refuse(413, "request body too large");
                        }
                        if (ec) return self->Fail(ec);
                        self->Dispatch();
                      });
  }

  // The probes are answered here, at once; the rest on the handler pool, so a slow scrape or
  // a token review never holds up the I/O thread.
  void Dispatch() {
    bhttp::request<bhttp::string_body> request = parser_->release();
    parser_.reset();
    bool keep_alive = request.keep_alive();
    std::string_view target(request.target().data(), request.target().size());
    std::string path(target.substr(0, target.find('?')));
    if (request.method() == bhttp::verb::get && (path == "/healthz" || path == "/readyz")) {
      return Write(Route(hub_.options(), "GET", path), keep_alive);
    }
    net::post(hub_.handlers(), [self = this->shared_from_this(), request = std::move(request),
                                path = std::move(path), keep_alive]() mutable {
      auto auth = request.find(bhttp::field::authorization);
      std::string_view authorization;
      if (auth != request.end()) authorization = {auth->value().data(), auth->value().size()};
      std::string_view method(request.method_string().data(), request.method_string().size());
      Reply reply = Route(self->hub_.options(), method, path, request.body(), authorization);
      net::post(self->stream_.get_executor(),
                [self, reply = std::move(reply), keep_alive]() mutable {
                  self->Write(std::move(reply), keep_alive);
                });
    });
  }

  // An error reply; the input the connection still holds is not read.
  void Refuse(int status, std::string body) {
    idle_ = false;
    if (status == 431 || status == 413) hub_.Count(&ServerStats::requests_too_large);
    Reply reply;
    reply.status = status;
    reply.body = std::move(body);
    linger_ = true;
    Write(std::move(reply), false);
  }

  void Write(Reply reply, bool keep_alive) {
    keep_alive = keep_alive && !hub_.stopping();
    response_.emplace(static_cast<bhttp::status>(reply.status), 11);
    response_->set(bhttp::field::content_type, reply.content_type);
    if (!reply.allow.empty()) response_->set(bhttp::field::allow, reply.allow);
    if (reply.status == 401) response_->set(bhttp::field::www_authenticate, "Bearer");
    response_->body() = std::move(reply.body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    Lowest().expires_after(hub_.options().limits.write_timeout);
    bhttp::async_write(stream_, *response_,
                       [self = this->shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                         self->response_.reset();
                         if (ec) return self->Fail(ec);
                         if (self->linger_) return self->Linger();
                         if (!keep_alive) return self->Shutdown();
                         self->WaitForRequest(false);
                       });
  }

  // After an error reply: stop sending, then read and drop what the client still sends for up
  // to a second, so its kernel does not turn our close into a reset that eats the reply.
  void Linger() {
    beast::error_code ignored;
    Lowest().socket().shutdown(net::socket_base::shutdown_send, ignored);
    Lowest().expires_after(std::chrono::seconds(1));
    Drain();
  }

  void Drain() {
    Lowest().async_read_some(net::buffer(scratch_),
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Shutdown();
                               self->Drain();
                             });
  }

  Hub& hub_;
  Stream stream_;
  beast::flat_buffer buffer_;  // bounded: a header larger than the limit never fits
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  Clock::time_point header_deadline_;
  bool linger_ = false;
  char scratch_[4096];
};

}  // namespace poolkeeper::http::detail
