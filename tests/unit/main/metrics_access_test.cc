#include "main/metrics_access.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../kube/fake_transport.h"
#include "common/clock.h"
#include "http/server.h"

namespace poolkeeper::cli {
namespace {

using json = nlohmann::json;

constexpr char kTokenReviews[] = "/apis/authentication.k8s.io/v1/tokenreviews";
constexpr char kAccessReviews[] = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

// /metrics as `poolkeeper run --metrics-auth=kubernetes` routes it, against a scripted API server.
TEST(MetricsAccess, ScrapesAreAnsweredAsTheApiServerDecides) {
  kube::testing::FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  kube::AccessReviewer reviewer(client, clock);
  http::ServerOptions options;
  options.metrics = [] { return std::string("poolkeeper_pools 2\n"); };
  options.authorize = MetricsAuthorizer(reviewer);
  auto scrape = [&](const std::string& authorization) {
    return http::Route(options, "GET", "/metrics", "", authorization);
  };
  auto user = [](const char* name) {
    return json{{"status", {{"authenticated", true}, {"user", {{"username", name}}}}}};
  };

  EXPECT_EQ(scrape("").status, 401);  // no token: no review at all
  EXPECT_TRUE(transport.Requests().empty());

  transport.RespondJson("POST", kTokenReviews, 201, {{"status", {{"authenticated", false}}}});
  EXPECT_EQ(scrape("Bearer not-a-token").status, 401);

  transport.RespondJson("POST", kTokenReviews, 201, user("system:serviceaccount:a:nobody"));
  transport.RespondJson("POST", kAccessReviews, 201, {{"status", {{"allowed", false}}}});
  EXPECT_EQ(scrape("Bearer nobody").status, 403);

  transport.RespondJson("POST", kTokenReviews, 201, user("system:serviceaccount:mon:prom"));
  transport.RespondJson("POST", kAccessReviews, 201, {{"status", {{"allowed", true}}}});
  http::Reply allowed = scrape("Bearer prom");
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(allowed.body, "poolkeeper_pools 2\n");

  // The operator's own RBAC lacks the reviews: 503, and the body says nothing of why.
  transport.Respond("POST", kTokenReviews, 403, kube::testing::StatusBody(403, "Forbidden"));
  http::Reply unavailable = scrape("Bearer someone-else");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(unavailable.body, "cannot check access now");
  EXPECT_EQ(transport.Unused(), 0u);
}

}  // namespace
}  // namespace poolkeeper::cli
