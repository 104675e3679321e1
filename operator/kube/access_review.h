// Who may read a non-resource URL of the operator (GET /metrics), asked of the API server as
// kube-rbac-proxy and controller-runtime's WithAuthenticationAndAuthorization do: the bearer
// token goes to a TokenReview (authentication.k8s.io/v1), the user and groups it names to a
// SubjectAccessReview (authorization.k8s.io/v1, nonResourceAttributes path and verb). So RBAC
// decides, e.g. a ClusterRole with nonResourceURLs ["/metrics"], verbs ["get"].
//
// Verdicts are cached for a short time, bounded in entries, keyed by the token's SHA-256 (the
// token itself is never kept nor logged): a scrape every 15 s costs two API calls a minute, and
// a client sending many tokens costs at most max_entries of memory. Failures are not cached.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/error.h"
#include "kube/client.h"

namespace poolkeeper::kube {

inline constexpr ResourceType kTokenReview{"authentication.k8s.io", "v1", "tokenreviews",
                                           "TokenReview", false};
inline constexpr ResourceType kSubjectAccessReview{
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false};

enum class AccessVerdict {
  kAllowed,
  kUnauthenticated,  // the TokenReview did not authenticate the token
  kForbidden,        // authenticated, but the SubjectAccessReview did not allow it
};

struct AccessReviewOptions {
  std::chrono::seconds allowed_ttl{60};  // a revoked binding is honoured within this
  std::chrono::seconds refused_ttl{10};  // a new binding is honoured within this
  size_t max_entries = 1024;
};

class AccessReviewer {
 public:
  AccessReviewer(Client& client, const Clock& clock, AccessReviewOptions options = {});

  // Whether `token` may `verb` the non-resource URL `path`. An error when either review could not
  // be made (the API server did not answer, or refused the review itself: the operator lacks
  // create on tokenreviews or subjectaccessreviews); never for a token it does not like.
  Result<AccessVerdict> Check(std::string_view token, std::string_view path,
                              std::string_view verb = "get");

  size_t cached() const;

 private:
  struct Entry {
    AccessVerdict verdict;
    Clock::TimePoint expires;
  };
  Result<AccessVerdict> Review(std::string_view token, std::string_view path,
                               std::string_view verb);
  void Remember(const std::string& key, AccessVerdict verdict);

  Client& client_;
  const Clock& clock_;
  AccessReviewOptions options_;
  mutable std::mutex mutex_;  // guards cache_
  std::map<std::string, Entry> cache_;
};

}  // namespace poolkeeper::kube
