#include "main/metrics_access.h"

#include "common/log.h"

namespace poolkeeper::cli {

std::function<http::Access(std::string_view, std::string_view)> MetricsAuthorizer(
    kube::AccessReviewer& reviewer) {
  return [&reviewer](std::string_view token, std::string_view path) {
    auto verdict = reviewer.Check(token, path, "get");
    if (!verdict) {
      Log(LogLevel::kWarn, "cannot check who may read metrics",
          {{"path", std::string(path)}, {"error", verdict.error().message}});
      return http::Access::kUnavailable;
    }
    switch (*verdict) {
      case kube::AccessVerdict::kAllowed:
        return http::Access::kAllowed;
      case kube::AccessVerdict::kUnauthenticated:
        return http::Access::kUnauthenticated;
      case kube::AccessVerdict::kForbidden:
        return http::Access::kForbidden;
    }
    return http::Access::kUnavailable;
  };
}

}  // namespace poolkeeper::cli
