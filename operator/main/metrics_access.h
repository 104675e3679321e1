// /metrics behind the API server's RBAC (--metrics-auth=kubernetes): the http module's authorize
// callback, answered by kube's AccessReviewer (TokenReview + SubjectAccessReview, cached). The
// two modules know nothing of each other; this is where they meet.
#pragma once

#include <functional>
#include <string_view>

#include "http/server.h"
#include "kube/access_review.h"

namespace poolkeeper::cli {

// A review that could not be made is answered 503 and logged (without the token): the operator
// lacks RBAC for the reviews, or the API server did not answer.
std::function<http::Access(std::string_view token, std::string_view path)> MetricsAuthorizer(
    kube::AccessReviewer& reviewer);

}  // namespace poolkeeper::cli
