// Routing: what each path answers, with no socket, so every answer is tested as a plain call.
#include <cctype>
#include <exception>
#include <utility>

#include "http/server.h"

namespace poolkeeper::http {
namespace {

Reply Text(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

// The authorizer's verdict on a scrape, or nullopt when it may go ahead. The bodies say what
// is missing, never why a token failed: that is for the operator's log, not for the caller.
std::optional<Reply> Refusal(const ServerOptions& options, std::string_view path,
                             std::string_view authorization) {
  if (!options.authorize) return std::nullopt;
  std::string_view token = BearerToken(authorization);
  if (token.empty()) return Text(401, "unauthorized: a bearer token is required");
  Access access = Access::kUnavailable;
  try {
    access = options.authorize(token, path);
  } catch (...) {
    access = Access::kUnavailable;
  }
  switch (access) {
    case Access::kAllowed:
      return std::nullopt;
    case Access::kUnauthenticated:
      return Text(401, "unauthorized");
    case Access::kForbidden:
      return Text(403, "forbidden");
    case Access::kUnavailable:
      break;
  }
  return Text(503, "cannot check access now");
}

}  // namespace

std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
  if (authorization.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return {};
  }
  authorization.remove_prefix(kScheme.size());
  while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
  while (!authorization.empty() && authorization.back() == ' ') authorization.remove_suffix(1);
  return authorization;
}

Reply Route(const ServerOptions& options, std::string_view method, std::string_view path,
            const std::string& body, std::string_view authorization) {
  if (method == "POST" && options.post) {
    try {
      if (std::optional<Reply> reply = options.post(path, body)) return *reply;
    } catch (const std::exception& e) {
      return Text(500, std::string("request failed: ") + e.what());
    }
    return Text(404, "not found");
  }
  if (method != "GET") {
    Reply reply = Text(405, "method not allowed");
    reply.allow = options.post ? "GET, POST" : "GET";
    return reply;
  }
  if (path == "/healthz") {
    try {
      if (options.live && !options.live()) return Text(503, "not live");
    } catch (const std::exception& e) {
      return Text(503, std::string("liveness check failed: ") + e.what());
    } catch (...) {
      return Text(503, "liveness check failed");
    }
    return Text(200, "ok");
  }
  if (path == "/readyz") {
    try {
      if (options.not_ready_reason) {
        if (std::optional<std::string> reason = options.not_ready_reason()) {
          return Text(503, reason->empty() ? "not ready" : *reason);
        }
      }
    } catch (const std::exception& e) {
      return Text(503, std::string("readiness check failed: ") + e.what());
    } catch (...) {
      return Text(503, "readiness check failed");
    }
    return Text(200, "ok");
  }
  if (path == "/metrics" && options.metrics) {
    if (std::optional<Reply> refused = Refusal(options, path, authorization)) return *refused;
    try {
      Reply reply = Text(200, options.metrics());
      reply.content_type = kMetricsContentType;
      return reply;
    } catch (const std::exception& e) {
      return Text(500, std::string("metrics failed: ") + e.what());
    } catch (...) {
      return Text(500, "metrics failed");
    }
  }
  if (options.get) {
    try {
      if (std::optional<Reply> reply = options.get(path)) return *reply;
    } catch (const std::exception& e) {
      return Text(500, std::string("request failed: ") + e.what());
    } catch (...) {
      return Text(500, "request failed");
    }
  }
  return Text(404, "not found");
}

}  // namespace poolkeeper::http
