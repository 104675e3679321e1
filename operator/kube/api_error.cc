#include "kube/api_error.h"

#include "common/json_get.h"

namespace poolkeeper::kube {

using nlohmann::json;

namespace {

ErrorCode CodeFor(int http_status, const std::string& reason) {
  if (reason == "NotFound") return ErrorCode::kNotFound;
  if (reason == "AlreadyExists") return ErrorCode::kAlreadyExists;
  if (reason == "Conflict") return ErrorCode::kConflict;
  if (reason == "Invalid" || reason == "BadRequest") return ErrorCode::kInvalid;
  if (reason == "Expired" || reason == "Gone") return ErrorCode::kGone;
  if (reason == "TooManyRequests") return ErrorCode::kTooManyRequests;
  if (reason == "Unauthorized" || reason == "Forbidden") return ErrorCode::kUnauthorized;
  if (reason == "Timeout" || reason == "ServerTimeout") return ErrorCode::kTimeout;
  switch (http_status) {
    case 400:
      return ErrorCode::kInvalid;
    case 401:
    case 403:
      return ErrorCode::kUnauthorized;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    case 410:
      return ErrorCode::kGone;
    case 422:
      return ErrorCode::kInvalid;
    case 429:
      return ErrorCode::kTooManyRequests;
    case 504:
      return ErrorCode::kTimeout;
    default:
      return http_status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kInternal;
  }
}

}  // namespace

Error ApiError(int http_status, const std::string& body, const std::string& what, int retry_after) {
  json status = json::parse(body, nullptr, false);
  std::string reason, message;
  std::vector<FieldIssue> causes;
  if (status.is_object() && JsonGet<std::string>(status, "kind", "") == "Status") {
    reason = JsonGet<std::string>(status, "reason", "");
    message = JsonGet<std::string>(status, "message", "");
    if (auto details = status.find("details"); details != status.end() && details->is_object()) {
      for (const auto& cause : details->value("causes", json::array())) {
        if (cause.is_object()) {
          causes.push_back({JsonGet<std::string>(cause, "field", ""),
                            JsonGet<std::string>(cause, "message", "")});
        }
      }
      if (retry_after == 0) retry_after = details->value("retryAfterSeconds", 0);
    }
  }
  if (message.empty()) message = "HTTP " + std::to_string(http_status);
  Error error{CodeFor(http_status, reason), what + ": " + message, std::move(causes), retry_after};
  return error;
}

}  // namespace poolkeeper::kube
