// The real transport's connections against a keep-alive TLS server on loopback: one handshake for
// many requests, the idle pool's bound, a kept-alive connection the server dropped (retried only
// when that cannot repeat a write), the request timeout, streams (watches) on one thread of the
// transport, and a quiet watch ended at once by a stop, through the informer as the operator
// stops it.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "keepalive_test_server.h"
#include "kube/client.h"
#include "kube/credentials.h"
#include "kube/informer.h"
#include "kube/transport.h"

namespace poolkeeper::kube {
namespace {

using testing::KeepAliveServer;
using testing::KeyAndCert;
using testing::MakeCert;

struct Fixture {
  explicit Fixture(bool drop_second_request = false, TransportOptions options = {})
      : server(MakeCert("apiserver", &ca, "IP:127.0.0.1"), drop_second_request) {
    ClusterConfig config;
    config.server = "https://127.0.0.1:" + std::to_string(server.port());
    config.ca_pem = ca.CertPem();
    config.token = "s3cret";
    auto credentials = std::make_shared<Credentials>(config, nullptr);
    transport = std::move(*MakeHttpTransport(config, credentials, options));
  }
  Result<HttpResponse> Send(const std::string& method, const std::string& path,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return transport->Send({.method = method, .path = path, .body = "{}", .timeout = timeout});
  }

  KeyAndCert ca = MakeCert("cluster CA", nullptr);
  KeepAliveServer server;
  std::unique_ptr<Transport> transport;
};

TEST(HttpTransportConnections, ManyRequestsShareOneHandshake) {
  Fixture f;

  for (int i = 0; i < 10; ++i) {
    auto response = f.Send(i % 2 ? "GET" : "PATCH", "/ok");
    ASSERT_TRUE(response.has_value()) << response.error().message;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "{}");
  }

  EXPECT_EQ(f.server.requests().size(), 10u);
  EXPECT_EQ(f.server.handshakes(), 1);
}

TEST(HttpTransportConnections, KeepsNoMoreIdleConnectionsThanItsBound) {
  Fixture f(false, {.max_idle_connections = 1});
  auto three_at_once = [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] { EXPECT_TRUE(f.Send("GET", "/hold").has_value()); });
    }
    EXPECT_TRUE(f.server.WaitForHeld(3));
    f.server.Release();
    for (auto& thread : threads) thread.join();
  };

  three_at_once();
  EXPECT_EQ(f.server.handshakes(), 3);
  three_at_once();  // one kept from the first three, two new

  EXPECT_EQ(f.server.handshakes(), 5);
}

TEST(HttpTransportConnections, AnIdempotentRequestOnADroppedConnectionIsSentAgainOnAFreshOne) {
  Fixture f(/*drop_second_request=*/true);
  ASSERT_TRUE(f.Send("GET", "/ok").has_value());

  auto response = f.Send("GET", "/ok");

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(f.server.handshakes(), 2);
  EXPECT_EQ(f.server.requests().size(), 3u);
}

TEST(HttpTransportConnections, APostOnADroppedConnectionIsNotSentTwice) {
  Fixture f(/*drop_second_request=*/true);
  ASSERT_TRUE(f.Send("POST", "/ok").has_value());

  auto response = f.Send("POST", "/ok");

  ASSERT_FALSE(response.has_value()) << "status " << response->status;
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(response.error().message.rfind("POST /ok: ", 0), 0u) << response.error().message;
  EXPECT_EQ(f.server.requests().size(), 2u);
}

TEST(HttpTransportConnections, ARequestPastItsTimeoutIsKTimeoutNamingTheRequest) {
  Fixture f;

  auto response = f.Send("GET", "/hold?x=1", std::chrono::milliseconds(200));
  f.server.Release();

  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(response.error().message, "GET /hold: no answer within 200 ms");
  EXPECT_EQ(response.error().message.find("s3cret"), std::string::npos);
}

TEST(HttpTransportConnections, AStopEndsAQuietStreamAtOnceAsItsEnd) {
  Fixture f;
  std::stop_source stop;
  std::string received;
  std::promise<void> first_event;
  std::thread stopper([&] {
    first_event.get_future().wait();  // the stream is open and now quiet
    stop.request_stop();
  });
  auto started = std::chrono::steady_clock::now();

  auto response = f.transport->Stream({.method = "GET",
                                       .path = "/watch",
                                       .timeout = std::chrono::seconds(60),
                                       .stop = stop.get_token()},
                                      [&](std::string_view data) {
                                        if (received.empty()) first_event.set_value();
                                        received += data;
                                        return true;
                                      });
  stopper.join();

  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_NE(received.find("BOOKMARK"), std::string::npos);
  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

TEST(HttpTransportConnections, AnEventAfterAQuietSpellIsDeliveredAndTheStreamEnds) {
  Fixture f;
  int events = 0;

  auto response = f.transport->Stream(
      {.method = "GET", .path = "/watch-twice", .timeout = std::chrono::seconds(30)},
      [&](std::string_view data) {
        for (char c : data) events += c == '\n' ? 1 : 0;
        if (events == 1) f.server.Release();  // the second comes only now
        return true;
      });

  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(events, 2);
}

// Issue 14: a thread per watch made seven per watched namespace. However many streams are open,
// one thread of the transport's carries them, and a stop ends each at once.
TEST(HttpTransportConnections, ManyStreamsRunOnOneThreadOfTheTransport) {
  Fixture f;
  constexpr int kStreams = 8;
  std::stop_source stop;
  std::mutex mutex;
  std::condition_variable changed;
  std::set<std::thread::id> threads;
  int heard = 0;
  std::vector<Result<HttpResponse>> ended;
  for (int i = 0; i < kStreams; ++i) {
    f.transport->StreamAsync(
        {.method = "GET",
         .path = "/watch",
         .timeout = std::chrono::seconds(60),
         .stop = stop.get_token()},
        [&](std::string_view) {
          std::lock_guard guard(mutex);
          threads.insert(std::this_thread::get_id());
          ++heard;
          changed.notify_all();
          return true;
        },
        [&](Result<HttpResponse> result) {
          std::lock_guard guard(mutex);
          ended.push_back(std::move(result));
          changed.notify_all();
        });
  }
  auto all = [&](auto done) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), done);
  };
  ASSERT_TRUE(all([&] { return heard >= kStreams; }));
  ASSERT_TRUE(f.server.WaitForWatch(kStreams));
  stop.request_stop();
  ASSERT_TRUE(all([&] { return ended.size() == kStreams; }));

  EXPECT_EQ(threads.size(), 1u);
  EXPECT_FALSE(threads.contains(std::this_thread::get_id()));
  for (const auto& result : ended) {
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(result->status, 200);
  }
}

TEST(HttpTransportConnections, InformerStopReturnsWithinASecondWhileItsWatchIsQuiet) {
  Fixture f;
  Client client(*f.transport);
  SystemClock clock;
  Informer informer(
      client, clock,
      {.type = resources::kConfigMap, .ns = "x", .watch_timeout = std::chrono::hours(1)});
  InformerLoop loop(clock);
  ASSERT_TRUE(loop.Start());
  informer.Start(loop);
  ASSERT_TRUE(f.server.WaitForWatch());

  auto started = std::chrono::steady_clock::now();
  informer.Stop();

  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  EXPECT_TRUE(informer.HasSynced());
}

}  // namespace
}  // namespace poolkeeper::kube
