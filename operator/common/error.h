// The one error type of poolkeeper. Every fallible call returns `Result<T>` (std::expected); the
// error's code tells the caller what to do next (retry now, back off, or wait for the user to fix
// the spec), and its message carries the context, starting with the field path when a field is to
// blame. Exceptions from libraries are caught where they are called and never cross a module.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace poolkeeper {

enum class ErrorCode {
  kInvalid,   // the input (spec, file, flag) is wrong: wait for the user to fix it
  kNotFound,  // a referenced object does not exist (yet)
  kAlreadyExists,
  kConflict,         // optimistic concurrency: re-read and retry now
  kGone,             // a watch's resourceVersion expired: relist
  kTooManyRequests,  // the server asked us to slow down
  kUnavailable,      // network or server trouble: back off
  kTimeout,
  kUnauthorized,  // credentials or RBAC: nothing a retry fixes soon
  kInternal,      // a bug or an impossible state
  // This replica does not lead (any more): it must not write, and a retry would not change that.
  // The write fence of leader election (kube/leader_election.h) refuses writes with it.
  kNotLeader,
};

// kStop: give the work up; this process may not act on it (it steps down and exits).
enum class NextStep { kRetryNow, kBackOff, kWaitForUser, kStop };

// One problem with one field of an input, e.g. {"spec.databases[1].name", "must not be empty"}.
struct FieldIssue {
  std::string field;
  std::string message;
  bool operator==(const FieldIssue&) const = default;
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::vector<FieldIssue> fields;  // every field at fault, for validation errors
  int retry_after_seconds = 0;     // from the server, when it said so

  NextStep next_step() const;
  // "message" or, with field issues, "field: message; field: message".
  std::string ToString() const;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

std::string_view CodeName(ErrorCode code);

inline std::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return std::unexpected(Error{code, std::move(message), {}, 0});
}
// An error naming exactly one field, e.g. a Secret a field names that is missing (kNotFound).
inline std::unexpected<Error> FieldFail(ErrorCode code, std::string field, std::string message) {
  std::string text = field + ": " + message;
  return std::unexpected(Error{code, std::move(text), {{std::move(field), std::move(message)}}, 0});
}
// A validation error naming exactly one field.
inline std::unexpected<Error> Invalid(std::string field, std::string message) {
  return FieldFail(ErrorCode::kInvalid, std::move(field), std::move(message));
}
// A validation error naming several fields (all of them, so the user fixes them in one go).
std::unexpected<Error> Invalid(std::vector<FieldIssue> issues);

}  // namespace poolkeeper
