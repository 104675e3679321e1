#include "kube/client.h"

#include <algorithm>
#include <future>
#include <optional>

#include "common/json_get.h"
#include "kube/api_error.h"
#include "kube/json_stream.h"

namespace poolkeeper::kube {

using nlohmann::json;

std::string ResourceType::ApiVersion() const {
  if (group.empty()) return std::string(version);
  return std::string(group) + "/" + std::string(version);
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string ResourcePath(const ResourceType& type, std::string_view ns, std::string_view name,
                         std::string_view subresource, const QueryParams& query) {
  std::string path = type.group.empty() ? "/api/" : "/apis/" + std::string(type.group) + "/";
  path += type.version;
  if (type.namespaced && !ns.empty()) path += "/namespaces/" + std::string(ns);
  path += "/" + std::string(type.plural);
  if (!name.empty()) path += "/" + std::string(name);
  if (!subresource.empty()) path += "/" + std::string(subresource);
  char separator = '?';
  for (const auto& [key, value] : query) {
    path += separator;
    path += UrlEncode(key) + "=" + UrlEncode(value);
    separator = '&';
  }
  return path;
}

namespace {

const json& MetadataOf(const json& object) {
  static const json kEmpty = json::object();
  if (!object.is_object()) return kEmpty;
  auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

}  // namespace

std::string ObjectKey(const json& object) {
  const json& metadata = MetadataOf(object);
  std::string ns = JsonGet<std::string>(metadata, "namespace", "");
  std::string name = JsonGet<std::string>(metadata, "name", "");
  return ns.empty() ? name : ns + "/" + name;
}

namespace {

struct Target {
  std::string ns;
  std::string name;
};

// The namespace and name an object body says it has, checked against the type's scope.
Result<Target> TargetOf(const ResourceType& type, const json& object) {
  if (!object.is_object()) return Fail(ErrorCode::kInvalid, "object is not a JSON object");
  if (object.contains("metadata") && !object["metadata"].is_object()) {
    return Fail(ErrorCode::kInvalid, "metadata is not an object");
  }
  const json& metadata = MetadataOf(object);
  Target target{JsonGet<std::string>(metadata, "namespace", ""),
                JsonGet<std::string>(metadata, "name", "")};
  if (target.name.empty()) {
    return Fail(ErrorCode::kInvalid, std::string(type.kind) + ": metadata.name is empty");
  }
  if (type.namespaced && target.ns.empty()) {
    return Fail(ErrorCode::kInvalid,
                std::string(type.kind) + " " + target.name + ": metadata.namespace is empty");
  }
  if (!type.namespaced) target.ns.clear();
  return target;
}

std::string Describe(std::string_view method, const ResourceType& type, std::string_view ns,
                     std::string_view name) {
  std::string what = std::string(method) + " " + std::string(type.plural);
  if (!ns.empty() || !name.empty()) what += " ";
  if (!ns.empty()) what += std::string(ns) + (name.empty() ? "" : "/");
  what += name;
  return what;
}

// Get, MergePatch and Delete name one object: an empty name would address the collection (and a
// DELETE there is deletecollection), an empty namespace the wrong path.
Status CheckNamed(const ResourceType& type, std::string_view ns, std::string_view name,
                  std::string_view method) {
  if (name.empty()) {
    return Fail(ErrorCode::kInvalid, Describe(method, type, ns, name) + ": name is empty");
  }
  if (type.namespaced && ns.empty()) {
    return Fail(ErrorCode::kInvalid, Describe(method, type, ns, name) + ": namespace is empty");
  }
  return {};
}

bool Success(int status) { return status >= 200 && status < 300; }

// A body of a 2xx answer as JSON; the API server never sends anything else, so garbage is a bug.
Result<json> ParseBody(const std::string& body, const std::string& what) {
  json value = json::parse(body, nullptr, false);
  if (value.is_discarded()) return Fail(ErrorCode::kInternal, what + ": response is not JSON");
  return value;
}

// Lists drop apiVersion and kind from their items; they are put back so a cached object reads like
// a fetched one.
void FillTypeMeta(const ResourceType& type, json& object) {
  if (!object.is_object()) return;
  if (!object.contains("apiVersion")) object["apiVersion"] = type.ApiVersion();
  if (!object.contains("kind")) object["kind"] = std::string(type.kind);
}

// The request body: the object with apiVersion and kind, copied only when one is missing (what the
// operator renders has both).
std::string BodyWithTypeMeta(const ResourceType& type, const json& object) {
  if (!object.is_object() || (object.contains("apiVersion") && object.contains("kind"))) {
    return object.dump();
  }
  json body = object;
  FillTypeMeta(type, body);
  return body.dump();
}

}  // namespace

Client::Client(Transport& transport, ClientOptions options)
    : transport_(transport),
      options_(std::move(options)),
      random_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()) {}

void Client::Count(std::string_view verb, int status) {
  std::lock_guard guard(mutex_);
  ++counts_[{std::string(verb), status}];
}

RequestCountMap Client::RequestCounts() const {
  std::lock_guard guard(mutex_);
  return counts_;
}

std::chrono::seconds Client::JitteredTimeout(std::chrono::seconds base) {
  std::lock_guard guard(mutex_);
  std::uniform_int_distribution<int64_t> extra(0, std::max<int64_t>(base.count() - 1, 0));
  return base + std::chrono::seconds(extra(random_));
}

Result<Clock::Duration> Client::WriteWindow() const {
  const RequestGate* gate = gate_.load();
  return gate ? gate->Admit("PATCH") : Clock::Duration::max();
}

Result<HttpResponse> Client::Send(std::string_view verb, HttpRequest request) {
  request.timeout = options_.request_timeout;
  if (const RequestGate* gate = gate_.load()) {
    auto admitted = gate->Admit(request.method);
    if (!admitted) return std::unexpected(admitted.error());
    // Rounded down: a request must end before the gate's limit, never after it.
    auto limit = std::chrono::floor<std::chrono::milliseconds>(*admitted);
    if (limit < request.timeout) request.timeout = limit;
    if (request.timeout <= std::chrono::milliseconds::zero()) {
      return Fail(ErrorCode::kTimeout, request.method + " " +
                                           request.path.substr(0, request.path.find('?')) +
                                           ": no time left to send it");
    }
  }
  auto response = transport_.Send(request);
  Count(verb, response ? response->status : 0);
  return response;
}

Result<json> Client::SendForObject(std::string_view verb, HttpRequest request, Reply reply) {
  std::string what = request.method + " " + request.path.substr(0, request.path.find('?'));
  auto response = Send(verb, std::move(request));
  if (!response) return std::unexpected(response.error());
  if (!Success(response->status)) {
    return std::unexpected(ApiError(response->status, response->body, what, response->retry_after));
  }
  if (reply == Reply::kStatusOnly) return json();
  return ParseBody(response->body, what);
}

Result<json> Client::Get(const ResourceType& type, std::string_view ns, std::string_view name) {
  if (auto named = CheckNamed(type, ns, name, "GET"); !named) {
    return std::unexpected(named.error());
  }
  return SendForObject("get", {.method = "GET", .path = ResourcePath(type, ns, name)});
}

namespace {
// The server's metadata-only form of an object, and of a list (a watch's events are objects).
constexpr char kMetadataAccept[] = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
constexpr char kMetadataListAccept[] =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
}  // namespace

Result<json> Client::GetMetadata(const ResourceType& type, std::string_view ns,
                                 std::string_view name) {
  if (auto named = CheckNamed(type, ns, name, "GET"); !named) {
    return std::unexpected(named.error());
  }
  return SendForObject("get", {.method = "GET",
                               .path = ResourcePath(type, ns, name),
                               // No fallback to the whole object: that would read a Secret's data.
                               .accept = kMetadataAccept});
}

Result<ListResult> Client::List(const ResourceType& type, std::string_view ns,
                                const ListOptions& options) {
  ListResult result;
  std::string continue_token;
  std::string what = Describe("LIST", type, ns, "");
  for (;;) {
    QueryParams query;
    if (!options.label_selector.empty())
      query.emplace_back("labelSelector", options.label_selector);
    if (!options.field_selector.empty())
      query.emplace_back("fieldSelector", options.field_selector);
    if (options_.list_page_size > 0) {
      query.emplace_back("limit", std::to_string(options_.list_page_size));
    }
    // The server refuses resourceVersion beside continue: the token already pins the snapshot.
    if (!continue_token.empty()) {
      query.emplace_back("continue", continue_token);
    } else if (!options.resource_version.empty()) {
      query.emplace_back("resourceVersion", options.resource_version);
    }
    HttpRequest request{.method = "GET", .path = ResourcePath(type, ns, "", "", query)};
    if (options.metadata_only) request.accept = kMetadataListAccept;
    auto response = Send("list", request);
    if (!response) return std::unexpected(response.error());
    if (!Success(response->status)) {
      return std::unexpected(
          ApiError(response->status, response->body, what, response->retry_after));
    }
    auto page = ParseBody(response->body, what);
    if (!page) return std::unexpected(page.error());
    auto items = page->find("items");
    if (items != page->end() && items->is_array()) {
      if (!options.on_item) result.items.reserve(result.items.size() + items->size());
      for (json& item : *items) {
        FillTypeMeta(type, item);
        if (options.on_item) {
          options.on_item(std::move(item));
        } else {
          result.items.push_back(std::move(item));
        }
      }
    } else if (items != page->end() && !items->is_null()) {
      return Fail(ErrorCode::kInternal, what + ": items is not an array");
    }
    const json& metadata = MetadataOf(*page);
    result.resource_version = JsonGet<std::string>(metadata, "resourceVersion", "");
    continue_token = JsonGet<std::string>(metadata, "continue", "");
    if (continue_token.empty()) return result;
  }
}

Result<json> Client::Create(const ResourceType& type, const json& object, Reply reply) {
  auto target = TargetOf(type, object);
  if (!target) return std::unexpected(target.error());
  return SendForObject("create",
                       {.method = "POST",
                        .path = ResourcePath(type, target->ns),
                        .body = BodyWithTypeMeta(type, object)},
                       reply);
}

Result<json> Client::CreateReview(const ResourceType& type, const json& review) {
  if (type.namespaced || !review.is_object()) {
    return Fail(ErrorCode::kInvalid, std::string(type.kind) + ": not a cluster-scoped review");
  }
  return SendForObject(
      "create",
      {.method = "POST", .path = ResourcePath(type, ""), .body = BodyWithTypeMeta(type, review)});
}

Result<json> Client::Update(const ResourceType& type, const json& object) {
  auto target = TargetOf(type, object);
  if (!target) return std::unexpected(target.error());
  return SendForObject("update", {.method = "PUT",
                                  .path = ResourcePath(type, target->ns, target->name),
                                  .body = BodyWithTypeMeta(type, object)});
}

Result<json> Client::ApplyTo(const ResourceType& type, const json& object,
                             std::string_view subresource, Reply reply) {
  auto target = TargetOf(type, object);
  if (!target) return std::unexpected(target.error());
  QueryParams query{{"fieldManager", options_.field_manager}, {"force", "true"}};
  return SendForObject("apply",
                       {.method = "PATCH",
                        .path = ResourcePath(type, target->ns, target->name, subresource, query),
                        .body = BodyWithTypeMeta(type, object),
                        .content_type = "application/apply-patch+yaml"},
                       reply);
}

Result<json> Client::Apply(const ResourceType& type, const json& object, Reply reply) {
  return ApplyTo(type, object, "", reply);
}

Result<json> Client::ApplyStatus(const ResourceType& type, const json& object, Reply reply) {
  return ApplyTo(type, object, "status", reply);
}

Result<json> Client::MergePatch(const ResourceType& type, std::string_view ns,
                                std::string_view name, const json& patch,
                                std::string_view subresource, Reply reply) {
  if (auto named = CheckNamed(type, ns, name, "PATCH"); !named) {
    return std::unexpected(named.error());
  }
  return SendForObject("patch",
                       {.method = "PATCH",
                        .path = ResourcePath(type, ns, name, subresource),
                        .body = patch.dump(),
                        .content_type = "application/merge-patch+json"},
                       reply);
}

Status Client::Delete(const ResourceType& type, std::string_view ns, std::string_view name,
                      const DeleteOptions& options) {
  if (auto named = CheckNamed(type, ns, name, "DELETE"); !named) return named;
  HttpRequest request{.method = "DELETE", .path = ResourcePath(type, ns, name)};
  json body = json::object();
  if (!options.precondition_uid.empty()) body["preconditions"]["uid"] = options.precondition_uid;
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
  }
  if (!options.propagation_policy.empty()) {
    body["propagationPolicy"] = options.propagation_policy;
  }
  if (!body.empty()) {
    body["kind"] = "DeleteOptions";
    body["apiVersion"] = "v1";
    request.body = body.dump();
  }
  // The answer is the object (with deletionTimestamp, while finalizers hold it) or a Status;
  // neither is needed, and an empty 200 would not parse.
  std::string what = Describe("DELETE", type, ns, name);
  auto response = Send("delete", std::move(request));
  if (!response) return std::unexpected(response.error());
  if (!Success(response->status)) {
    return std::unexpected(ApiError(response->status, response->body, what, response->retry_after));
  }
  return {};
}

// What one watch's bytes have said so far: the events are decoded as lines complete, and the
// first failure an event carries ends the stream.
struct Client::WatchStream {
  ResourceType type;
  std::string what;
  std::stop_token stop;
  std::function<bool(WatchEvent&)> on_event;
  JsonStreamSplitter splitter{};
  std::optional<Error> failure;
  bool stopped = false;

  bool Feed(std::string_view bytes) {
    auto values = splitter.Feed(bytes);
    if (!values) {
      failure = values.error();
      failure->message = what + ": " + failure->message;
      return false;
    }
    for (json& value : *values) {
      if (!value.is_object()) {
        failure = Error{ErrorCode::kInvalid, what + ": event is not an object", {}, 0};
        return false;
      }
      WatchEvent event{JsonGet<std::string>(value, "type", ""), std::move(value["object"])};
      if (event.type == "ERROR") {
        // The object is a Status; its code (410 for an expired resourceVersion) decides.
        int code = 500;
        if (auto it = event.object.find("code"); it != event.object.end() && it->is_number()) {
          code = it->get<int>();
        }
        failure = ApiError(code, event.object.dump(), what);
        return false;
      }
      if (event.type != "ADDED" && event.type != "MODIFIED" && event.type != "DELETED" &&
          event.type != "BOOKMARK") {
        // client-go skips what it does not understand too; a newer server may send more.
        continue;
      }
      if (!event.object.is_object()) {
        failure =
            Error{ErrorCode::kInvalid, what + ": " + event.type + " without an object", {}, 0};
        return false;
      }
      FillTypeMeta(type, event.object);
      if (!on_event(event)) {
        stopped = true;
        return false;
      }
    }
    return true;
  }

  Status End(const Result<HttpResponse>& response) const {
    // What the events said comes first: a transport may report the stream we cut short as broken.
    if (failure) return std::unexpected(*failure);
    if (stopped || stop.stop_requested()) return {};
    if (!response) return std::unexpected(response.error());
    if (!Success(response->status)) {
      return std::unexpected(
          ApiError(response->status, response->body, what, response->retry_after));
    }
    if (splitter.Pending() > 0) {
      return Fail(ErrorCode::kUnavailable, what + ": stream ended inside an event");
    }
    return {};
  }
};

Status Client::Watch(const ResourceType& type, std::string_view ns, const WatchOptions& options,
                     const std::function<bool(WatchEvent&)>& on_event) {
  auto ended = std::make_shared<std::promise<Status>>();
  WatchAsync(type, ns, options, on_event, [ended](Status status) { ended->set_value(status); });
  return ended->get_future().get();
}

void Client::WatchAsync(const ResourceType& type, std::string_view ns, const WatchOptions& options,
                        std::function<bool(WatchEvent&)> on_event,
                        std::function<void(Status)> on_done) {
  QueryParams query{{"watch", "true"}, {"allowWatchBookmarks", "true"}};
  if (!options.label_selector.empty()) query.emplace_back("labelSelector", options.label_selector);
  if (!options.field_selector.empty()) query.emplace_back("fieldSelector", options.field_selector);
  if (!options.resource_version.empty()) {
    query.emplace_back("resourceVersion", options.resource_version);
  }
  std::chrono::seconds server_timeout{0};
  if (options.timeout.count() > 0) {
    server_timeout = JitteredTimeout(options.timeout);
    query.emplace_back("timeoutSeconds", std::to_string(server_timeout.count()));
  }
  // The server closes the stream at timeoutSeconds; the transport's own limit is only a backstop
  // for a server that went silent.
  HttpRequest request{.method = "GET",
                      .path = ResourcePath(type, ns, "", "", query),
                      .timeout = server_timeout + options_.request_timeout,
                      .stop = options.stop};
  if (options.metadata_only) request.accept = kMetadataAccept;

  auto stream = std::make_shared<WatchStream>(WatchStream{.type = type,
                                                          .what = Describe("WATCH", type, ns, ""),
                                                          .stop = options.stop,
                                                          .on_event = std::move(on_event)});
  transport_.StreamAsync(
      std::move(request), [stream](std::string_view bytes) { return stream->Feed(bytes); },
      [this, stream, on_done = std::move(on_done)](Result<HttpResponse> response) {
        Count("watch", response ? response->status : 0);
        on_done(stream->End(response));
      });
}

}  // namespace poolkeeper::kube
