// Kubernetes answers failures with a `Status` object (reason, message, details.causes). This turns
// an HTTP status code and that body into poolkeeper's Error, so callers decide by code: Conflict
// retries now, Gone relists, TooManyRequests waits Retry-After, Invalid waits for the user.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace poolkeeper::kube {

// `what` says which request failed ("PATCH deployments shop/orders"); `retry_after` is the
// Retry-After header in seconds (0 when absent).
Error ApiError(int http_status, const std::string& body, const std::string& what,
               int retry_after = 0);

}  // namespace poolkeeper::kube
