#include "kube/transport_beast_stream.h"

#include <boost/asio/post.hpp>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <stop_token>

namespace poolkeeper::kube::beast_transport {
namespace {

// The stream's state, kept alive by the handler in flight (each holds a shared_ptr to it).
class AsyncStream : public std::enable_shared_from_this<AsyncStream> {
 public:
  AsyncStream(asio::io_context& io, StreamStart start)
      : io_(io),
        start_(std::move(start)),
        socket_(io, start_.context),
        deadline_(std::chrono::steady_clock::now() + start_.request.timeout) {
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_.header_limit(64 * 1024);
  }

  void Begin() {
    // A stop from any thread is handed to the loop, where the socket lives. Weak: the callback
    // must not keep the stream alive after it ended. Registered before the loop can see the
    // stream, which resets it when it ends.
    std::weak_ptr<AsyncStream> weak = weak_from_this();
    on_stop_.emplace(start_.request.stop, [weak, &io = io_] {
      asio::post(io, [weak] {
        if (auto self = weak.lock()) self->Cancel();
      });
    });
    asio::post(io_, [self = shared_from_this()] { self->Connect(); });
  }

 private:
  void Cancel() {
    if (finished_) return;
    stopped_ = true;
    socket_.Lowest().cancel();  // the operation in flight ends with operation_aborted
  }

  void Connect() {
    if (stopped_) return Fail({});
    socket_.Lowest().expires_at(deadline_);
    socket_.Lowest().async_connect(
        start_.addresses, [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
          if (ec) return self->Fail(ec);
          self->Handshake();
        });
  }

  void Handshake() {
    if (!socket_.secure) return Write();
    socket_.secure->async_handshake(asio::ssl::stream_base::client,
                                    [self = shared_from_this()](error_code ec) {
                                      if (ec) return self->Fail(ec, "TLS handshake: ");
                                      self->Write();
                                    });
  }

  void Write() {
    socket_.On([this](auto& stream) {
      bhttp::async_write(stream, start_.message,
                         [self = shared_from_this()](error_code ec, size_t) {
                           if (ec) return self->Fail(ec);
                           self->ReadHeader();
                         });
    });
  }

  void ReadHeader() {
    socket_.On([this](auto& stream) {
      bhttp::async_read_header(stream, buffer_, parser_,
                               [self = shared_from_this()](error_code ec, size_t) {
                                 if (ec) return self->Fail(ec);
                                 self->Headed();
                               });
    });
  }

  void Headed() {
    response_.status = static_cast<int>(parser_.get().result_int());
    if (auto it = parser_.get().find("Retry-After"); it != parser_.get().end()) {
      response_.retry_after = std::atoi(std::string(it->value()).c_str());
    }
    // Only a success is streamed; an error's body is read whole, for its Status.
    streaming_ = response_.status >= 200 && response_.status < 300;
    ReadSome();
  }

  void ReadSome() {
    if (parser_.is_done()) return Finish(response_);
    parser_.get().body().data = chunk_;
    parser_.get().body().size = sizeof chunk_;
    socket_.On([this](auto& stream) {
      bhttp::async_read_some(
          stream, buffer_, parser_,
          [self = shared_from_this()](error_code ec, size_t) { self->Read(ec); });
    });
  }

  void Read(error_code ec) {
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t got = sizeof chunk_ - parser_.get().body().size;
    if (got > 0) {
      if (!streaming_) {
        response_.body.append(chunk_, got);
      } else if (!start_.on_data(std::string_view(chunk_, got))) {
        return Finish(response_);  // the caller has what it wanted
      }
    }
    if (ec) {
      // A watch the server ends by closing the connection has ended, as has one stopped: the
      // caller knows whether it asked for that.
      if (streaming_ && (ec == bhttp::error::partial_message || stopped_)) {
        return Finish(response_);
      }
      return Fail(ec);
    }
    ReadSome();
  }

  void Fail(const error_code& ec, const std::string& stage = "") {
    Finish(
        std::unexpected(TransportError(start_.what, ec, stopped_, start_.request.timeout, stage)));
  }

  void Finish(Result<HttpResponse> result) {
    if (finished_) return;
    finished_ = true;
    on_stop_.reset();
    error_code ignored;
    (void)socket_.Lowest().socket().close(ignored);
    Transport::OnDone on_done = std::move(start_.on_done);
    on_done(std::move(result));
  }

  asio::io_context& io_;
  StreamStart start_;
  Socket socket_;
  const std::chrono::steady_clock::time_point deadline_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
  char chunk_[16 * 1024];
  HttpResponse response_;
  bool streaming_ = false;
  bool stopped_ = false;  // on the loop's thread only, as is everything here
  bool finished_ = false;
  std::optional<std::stop_callback<std::function<void()>>> on_stop_;
};

}  // namespace

void StartStream(asio::io_context& io, StreamStart start) {
  std::make_shared<AsyncStream>(io, std::move(start))->Begin();
}

}  // namespace poolkeeper::kube::beast_transport
