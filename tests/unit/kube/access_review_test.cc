#include "kube/access_review.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "fake_transport.h"

namespace poolkeeper::kube {
namespace {

using json = nlohmann::json;
using testing::FakeTransport;

constexpr char kTokenReviews[] = "/apis/authentication.k8s.io/v1/tokenreviews";
constexpr char kAccessReviews[] = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

json Authenticated(const std::string& user) {
  return {{"kind", "TokenReview"},
          // The server echoes the token: the reviewer must not need (or keep) it.
          {"spec", {{"token", "echoed"}}},
          {"status",
           {{"authenticated", true},
            {"user",
             {{"username", user},
              {"uid", "u-1"},
              {"groups", {"system:serviceaccounts", "system:authenticated"}},
              {"extra", {{"authentication.kubernetes.io/pod-name", {"prom-0"}}}}}}}}};
}

json NotAuthenticated() {
  return {{"status", {{"authenticated", false}, {"error", "token has expired"}}}};
}

json Decision(bool allowed, bool denied = false) {
  return {{"status", {{"allowed", allowed}, {"denied", denied}, {"reason", "RBAC"}}}};
}

class AccessReviewTest : public ::testing::Test {
 protected:
  FakeTransport transport_;
  Client client_{transport_};
  FakeClock clock_;
  AccessReviewer reviewer_{client_,
                           clock_,
                           {.allowed_ttl = std::chrono::seconds(60),
                            .refused_ttl = std::chrono::seconds(10),
                            .max_entries = 3}};
};

TEST_F(AccessReviewTest, AsksTokenReviewThenSubjectAccessReviewForTheUsersGroups) {
  transport_.RespondJson("POST", kTokenReviews, 201,
                         Authenticated("system:serviceaccount:mon:prom"));
  transport_.RespondJson("POST", kAccessReviews, 201, Decision(true));
  auto verdict = reviewer_.Check("tok-1", "/metrics");
  ASSERT_TRUE(verdict) << verdict.error().ToString();
  EXPECT_EQ(*verdict, AccessVerdict::kAllowed);

  auto requests = transport_.Requests();
  ASSERT_EQ(requests.size(), 2u);
  json token_review = json::parse(requests[0].body);
  EXPECT_EQ(token_review["apiVersion"], "authentication.k8s.io/v1");
  EXPECT_EQ(token_review["kind"], "TokenReview");
  EXPECT_EQ(token_review["spec"]["token"], "tok-1");
  EXPECT_FALSE(token_review.contains("metadata"));
  json access_review = json::parse(requests[1].body);
  EXPECT_EQ(access_review["apiVersion"], "authorization.k8s.io/v1");
  EXPECT_EQ(access_review["kind"], "SubjectAccessReview");
  EXPECT_FALSE(access_review.contains("metadata"));  // the server wants it empty
  EXPECT_EQ(access_review["spec"],
            (json{{"user", "system:serviceaccount:mon:prom"},
                  {"uid", "u-1"},
                  {"groups", {"system:serviceaccounts", "system:authenticated"}},
                  {"extra", {{"authentication.kubernetes.io/pod-name", {"prom-0"}}}},
                  {"nonResourceAttributes", {{"path", "/metrics"}, {"verb", "get"}}}}));
  // Nothing the reviewer sends names the token but the TokenReview.
  EXPECT_EQ(requests[1].body.find("tok-1"), std::string::npos);
}

TEST_F(AccessReviewTest, VerdictsForUnknownTokensAndUsersWithoutTheRight) {
  struct Case {
    const char* what;
    json token_review;
    std::optional<json> access_review;
    AccessVerdict verdict;
  };
  for (const Case& c : std::vector<Case>{
           {"token not authenticated", NotAuthenticated(), std::nullopt,
            AccessVerdict::kUnauthenticated},
           {"no status at all", json::object(), std::nullopt, AccessVerdict::kUnauthenticated},
           {"not allowed", Authenticated("bob"), Decision(false), AccessVerdict::kForbidden},
           {"explicitly denied", Authenticated("bob"), Decision(true, true),
            AccessVerdict::kForbidden},
           {"allowed", Authenticated("bob"), Decision(true), AccessVerdict::kAllowed},
       }) {
    transport_.RespondJson("POST", kTokenReviews, 201, c.token_review);
    if (c.access_review) transport_.RespondJson("POST", kAccessReviews, 201, *c.access_review);
    auto verdict = reviewer_.Check(std::string("token of ") + c.what, "/metrics");
    ASSERT_TRUE(verdict) << c.what << ": " << verdict.error().ToString();
    EXPECT_EQ(*verdict, c.verdict) << c.what;
    EXPECT_EQ(transport_.Unused(), 0u) << c.what;
  }
}

TEST_F(AccessReviewTest, VerdictsAreCachedForTheirTtlAndFailuresAreNot) {
  transport_.RespondJson("POST", kTokenReviews, 201, Authenticated("prom"));
  transport_.RespondJson("POST", kAccessReviews, 201, Decision(true));
  ASSERT_EQ(reviewer_.Check("t", "/metrics"), AccessVerdict::kAllowed);
  clock_.Advance(std::chrono::seconds(59));
  EXPECT_EQ(reviewer_.Check("t", "/metrics"), AccessVerdict::kAllowed);  // no request scripted
  EXPECT_EQ(transport_.Requests().size(), 2u);
  clock_.Advance(std::chrono::seconds(2));  // expired: asked again, and now the binding is gone
  transport_.RespondJson("POST", kTokenReviews, 201, Authenticated("prom"));
  transport_.RespondJson("POST", kAccessReviews, 201, Decision(false));
  EXPECT_EQ(reviewer_.Check("t", "/metrics"), AccessVerdict::kForbidden);
  EXPECT_EQ(transport_.Requests().size(), 4u);

  // The operator may not create TokenReviews: an error, asked again next time.
  transport_.Respond("POST", kTokenReviews, 403, testing::StatusBody(403, "Forbidden"));
  auto failed = reviewer_.Check("other", "/metrics");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kUnauthorized);
  transport_.FailWith("POST", kTokenReviews, ErrorCode::kUnavailable);
  EXPECT_FALSE(reviewer_.Check("other", "/metrics"));
  EXPECT_EQ(transport_.Requests().size(), 6u);
}

TEST_F(AccessReviewTest, TheCacheIsBoundedAndKeepsNoToken) {
  for (int i = 0; i < 10; ++i) {
    transport_.RespondJson("POST", kTokenReviews, 201, NotAuthenticated());
    EXPECT_EQ(reviewer_.Check("random-" + std::to_string(i), "/metrics"),
              AccessVerdict::kUnauthenticated);
    EXPECT_LE(reviewer_.cached(), 3u);
  }
  EXPECT_EQ(reviewer_.cached(), 3u);
  // An empty token is never sent.
  EXPECT_EQ(reviewer_.Check("", "/metrics"), AccessVerdict::kUnauthenticated);
  EXPECT_EQ(transport_.Requests().size(), 10u);
}

}  // namespace
}  // namespace poolkeeper::kube
