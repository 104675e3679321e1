#include "common/error.h"

namespace poolkeeper {

NextStep Error::next_step() const {
  switch (code) {
    case ErrorCode::kConflict:
    case ErrorCode::kGone:
      return NextStep::kRetryNow;
    case ErrorCode::kTooManyRequests:
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
    case ErrorCode::kNotFound:
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kInternal:
      return NextStep::kBackOff;
    case ErrorCode::kInvalid:
    case ErrorCode::kUnauthorized:
      return NextStep::kWaitForUser;
    case ErrorCode::kNotLeader:
      return NextStep::kStop;
  }
  return NextStep::kBackOff;
}

std::string Error::ToString() const {
  if (fields.empty()) return message;
  std::string out;
  for (const auto& issue : fields) {
    if (!out.empty()) out += "; ";
    out += issue.field + ": " + issue.message;
  }
  return out;
}

std::string_view CodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalid:
      return "Invalid";
    case ErrorCode::kNotFound:
      return "NotFound";
    case ErrorCode::kAlreadyExists:
      return "AlreadyExists";
    case ErrorCode::kConflict:
      return "Conflict";
    case ErrorCode::kGone:
      return "Gone";
    case ErrorCode::kTooManyRequests:
      return "TooManyRequests";
    case ErrorCode::kUnavailable:
      return "Unavailable";
    case ErrorCode::kTimeout:
      return "Timeout";
    case ErrorCode::kUnauthorized:
      return "Unauthorized";
    case ErrorCode::kInternal:
      return "Internal";
    case ErrorCode::kNotLeader:
      return "NotLeader";
  }
  return "Unknown";
}

std::unexpected<Error> Invalid(std::vector<FieldIssue> issues) {
  Error error{ErrorCode::kInvalid, {}, std::move(issues), 0};
  error.message = error.ToString();
  return std::unexpected(std::move(error));
}

}  // namespace poolkeeper
