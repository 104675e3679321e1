// An in-memory API server script for the kube tests: it records every request and answers each
// with the next response queued for its method and path, so a test states exactly what the server
// says and then checks exactly what the client asked. Watch bodies are delivered in chunks cut at
// a chosen size, since neither chunk nor line boundaries are promised to match events.
#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kube/transport.h"

namespace poolkeeper::kube::testing {

// A Kubernetes Status body, as the server sends with a failure.
inline std::string StatusBody(int code, std::string_view reason, std::string_view message = "m") {
  return nlohmann::json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                        {"code", code},     {"reason", reason},   {"message", message}}
      .dump();
}

inline nlohmann::json Event(std::string_view type, nlohmann::json object) {
  return {{"type", type}, {"object", std::move(object)}};
}

inline nlohmann::json Bookmark(std::string_view resource_version) {
  return Event("BOOKMARK", {{"kind", "ConfigMap"},
                            {"apiVersion", "v1"},
                            {"metadata", {{"resourceVersion", resource_version}}}});
}

class FakeTransport : public Transport {
 public:
  struct Reply {
    std::optional<Error> error;  // no response at all
    HttpResponse response;
    std::vector<std::string> chunks;  // a stream's body, in delivery order
    std::optional<Error> after_body;  // the stream breaks after its chunks
    std::function<void()> on_chunk;   // runs before each chunk (e.g. a test's Stop())
    std::function<void()> before;     // runs before a Send is answered (e.g. time passing)
  };

  // `path` matches a request's whole path, or its path without the query; "path?*part" matches
  // that path with `part` anywhere in its query (one selector among the other parameters).
  void Queue(std::string method, std::string path, Reply reply) {
    std::lock_guard guard(mutex_);
    script_.push_back({std::move(method), std::move(path), std::move(reply)});
  }
  void Respond(std::string method, std::string path, int status, std::string body = "{}") {
    Queue(std::move(method), std::move(path), Reply{.response = {.status = status, .body = body}});
  }
  void RespondJson(std::string method, std::string path, int status, const nlohmann::json& body) {
    Respond(std::move(method), std::move(path), status, body.dump());
  }
  void FailWith(std::string method, std::string path, ErrorCode code) {
    Queue(std::move(method), std::move(path), Reply{.error = Error{code, "scripted", {}, 0}});
  }
  // A watch answered 200 with `events`, written one per line and cut every `chunk_size` bytes.
  void QueueWatch(std::string path, const std::vector<nlohmann::json>& events,
                  size_t chunk_size = 1 << 20, std::optional<Error> after_body = std::nullopt,
                  std::function<void()> on_chunk = nullptr) {
    std::string body;
    for (const auto& event : events) body += event.dump() + "\n";
    Reply reply{.response = {.status = 200}, .after_body = std::move(after_body)};
    reply.on_chunk = std::move(on_chunk);
    for (size_t i = 0; i < body.size(); i += chunk_size) {
      reply.chunks.push_back(body.substr(i, chunk_size));
    }
    Queue("GET", std::move(path), std::move(reply));
  }

  Result<HttpResponse> Send(const HttpRequest& request) override {
    auto reply = Next(request);
    if (!reply) return std::unexpected(reply.error());
    if (reply->before) reply->before();
    if (reply->error) return std::unexpected(*reply->error);
    return reply->response;
  }

  Result<HttpResponse> Stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_data) override {
    auto reply = Next(request);
    if (!reply) return std::unexpected(reply.error());
    if (reply->error) return std::unexpected(*reply->error);
    bool success = reply->response.status >= 200 && reply->response.status < 300;
    if (!success) return reply->response;
    for (const std::string& chunk : reply->chunks) {
      if (reply->on_chunk) reply->on_chunk();
      if (!on_data(chunk)) return reply->response;
    }
    if (reply->after_body) return std::unexpected(*reply->after_body);
    return reply->response;
  }

  std::vector<HttpRequest> Requests() const {
    std::lock_guard guard(mutex_);
    return requests_;
  }
  HttpRequest LastRequest() const {
    std::lock_guard guard(mutex_);
    return requests_.empty() ? HttpRequest{} : requests_.back();
  }
  size_t Unused() const {
    std::lock_guard guard(mutex_);
    return script_.size();
  }

 private:
  struct Entry {
    std::string method;
    std::string path;
    Reply reply;
  };

  Result<Reply> Next(const HttpRequest& request) {
    std::lock_guard guard(mutex_);
    requests_.push_back(request);
    std::string bare = request.path.substr(0, request.path.find('?'));
    auto matches = [&](const std::string& path) {
      if (path == request.path || path == bare) return true;
      auto query = path.find("?*");
      return query != std::string::npos && path.substr(0, query) == bare &&
             request.path.find(path.substr(query + 2), bare.size()) != std::string::npos;
    };
    for (auto it = script_.begin(); it != script_.end(); ++it) {
      if (it->method == request.method && matches(it->path)) {
        Reply reply = std::move(it->reply);
        script_.erase(it);
        return reply;
      }
    }
    // Like a server that went away: the code under test sees a failed request, and the test
    // sees the request it did not script in Requests().
    return Fail(ErrorCode::kUnavailable,
                "no scripted reply to " + request.method + " " + request.path);
  }

  mutable std::mutex mutex_;
  std::deque<Entry> script_;
  std::vector<HttpRequest> requests_;
};

}  // namespace poolkeeper::kube::testing
