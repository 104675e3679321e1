#include "kube/access_review.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/digest.h"
#include "common/json_get.h"

namespace poolkeeper::kube {
namespace {

using json = nlohmann::json;

}  // namespace

AccessReviewer::AccessReviewer(Client& client, const Clock& clock, AccessReviewOptions options)
    : client_(client), clock_(clock), options_(options) {}

size_t AccessReviewer::cached() const {
  std::lock_guard lock(mutex_);
  return cache_.size();
}

Result<AccessVerdict> AccessReviewer::Check(std::string_view token, std::string_view path,
                                            std::string_view verb) {
  // The cache key is the token's digest, so a heap dump or a debugger shows no usable token.
  std::string digest = Sha256Hex(token);
  if (token.empty() || digest.empty()) return AccessVerdict::kUnauthenticated;
  std::string key = digest + " " + std::string(verb) + " " + std::string(path);
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (it->second.expires > clock_.Now()) return it->second.verdict;
      cache_.erase(it);
    }
  }
  auto verdict = Review(token, path, verb);
  if (verdict) Remember(key, *verdict);
  return verdict;
}

Result<AccessVerdict> AccessReviewer::Review(std::string_view token, std::string_view path,
                                             std::string_view verb) {
  auto authn = client_.CreateReview(kTokenReview, {{"spec", {{"token", token}}}});
  if (!authn) return std::unexpected(authn.error());
  // The answer echoes the token in its spec: only its status is read, and nothing is logged.
  const json status = authn->value("status", json::object());
  if (!status.is_object() || !JsonGet<bool>(status, "authenticated", false)) {
    return AccessVerdict::kUnauthenticated;
  }
  const json user = status.value("user", json::object());
  json spec = {{"nonResourceAttributes", {{"path", path}, {"verb", verb}}}};
  // The TokenReview's user.username is the SubjectAccessReview's spec.user; the rest keep names.
  for (const auto& [from, to] : {std::pair{"username", "user"}, std::pair{"uid", "uid"},
                                 std::pair{"groups", "groups"}, std::pair{"extra", "extra"}}) {
    if (user.is_object() && user.contains(from)) spec[to] = user[from];
  }
  auto authz = client_.CreateReview(kSubjectAccessReview, {{"spec", spec}});
  if (!authz) return std::unexpected(authz.error());
  const json decision = authz->value("status", json::object());
  bool allowed = decision.is_object() && JsonGet<bool>(decision, "allowed", false) &&
                 !JsonGet<bool>(decision, "denied", false);
  return allowed ? AccessVerdict::kAllowed : AccessVerdict::kForbidden;
}

// Expired entries go first; a cache still full drops the entry closest to expiry.
void AccessReviewer::Remember(const std::string& key, AccessVerdict verdict) {
  Clock::TimePoint now = clock_.Now();
  Clock::TimePoint expires =
      now + (verdict == AccessVerdict::kAllowed ? options_.allowed_ttl : options_.refused_ttl);
  std::lock_guard lock(mutex_);
  if (options_.max_entries == 0) return;
  if (cache_.size() >= options_.max_entries && !cache_.contains(key)) {
    std::erase_if(cache_, [now](const auto& entry) { return entry.second.expires <= now; });
    if (cache_.size() >= options_.max_entries) {
      auto soonest = std::min_element(
          cache_.begin(), cache_.end(),
          [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
      cache_.erase(soonest);
    }
  }
  cache_[key] = Entry{verdict, expires};
}

}  // namespace poolkeeper::kube
