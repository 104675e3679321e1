// A keep-alive HTTPS/1.1 server on loopback for the transport's connection tests: one thread per
// connection, many requests per connection, and counts of handshakes and requests. Paths decide
// the answer: /hold waits until Release() (or the server's end), /watch answers with a chunked
// stream that sends one event and then stays quiet, /watch-twice one event, another after
// Release() and the end of the stream; anything else is 200 {}. With
// drop_second_request, a connection's second request is read and the connection closed without
// an answer (a kept-alive connection the server dropped).
#pragma once

#include <signal.h>
#include <sys/socket.h>

#include <condition_variable>
#include <set>

#include "tls_test_server.h"

namespace poolkeeper::kube::testing {

class KeepAliveServer {
 public:
  explicit KeepAliveServer(const KeyAndCert& identity, bool drop_second_request = false)
      : drop_second_request_(drop_second_request) {
    signal(SIGPIPE, SIG_IGN);  // answers written after the client went
    context_ = ServerContext(identity);
    listener_ = ListenOnLoopback(64, port_);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~KeepAliveServer() {
    {
      std::lock_guard guard(mutex_);
      stop_ = true;
      for (int fd : open_) shutdown(fd, SHUT_RDWR);
    }
    changed_.notify_all();
    acceptor_.join();
    for (auto& thread : threads_) thread.join();
    close(listener_);
    SSL_CTX_free(context_);
  }

  int port() const { return port_; }
  int handshakes() {
    std::lock_guard guard(mutex_);
    return handshakes_;
  }
  std::vector<std::string> requests() {  // request lines, in arrival order
    std::lock_guard guard(mutex_);
    return requests_;
  }
  // Wait (bounded) until `n` requests are held at /hold, or until `n` watches have opened.
  bool WaitForHeld(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return held_ >= n; });
  }
  bool WaitForWatch(int n = 1) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return watching_ >= n; });
  }
  void Release() {
    {
      std::lock_guard guard(mutex_);
      ++release_;
      held_ = 0;
    }
    changed_.notify_all();
  }

 private:
  void Accept() {
    for (;;) {
      {
        std::lock_guard guard(mutex_);
        if (stop_) return;
      }
      pollfd fd{listener_, POLLIN, 0};
      if (poll(&fd, 1, 20) <= 0) continue;
      int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::lock_guard guard(mutex_);
      open_.insert(client);
      threads_.emplace_back([this, client] { Serve(client); });
    }
  }

  bool Write(SSL* ssl, const std::string& data) {
    return SSL_write(ssl, data.data(), static_cast<int>(data.size())) > 0;
  }

  void Serve(int client) {
    SSL* ssl = SSL_new(context_);
    SSL_set_fd(ssl, client);
    if (SSL_accept(ssl) == 1) {
      {
        std::lock_guard guard(mutex_);
        ++handshakes_;
      }
      std::string pending;
      for (int served = 0;; ++served) {
        size_t end;
        char buffer[4096];
        while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
          int n = SSL_read(ssl, buffer, sizeof buffer);
          if (n <= 0) goto done;
          pending.append(buffer, static_cast<size_t>(n));
        }
        std::string head = pending.substr(0, end + 4);
        pending.erase(0, end + 4);
        size_t length = 0;
        if (auto at = head.find("Content-Length: "); at != std::string::npos) {
          length = std::stoul(head.substr(at + 16));
        }
        while (pending.size() < length) {
          int n = SSL_read(ssl, buffer, sizeof buffer);
          if (n <= 0) goto done;
          pending.append(buffer, static_cast<size_t>(n));
        }
        pending.erase(0, length);
        std::string line = head.substr(0, head.find("\r\n"));
        {
          std::lock_guard guard(mutex_);
          requests_.push_back(line);
        }
        if (drop_second_request_ && served == 1) break;
        if (line.find(" /hold") != std::string::npos) {
          std::unique_lock lock(mutex_);
          uint64_t release = release_;
          ++held_;
          changed_.notify_all();
          changed_.wait(lock, [&] { return stop_ || release_ != release; });
        }
        if (line.find(" /watch") != std::string::npos ||
            line.find("watch=true") != std::string::npos) {
          Write(ssl,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
          std::string event = R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"2"}}})"
                              "\n";
          char size[16];
          snprintf(size, sizeof size, "%zx\r\n", event.size());
          Write(ssl, size + event + "\r\n");
          {
            std::lock_guard guard(mutex_);
            ++watching_;
          }
          changed_.notify_all();
          if (line.find(" /watch-twice") != std::string::npos) {
            // A second event once released, then the end of the stream.
            {
              std::unique_lock lock(mutex_);
              uint64_t release = release_;
              changed_.wait(lock, [&] { return stop_ || release_ != release; });
            }
            Write(ssl, size + event + "\r\n0\r\n\r\n");
            continue;
          }
          // Quiet until the client goes (or the server stops).
          SSL_read(ssl, buffer, sizeof buffer);
          break;
        }
        std::string body = line.find(" /api/v1/") != std::string::npos
                               ? R"({"metadata":{"resourceVersion":"1"},"items":[]})"
                               : "{}";
        if (!Write(ssl, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body)) {
          break;
        }
      }
    }
  done:
    SSL_free(ssl);
    ERR_clear_error();
    std::lock_guard guard(mutex_);
    open_.erase(client);
    close(client);
  }

  const bool drop_second_request_;
  SSL_CTX* context_ = nullptr;
  int listener_ = -1;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;
  int handshakes_ = 0;
  int held_ = 0;
  int watching_ = 0;
  uint64_t release_ = 0;
  std::set<int> open_;
  std::vector<std::string> requests_;
  std::thread acceptor_;
  std::vector<std::thread> threads_;
};

}  // namespace poolkeeper::kube::testing
