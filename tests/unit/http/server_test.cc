#include "http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "loopback.h"

namespace poolkeeper::http {
namespace {

// --- Routing, without a socket ---

TEST(Route, AnswersProbesMetricsAndEverythingElse) {
  ServerOptions options;
  options.metrics = [] { return std::string("# TYPE up gauge\nup 1\n"); };
  struct Case {
    const char* method;
    const char* path;
    int status;
    std::string body;
  };
  for (const Case& c : std::vector<Case>{
           {"GET", "/healthz", 200, "ok"},
           {"GET", "/readyz", 200, "ok"},
           {"GET", "/metrics", 200, "# TYPE up gauge\nup 1\n"},
           {"GET", "/", 404, "not found"},
           {"GET", "/healthz/", 404, "not found"},
           {"GET", "/metricsx", 404, "not found"},
           {"POST", "/healthz", 405, "method not allowed"},
           {"PUT", "/metrics", 405, "method not allowed"},
           {"DELETE", "/nowhere", 405, "method not allowed"},
       }) {
    Reply reply = Route(options, c.method, c.path);
    EXPECT_EQ(reply.status, c.status) << c.method << " " << c.path;
    EXPECT_EQ(reply.body, c.body) << c.method << " " << c.path;
    EXPECT_EQ(reply.allow, c.status == 405 ? "GET" : "") << c.method << " " << c.path;
  }
}

TEST(Route, MetricsUseTheExpositionContentTypeAndProbesPlainText) {
  ServerOptions options;
  options.metrics = [] { return std::string(); };
  EXPECT_EQ(Route(options, "GET", "/metrics").content_type,
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(Route(options, "GET", "/healthz").content_type, "text/plain; charset=utf-8");
}

TEST(Route, PostGoesToItsHandlerWithTheBody) {
  ServerOptions options;
  EXPECT_EQ(Route(options, "POST", "/validate", "{}").status, 405);
  EXPECT_EQ(Route(options, "POST", "/validate", "{}").allow, "GET");
  options.post = [](std::string_view path, const std::string& body) -> std::optional<Reply> {
    if (path != "/validate") return std::nullopt;
    if (body == "boom") throw std::runtime_error("bad body");
    return Reply{200, "application/json", "echo " + body, ""};
  };
  EXPECT_EQ(Route(options, "POST", "/validate", "{}").body, "echo {}");
  EXPECT_EQ(Route(options, "POST", "/other", "{}").status, 404);
  EXPECT_EQ(Route(options, "POST", "/validate", "boom").status, 500);
  EXPECT_EQ(Route(options, "PUT", "/validate", "{}").allow, "GET, POST");
}

TEST(Route, OtherGetPathsGoToTheirHandlerAfterTheBuiltInOnes) {
  ServerOptions options;
  EXPECT_EQ(Route(options, "GET", "/status").status, 404);
  options.get = [](std::string_view path) -> std::optional<Reply> {
    if (path == "/boom") throw std::runtime_error("console gone");
    if (path != "/status" && path != "/readyz") return std::nullopt;
    return Reply{200, "application/json", "{}", ""};
  };
  EXPECT_EQ(Route(options, "GET", "/status").body, "{}");
  EXPECT_EQ(Route(options, "GET", "/status").content_type, "application/json");
  EXPECT_EQ(Route(options, "GET", "/readyz").body, "ok");  // the probe is not overridden
  EXPECT_EQ(Route(options, "GET", "/other").status, 404);
  EXPECT_EQ(Route(options, "GET", "/boom").status, 500);
}

TEST(Server, RefusesTlsFilesItCannotRead) {
  auto server = Server::Start({.address = "127.0.0.1:0",
                               .tls_cert_file = "/nonexistent/tls.crt",
                               .tls_key_file = "/nonexistent/tls.key"});
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, ErrorCode::kInvalid);
  EXPECT_NE(server.error().message.find("/nonexistent/tls.crt"), std::string::npos);
}

TEST(Route, AFailingScrapeIsA500NotACrash) {
  ServerOptions options;
  options.metrics = []() -> std::string { throw std::runtime_error("collector broke"); };
  Reply reply = Route(options, "GET", "/metrics");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.body, "metrics failed: collector broke");
}

// The metrics are for whom the authorizer allows, as kube-rbac-proxy answers: no token or a
// token it does not know 401, a known user without the right 403, a failed check 503.
TEST(Route, MetricsNeedATokenTheAuthorizerAllows) {
  std::vector<std::string> asked;
  ServerOptions options;
  options.metrics = [] { return std::string("pool_total 3\n"); };
  options.authorize = [&asked](std::string_view token, std::string_view path) {
    asked.push_back(std::string(token) + " " + std::string(path));
    if (token == "reader") return Access::kAllowed;
    if (token == "someone") return Access::kForbidden;
    if (token == "flaky") return Access::kUnavailable;
    if (token == "throws") throw std::runtime_error("boom");
    return Access::kUnauthenticated;
  };
  struct Case {
    const char* authorization;
    int status;
    std::string body;
  };
  for (const Case& c : std::vector<Case>{
           {"", 401, "unauthorized: a bearer token is required"},
           {"Basic cmVhZGVyOng=", 401, "unauthorized: a bearer token is required"},
           {"Bearer ", 401, "unauthorized: a bearer token is required"},
           {"Bearer wrong", 401, "unauthorized"},
           {"Bearer someone", 403, "forbidden"},
           {"Bearer flaky", 503, "cannot check access now"},
           {"Bearer throws", 503, "cannot check access now"},
           {"Bearer reader", 200, "pool_total 3\n"},
           {"bearer  reader ", 200, "pool_total 3\n"},
       }) {
    Reply reply = Route(options, "GET", "/metrics", "", c.authorization);
    EXPECT_EQ(reply.status, c.status) << c.authorization;
    EXPECT_EQ(reply.body, c.body) << c.authorization;
  }
  // A request without a token never reaches the authorizer; the others ask for /metrics.
  EXPECT_EQ(asked,
            (std::vector<std::string>{"wrong /metrics", "someone /metrics", "flaky /metrics",
                                      "throws /metrics", "reader /metrics", "reader /metrics"}));
}

TEST(Route, ProbesNeverAskTheAuthorizer) {
  ServerOptions options;
  options.metrics = [] { return std::string(); };
  options.authorize = [](std::string_view, std::string_view) -> Access {
    throw std::runtime_error("must not be called");
  };
  EXPECT_EQ(Route(options, "GET", "/healthz").status, 200);
  EXPECT_EQ(Route(options, "GET", "/readyz").status, 200);
  EXPECT_EQ(Route(options, "GET", "/nowhere").status, 404);
}

TEST(Route, MetricsWithoutARendererIsNotFound) {
  EXPECT_EQ(Route(ServerOptions{}, "GET", "/metrics").status, 404);
}

TEST(Route, ProbesFollowTheirCallbacks) {
  struct Case {
    const char* what;
    std::function<bool()> live;
    std::function<std::optional<std::string>()> not_ready;
    int healthz;
    int readyz;
    std::string readyz_body;
  };
  auto throws = []() -> std::optional<std::string> { throw std::runtime_error("db gone"); };
  for (const Case& c : std::vector<Case>{
           {"no callbacks", nullptr, nullptr, 200, 200, "ok"},
           {"live and ready", [] { return true; }, [] { return std::nullopt; }, 200, 200, "ok"},
           {"not live", [] { return false; }, nullptr, 503, 200, "ok"},
           {"not ready", nullptr, [] { return std::optional<std::string>("cache not synced"); },
            200, 503, "cache not synced"},
           {"not ready, no reason", nullptr, [] { return std::optional<std::string>(""); }, 200,
            503, "not ready"},
           {"readiness throws", [] { return true; }, throws, 200, 503,
            "readiness check failed: db gone"},
           {"liveness throws", []() -> bool { throw std::runtime_error("x"); }, nullptr, 503, 200,
            "ok"},
       }) {
    ServerOptions options;
    options.live = c.live;
    options.not_ready_reason = c.not_ready;
    EXPECT_EQ(Route(options, "GET", "/healthz").status, c.healthz) << c.what;
    Reply ready = Route(options, "GET", "/readyz");
    EXPECT_EQ(ready.status, c.readyz) << c.what;
    EXPECT_EQ(ready.body, c.readyz_body) << c.what;
  }
}

// --- The real server on loopback, queried over a raw socket ---

using testing::Connect;
using testing::PortOf;
using testing::Request;
using testing::Response;
using testing::StartOnLoopback;

TEST(Server, PortZeroListensOnAFreePortAndReportsIt) {
  auto first = StartOnLoopback({});
  auto second = StartOnLoopback({});
  EXPECT_TRUE(first->address().starts_with("127.0.0.1:"));
  EXPECT_NE(PortOf(first->address()), 0);
  EXPECT_NE(first->address(), second->address());
}

TEST(Server, ServesProbesAndMetricsOverHttp) {
  std::mutex mutex;
  std::optional<std::string> not_ready = "informers not synced";
  ServerOptions options;
  options.metrics = [] { return std::string("requests_total{code=\"200\"} 2\n"); };
  options.not_ready_reason = [&] {
    std::lock_guard lock(mutex);
    return not_ready;
  };
  auto server = StartOnLoopback(std::move(options));

  Response healthz = Request(server->address(), "GET", "/healthz");
  EXPECT_EQ(healthz.status, 200);
  EXPECT_EQ(healthz.body, "ok");

  Response unready = Request(server->address(), "GET", "/readyz");
  EXPECT_EQ(unready.status, 503);
  EXPECT_EQ(unready.body, "informers not synced");
  {
    std::lock_guard lock(mutex);
    not_ready.reset();
  }
  Response ready = Request(server->address(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ok");

  Response metrics = Request(server->address(), "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers.find("content-type: text/plain; version=0.0.4; charset=utf-8"),
            std::string::npos)
      << metrics.headers;
  EXPECT_EQ(metrics.body, "requests_total{code=\"200\"} 2\n");
}

TEST(Server, AnswersUnknownPathsWith404AndOtherMethodsWith405) {
  auto server = StartOnLoopback({});
  EXPECT_EQ(Request(server->address(), "GET", "/nope").status, 404);
  EXPECT_EQ(Request(server->address(), "GET", "/healthz?verbose=1").status, 200);
  Response post = Request(server->address(), "POST", "/healthz");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("allow: get"), std::string::npos) << post.headers;
}

TEST(Server, RefusesAddressesThatAreNotHostPort) {
  for (const char* address : {"", "localhost", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000",
                              "::1:8080", "127.0.0.1:-1"}) {
    auto server = Server::Start({.address = address});
    ASSERT_FALSE(server.has_value()) << address;
    EXPECT_EQ(server.error().code, ErrorCode::kInvalid) << address;
  }
}

TEST(Server, ReportsAPortInUseAsUnavailable) {
  auto taken = StartOnLoopback({});
  std::string address = taken->address();
  auto second = Server::Start({.address = address});
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  // The refused start leaves the first server serving, and it still stops cleanly.
  EXPECT_EQ(Request(address, "GET", "/healthz").status, 200);
  taken.reset();
  EXPECT_EQ(Connect(PortOf(address)), -1);
}

TEST(Server, DestroyingTheServerFreesItsPort) {
  auto server = StartOnLoopback({});
  std::string address = server->address();
  ASSERT_EQ(Request(address, "GET", "/healthz").status, 200);
  server.reset();
  EXPECT_EQ(Connect(PortOf(address)), -1);
  // And the same address can be listened on again straight away.
  auto again = Server::Start({.address = address});
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ(Request(address, "GET", "/healthz").status, 200);
}

TEST(Server, AnswersConcurrentScrapes) {
  std::atomic<int> hits{0};
  auto server = StartOnLoopback(
      {.metrics = [&hits] { return "hits_total " + std::to_string(hits.load()) + "\n"; }});
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        ++hits;
        try {
          if (Request(server->address(), "GET", "/metrics").status == 200) ++ok;
        } catch (const std::exception&) {
          // counted as not ok
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_NE(Request(server->address(), "GET", "/metrics").body.find("hits_total 40\n"),
            std::string::npos);
}

}  // namespace
}  // namespace poolkeeper::http
