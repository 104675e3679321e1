// The server's limits against the attacks of issue 12 (a 300 MiB header, 1,100 idle connections,
// a slowloris client), replayed on loopback against a real server with short limits set by each
// test: the answer is the one promised, memory stays flat, and the probes keep answering.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"
#include "loopback.h"

namespace poolkeeper::http {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
using testing::ClosedWithin;
using testing::Connect;
using testing::Exchange;
using testing::PortOf;
using testing::ReadToClose;
using testing::Request;
using testing::SendAll;
using testing::StartOnLoopback;

#if defined(__SANITIZE_ADDRESS__)
// ASan's quarantine keeps freed blocks resident, so VmRSS would measure the quarantine.
constexpr bool kVmRssMeasuresTheServer = false;
#else
constexpr bool kVmRssMeasuresTheServer = true;
#endif

ServerOptions Echo() {
  ServerOptions options;
  options.post = [](std::string_view, const std::string& body) -> std::optional<Reply> {
    return Reply{200, "text/plain", "got " + std::to_string(body.size()) + " bytes", ""};
  };
  return options;
}

TEST(Limits, AHeaderOverTheLimitIs431AndMemoryStaysFlat) {
  auto server = StartOnLoopback({});
  const std::string big =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(1 << 20, 'a') + "\r\n\r\n";
  // One round first, so what the first connection allocates once is in the baseline.
  ASSERT_EQ(Exchange(server->address(), big).status, 431);
  long before = testing::VmRssKiB();
  for (int i = 0; i < 8; ++i) {
    auto reply = Exchange(server->address(), big);
    EXPECT_EQ(reply.status, 431);
    EXPECT_EQ(reply.body, "request header too large");
  }
  long after = testing::VmRssKiB();
  // 8 MiB of header sent; the server kept at most its 16 KiB buffer per connection.
  if (kVmRssMeasuresTheServer) {
    EXPECT_LT(after - before, 4 * 1024)
        << "VmRSS grew from " << before << " to " << after << " KiB";
  }
  EXPECT_EQ(server->stats().requests_too_large, 9u);
  EXPECT_EQ(Request(server->address(), "GET", "/healthz").status, 200);
}

TEST(Limits, ManyHeadersUnderTheLimitAreServed) {
  auto server = StartOnLoopback({});
  std::string headers;
  for (int i = 0; i < 100; ++i) headers += "X-H" + std::to_string(i) + ": value\r\n";
  EXPECT_EQ(Request(server->address(), "GET", "/healthz", headers).status, 200);
}

TEST(Limits, BodiesOverTheLimitOrWhereNoneBelongsAre413) {
  ServerOptions options = Echo();
  options.limits.max_body_bytes = 64 * 1024;
  auto server = StartOnLoopback(std::move(options));
  const std::string& at = server->address();
  auto post = [&](const std::string& headers, const std::string& body) {
    return Exchange(at, "POST /validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers +
                            "\r\n" + body);
  };
  struct Case {
    const char* what;
    std::string request;
    int status;
    std::string body;
  };
  std::string fits(64 * 1024, 'x');
  std::string chunked_big;
  for (int i = 0; i < 20; ++i) chunked_big += "1000\r\n" + std::string(4096, 'y') + "\r\n";
  chunked_big += "0\r\n\r\n";
  std::vector<Case> cases{
      {"a body at the limit", "Content-Length: 65536\r\n", 200, "got 65536 bytes"},
      // Refused on its Content-Length, before a byte of it is read.
      {"a declared body over the limit", "Content-Length: 104857600\r\n", 413,
       "request body too large"},
      {"a chunked body that grows over the limit", "Transfer-Encoding: chunked\r\n", 413,
       "request body too large"},
  };
  EXPECT_EQ(post(cases[0].request, fits).status, 200);
  EXPECT_EQ(post(cases[0].request, fits).body, "got 65536 bytes");
  auto declared = post(cases[1].request, "");
  EXPECT_EQ(declared.status, 413);
  EXPECT_EQ(declared.body, "request body too large");
  auto chunked = post(cases[2].request, chunked_big);
  EXPECT_EQ(chunked.status, 413);
  auto get = Exchange(at, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(get.status, 413);
  EXPECT_EQ(get.body, "this method takes no request body");
  EXPECT_EQ(server->stats().requests_too_large, 3u);
}

// 2,000 idle connections against a cap of 50: the excess are closed, and a probe on a new
// connection is answered within a second.
TEST(Limits, IdleConnectionsOverTheCapAreClosedAndProbesStillAnswer) {
  ServerOptions options;
  options.limits.max_connections = 50;
  auto server = StartOnLoopback(std::move(options));
  std::vector<int> idle;
  for (int i = 0; i < 2000; ++i) {
    int fd = Connect(PortOf(server->address()));
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  auto start = std::chrono::steady_clock::now();
  auto healthz = Request(server->address(), "GET", "/healthz");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(healthz.status, 200);
  EXPECT_LT(took, 1s);
  int closed = 0;
  for (int fd : idle) closed += ClosedWithin(fd, closed < 1950 ? 5000ms : 0ms) ? 1 : 0;
  EXPECT_GE(closed, 1950);
  EXPECT_LE(server->stats().open_connections, 51);
  EXPECT_GE(server->stats().connections_evicted, 1950u);
  for (int fd : idle) close(fd);
}

// When every slot holds a request being answered, a new connection is closed at once rather
// than queued: nothing waits on a client that may never finish.
TEST(Limits, WhenEverySlotIsBusyANewConnectionIsClosedAtOnce) {
  ServerOptions options = Echo();
  options.limits.max_connections = 2;
  auto server = StartOnLoopback(std::move(options));
  std::vector<int> busy;
  for (int i = 0; i < 2; ++i) {
    int fd = Connect(PortOf(server->address()));
    // A header whose body never comes: busy until the body timeout.
    SendAll(fd,
            "POST /validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Length: 10\r\n\r\n");
    busy.push_back(fd);
  }
  // Until both headers are in, the slots are idle and a new connection would take one.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server->stats().busy_connections < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(server->stats().busy_connections, 2);
  int extra = Connect(PortOf(server->address()));
  EXPECT_TRUE(ClosedWithin(extra, 1000ms));
  EXPECT_GE(server->stats().connections_refused, 1u);
  close(extra);
  // The busy ones finish their requests as usual.
  SendAll(busy[0], "0123456789");
  auto reply = testing::Parse(ReadToClose(busy[0]));
  EXPECT_EQ(reply.status, 200);
  for (int fd : busy) close(fd);
}

// A slowloris client: a header byte every 100 ms against a 500 ms header timeout. The client
// waits for the close (poll) between bytes, so the pace is its own, not a sleep of the test's.
TEST(Limits, AClientTricklingItsHeaderIsCutAtTheHeaderTimeout) {
  ServerOptions options;
  options.limits.header_timeout = 500ms;
  auto server = StartOnLoopback(std::move(options));
  int fd = Connect(PortOf(server->address()));
  const std::string header =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100, 'z') + "\r\n\r\n";
  auto start = std::chrono::steady_clock::now();
  size_t sent = 0;
  bool cut = false;
  while (!cut && sent < header.size()) {
    SendAll(fd, header.substr(sent++, 1));
    cut = ClosedWithin(fd, 100ms);
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(cut);
  EXPECT_LT(sent, header.size());
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 2s);
  EXPECT_TRUE(
      testing::Eventually([&] { return server->stats().connections_timed_out >= 1; }, 2000ms));
  close(fd);
}

TEST(Limits, AKeptAliveConnectionIsClosedAfterTheIdleTimeout) {
  ServerOptions options;
  options.limits.idle_timeout = 300ms;
  auto server = StartOnLoopback(std::move(options));
  int fd = Connect(PortOf(server->address()));
  SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  char buffer[512];
  ASSERT_GT(recv(fd, buffer, sizeof buffer, 0), 0);  // the reply; the connection stays open
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedWithin(fd, 3000ms));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 250ms);
  close(fd);
}

TEST(Limits, AKeptAliveConnectionServesSeveralRequests) {
  auto server = StartOnLoopback({});
  int fd = Connect(PortOf(server->address()));
  SendAll(fd,
          "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string both = ReadToClose(fd);
  close(fd);
  size_t second = both.find("HTTP/1.1 ", 1);
  ASSERT_NE(second, std::string::npos) << both;
  EXPECT_EQ(testing::Parse(both.substr(0, second)).status, 200);
  EXPECT_EQ(testing::Parse(both.substr(second)).status, 200);
}

TEST(Limits, StopLetsARequestInFlightFinishAndFreesThePort) {
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  ServerOptions options;
  options.metrics = [&] {
    entered = true;
    while (!release) std::this_thread::yield();
    return std::string("late 1\n");
  };
  auto server = StartOnLoopback(std::move(options));
  std::string address = server->address();
  int fd = Connect(PortOf(address));
  SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  while (!entered) std::this_thread::yield();
  std::thread stopper([&] { server->Stop(); });
  // The port is closed to new connections while the scrape is still running.
  int refused = -2;
  for (int i = 0; i < 1000 && (refused = Connect(PortOf(address))) >= 0; ++i) close(refused);
  EXPECT_EQ(refused, -1);
  release = true;
  auto reply = testing::Parse(ReadToClose(fd));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "late 1\n");
  EXPECT_NE(reply.headers.find("connection: close"), std::string::npos) << reply.headers;
  stopper.join();
  close(fd);
}

TEST(Limits, NonsenseLimitsAreRefused) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.limits.max_connections = 0;
  auto server = Server::Start(options);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, ErrorCode::kInvalid);
}

}  // namespace
}  // namespace poolkeeper::http
