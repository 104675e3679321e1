// The server side of the HTTP module: the listening socket, the registry of open connections and
// its cap, the threads, and a draining stop. Boost.Asio and Boost.Beast (through connection.h)
// are included here and nowhere else.
#include "http/server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/log.h"
#include "http/connection.h"

namespace poolkeeper::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

struct HostPort {
  std::string host;  // without brackets
  bool ipv6 = false;
  uint16_t port = 0;
};

Result<HostPort> ParseAddress(std::string_view address) {
  auto invalid = [&] {
    return Fail(ErrorCode::kInvalid,
                "listen address \"" + std::string(address) + "\" is not host:port");
  };
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return invalid();
  HostPort out;
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    out.ipv6 = true;
  } else if (host.find_first_of("[]:") != std::string_view::npos) {
    return invalid();  // an IPv6 literal needs its brackets
  }
  out.host = host.empty() ? "0.0.0.0" : std::string(host);
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) return invalid();
  return out;
}

std::string Join(const HostPort& hp, uint16_t port) {
  return (hp.ipv6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(port);
}

// A quarter of the descriptors the process may open: two servers at their caps still leave half
// for the API client, the database sessions and the files.
int CapToFdLimit(int wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return wanted;
  int quarter = static_cast<int>(std::min<rlim_t>(limit.rlim_cur / 4, 1 << 20));
  return std::max(1, std::min(wanted, quarter));
}

}  // namespace

struct Server::Impl final : detail::Hub {
  explicit Impl(ServerOptions o)
      : options_(std::move(o)),
        work(net::make_work_guard(ioc)),
        handlers_(static_cast<size_t>(std::max(1, options_.limits.handler_threads))),
        acceptor(net::make_strand(ioc)),
        retry(acceptor.get_executor()) {}

  const ServerOptions& options() const override { return options_; }
  net::thread_pool& handlers() override { return handlers_; }
  bool stopping() const override { return stopping_.load(); }
  void Count(uint64_t ServerStats::*counter) override {
    std::lock_guard lock(mutex);
    ++(counters.*counter);
  }
  void Gone(uint64_t id) override {
    std::lock_guard lock(mutex);
    connections.erase(id);
    evicting.erase(id);
    gone.notify_all();
  }

  void Accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE) or similar: try again shortly rather than spin.
      Log(LogLevel::kWarn, "http accept failed", {{"address", address}, {"error", ec.message()}});
      retry.expires_after(std::chrono::milliseconds(100));
      retry.async_wait([this](beast::error_code e) {
        if (!e) Accept();
      });
      return;
    }
    if (stopping_ || !Admit()) {
      beast::error_code ignored;
      socket.close(ignored);
      return Accept();
    }
    uint64_t id = 0;
    {
      std::lock_guard lock(mutex);
      id = next_id++;
    }
    std::shared_ptr<detail::ConnectionBase> connection;
    if (tls) {
      auto c = std::make_shared<detail::Connection<beast::ssl_stream<beast::tcp_stream>>>(
          id, *this, beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls));
      connection = c;
      Register(connection);
      c->Begin();
    } else {
      auto c = std::make_shared<detail::Connection<beast::tcp_stream>>(
          id, *this, beast::tcp_stream(std::move(socket)));
      connection = c;
      Register(connection);
      c->Begin();
    }
    Accept();
  }

  void Register(const std::shared_ptr<detail::ConnectionBase>& connection) {
    std::lock_guard lock(mutex);
    connections.emplace(connection->id(), connection);
  }

  // Under the cap: yes. At it: the oldest idle connection makes room, or the new one is refused.
  bool Admit() {
    std::shared_ptr<detail::ConnectionBase> victim;
    std::vector<std::shared_ptr<detail::ConnectionBase>> held;  // released after the lock
    {
      std::lock_guard lock(mutex);
      if (static_cast<int>(connections.size() - evicting.size()) <
          options_.limits.max_connections) {
        return true;
      }
      for (const auto& [id, weak] : connections) {
        if (evicting.contains(id)) continue;
        auto candidate = weak.lock();
        if (candidate && candidate->idle()) {
          victim = std::move(candidate);
          evicting.insert(id);
          ++counters.connections_evicted;
          break;
        }
        held.push_back(std::move(candidate));
      }
      if (!victim) {
        uint64_t refused = ++counters.connections_refused;
        if (refused == 1 || refused % 1000 == 0) {
          Log(LogLevel::kWarn, "http connections at the cap, refusing new ones",
              {{"address", address},
               {"max_connections", std::to_string(options_.limits.max_connections)},
               {"refused_total", std::to_string(refused)}});
        }
        return false;
      }
    }
    victim->Close(true);
    return true;
  }

  std::vector<std::shared_ptr<detail::ConnectionBase>> Open() {
    std::vector<std::shared_ptr<detail::ConnectionBase>> open;  // outlives the lock
    std::lock_guard lock(mutex);
    for (const auto& [id, weak] : connections) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
    return open;
  }

  // Until no connection is left or `timeout` passed; true when none is left.
  bool WaitForNoConnections(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return gone.wait_for(lock, timeout, [this] { return connections.empty(); });
  }

  void Stop() {
    if (stopping_.exchange(true)) return;
    std::promise<void> closed;
    net::post(acceptor.get_executor(), [this, &closed] {
      beast::error_code ignored;
      retry.cancel();
      acceptor.close(ignored);
      closed.set_value();
    });
    closed.get_future().wait();
    for (const auto& connection : Open()) connection->Close(false);
    if (!WaitForNoConnections(options_.limits.drain_timeout)) {
      Log(LogLevel::kWarn, "http requests still in flight at stop; closing them",
          {{"address", address}});
      for (const auto& connection : Open()) connection->Close(true);
      WaitForNoConnections(std::chrono::seconds(1));
    }
    work.reset();
    ioc.stop();
    for (std::thread& thread : threads) thread.join();
    handlers_.join();
  }

  ServerOptions options_;
  std::string address;
  std::optional<net::ssl::context> tls;
  std::mutex mutex;  // guards what follows, down to counters
  std::condition_variable gone;
  std::map<uint64_t, std::weak_ptr<detail::ConnectionBase>> connections;  // oldest first
  std::set<uint64_t> evicting;  // closed to make room, not gone yet
  uint64_t next_id = 1;
  ServerStats counters;
  std::atomic<bool> stopping_{false};
  // Declared after what connections touch when they are destroyed: the pool and the context go
  // first, with every handler (and so every connection) they still hold.
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  net::thread_pool handlers_;
  tcp::acceptor acceptor;
  net::steady_timer retry;
  std::vector<std::thread> threads;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (impl_) impl_->Stop();
}

const std::string& Server::address() const { return impl_->address; }

const ServerLimits& Server::limits() const { return impl_->options_.limits; }

ServerStats Server::stats() const {
  // Declared before the lock: a connection whose last owner this becomes is destroyed (and
  // unregisters itself, taking the lock) only once the lock is released.
  std::vector<std::shared_ptr<detail::ConnectionBase>> held;
  std::lock_guard lock(impl_->mutex);
  ServerStats stats = impl_->counters;
  stats.open_connections = static_cast<int>(impl_->connections.size());
  for (const auto& [id, weak] : impl_->connections) {
    if (auto connection = weak.lock()) {
      if (!connection->idle()) ++stats.busy_connections;
      held.push_back(std::move(connection));
    }
  }
  return stats;
}

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto parsed = ParseAddress(options.address);
  if (!parsed) return std::unexpected(parsed.error());
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Fail(ErrorCode::kInvalid, "TLS needs both a certificate and a key file");
  }
  for (const std::string* file : {&options.tls_cert_file, &options.tls_key_file}) {
    if (!file->empty() && access(file->c_str(), R_OK) != 0) {
      return Fail(ErrorCode::kInvalid, "TLS file " + *file + ": " + strerror(errno));
    }
  }
  ServerLimits& limits = options.limits;
  if (limits.max_header_bytes < 1024 || limits.max_connections < 1 || limits.io_threads < 1 ||
      limits.handler_threads < 1) {
    return Fail(ErrorCode::kInvalid,
                "http limits: max_header_bytes must be at least 1024, max_connections, "
                "io_threads and handler_threads at least 1");
  }
  limits.max_connections = CapToFdLimit(limits.max_connections);
  auto impl = std::make_unique<Impl>(std::move(options));
  const ServerOptions& o = impl->options_;
  if (!o.tls_cert_file.empty()) {
    try {
      impl->tls.emplace(net::ssl::context::tls_server);
      impl->tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                             net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                             net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
      impl->tls->use_certificate_chain_file(o.tls_cert_file);
      impl->tls->use_private_key_file(o.tls_key_file, net::ssl::context::pem);
    } catch (const boost::system::system_error& e) {
      return Fail(ErrorCode::kInvalid, "TLS certificate " + o.tls_cert_file + " and key " +
                                           o.tls_key_file + ": " + e.what());
    }
  }
  beast::error_code ec;
  tcp::resolver resolver(impl->ioc);
  auto endpoints = resolver.resolve(parsed->host, std::to_string(parsed->port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return Fail(ErrorCode::kUnavailable, "resolving " + parsed->host + ": " + ec.message());
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  std::string where = Join(*parsed, parsed->port);
  // As is usual for servers: a port in TIME_WAIT is free, one with a listener is not.
  if (impl->acceptor.open(endpoint.protocol(), ec) ||
      impl->acceptor.set_option(net::socket_base::reuse_address(true), ec) ||
      impl->acceptor.bind(endpoint, ec) ||
      impl->acceptor.listen(net::socket_base::max_listen_connections, ec)) {
    return Fail(ErrorCode::kUnavailable, "listening on " + where + ": " + ec.message());
  }
  impl->address = Join(*parsed, impl->acceptor.local_endpoint().port());
  impl->Accept();
  for (int i = 0; i < o.limits.io_threads; ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {  // a handler threw: log it, keep serving
          Log(LogLevel::kError, "http handler failed", {{"error", e.what()}});
        }
      }
    });
  }
  Log(LogLevel::kInfo, "http server listening",
      {{"address", impl->address},
       {"tls", impl->tls ? "true" : "false"},
       {"max_connections", std::to_string(o.limits.max_connections)}});
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

}  // namespace poolkeeper::http
