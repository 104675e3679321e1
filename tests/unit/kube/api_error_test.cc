#include "kube/api_error.h"

#include <gtest/gtest.h>

namespace poolkeeper::kube {
namespace {

TEST(ApiError, MapsStatusReasonsToWhatTheCallerDoes) {
  struct Case {
    int http;
    std::string reason;
    ErrorCode code;
    NextStep next;
  };
  for (const Case& c : std::vector<Case>{
           {404, "NotFound", ErrorCode::kNotFound, NextStep::kBackOff},
           {409, "AlreadyExists", ErrorCode::kAlreadyExists, NextStep::kBackOff},
           {409, "Conflict", ErrorCode::kConflict, NextStep::kRetryNow},
           {422, "Invalid", ErrorCode::kInvalid, NextStep::kWaitForUser},
           {410, "Expired", ErrorCode::kGone, NextStep::kRetryNow},
           {429, "TooManyRequests", ErrorCode::kTooManyRequests, NextStep::kBackOff},
           {403, "Forbidden", ErrorCode::kUnauthorized, NextStep::kWaitForUser},
           {503, "ServiceUnavailable", ErrorCode::kUnavailable, NextStep::kBackOff},
           {500, "", ErrorCode::kUnavailable, NextStep::kBackOff},
       }) {
    std::string body =
        R"({"kind":"Status","status":"Failure","reason":")" + c.reason + R"(","message":"m"})";
    Error error = ApiError(c.http, body, "GET x");
    EXPECT_EQ(error.code, c.code) << c.reason;
    EXPECT_EQ(error.next_step(), c.next) << c.reason;
  }
}

TEST(ApiError, KeepsInvalidCausesAndRetryAfter) {
  Error invalid = ApiError(422, R"({"kind":"Status","reason":"Invalid","message":"bad",
      "details":{"causes":[{"field":"spec.pooler.instances","message":"must be >= 0"}]}})",
                           "PATCH connectionpools shop/orders");
  ASSERT_EQ(invalid.fields.size(), 1u);
  EXPECT_EQ(invalid.fields[0].field, "spec.pooler.instances");
  EXPECT_EQ(invalid.message, "PATCH connectionpools shop/orders: bad");

  Error slow = ApiError(429, R"({"kind":"Status","reason":"TooManyRequests",
      "details":{"retryAfterSeconds":3}})",
                        "LIST pods");
  EXPECT_EQ(slow.retry_after_seconds, 3);
  EXPECT_EQ(ApiError(429, "", "LIST pods", 7).retry_after_seconds, 7);
}

TEST(ApiError, SurvivesANonStatusBody) {
  Error error = ApiError(502, "<html>bad gateway</html>", "GET x");
  EXPECT_EQ(error.code, ErrorCode::kUnavailable);
  EXPECT_EQ(error.message, "GET x: HTTP 502");
}

}  // namespace
}  // namespace poolkeeper::kube
