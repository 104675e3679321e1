// The Kubernetes API client: typed resource paths and the verbs the operator needs (get, paged
// list, create, update, server-side apply, merge patch, delete, watch) over a Transport. It does
// not retry: every failure comes back as an Error whose next_step() tells the caller what to do,
// so the work queue and the informer own their backoff. Requests are counted by verb and HTTP code
// for the metrics endpoint. A RequestGate, when set, decides before every request whether it may be
// sent and how long it may take: leader election fences writes with it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "kube/transport.h"

namespace poolkeeper::kube {

// A kind as the API serves it. group is empty for the core ("legacy") group under /api/v1.
struct ResourceType {
  std::string_view group;
  std::string_view version;
  std::string_view plural;
  std::string_view kind;
  bool namespaced = true;

  std::string ApiVersion() const;  // "v1", "apps/v1"
};

namespace resources {
inline constexpr ResourceType kConfigMap{"", "v1", "configmaps", "ConfigMap", true};
inline constexpr ResourceType kSecret{"", "v1", "secrets", "Secret", true};
inline constexpr ResourceType kService{"", "v1", "services", "Service", true};
inline constexpr ResourceType kPod{"", "v1", "pods", "Pod", true};
inline constexpr ResourceType kNamespace{"", "v1", "namespaces", "Namespace", false};
inline constexpr ResourceType kCoreEvent{"", "v1", "events", "Event", true};
inline constexpr ResourceType kEvent{"events.k8s.io", "v1", "events", "Event", true};
inline constexpr ResourceType kDeployment{"apps", "v1", "deployments", "Deployment", true};
inline constexpr ResourceType kPodDisruptionBudget{"policy", "v1", "poddisruptionbudgets",
                                                   "PodDisruptionBudget", true};
inline constexpr ResourceType kLease{"coordination.k8s.io", "v1", "leases", "Lease", true};
}  // namespace resources

// Query parameters in order; values are percent-encoded by ResourcePath.
using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Percent-encodes everything outside RFC 3986's unreserved set (so '=', ',', '!' in selectors and
// '/' or '+' in continue tokens survive).
std::string UrlEncode(std::string_view text);

// /api/v1/namespaces/NS/PLURAL/NAME/SUB?k=v, or /apis/GROUP/VERSION/...; an empty namespace on a
// namespaced type means all namespaces, an empty name the collection.
std::string ResourcePath(const ResourceType& type, std::string_view ns, std::string_view name = "",
                         std::string_view subresource = "", const QueryParams& query = {});

struct ClientOptions {
  std::string field_manager = "poolkeeper";
  std::chrono::seconds request_timeout{30};
  int64_t list_page_size = 500;  // items per LIST page (limit); 0 reads everything at once
  uint64_t jitter_seed = 0;      // 0: seeded from std::random_device
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;  // "" = most recent (quorum read)
  // Items as PartialObjectMetadata (apiVersion, kind, metadata): what a cache of names needs,
  // without ever receiving a Secret's data.
  bool metadata_only = false;
  // Set: each item is handed to it as its page is read, and ListResult::items stays empty. A cache
  // that keeps a trimmed copy (Informer) then never holds a whole untrimmed list: the transient
  // peak is one page, and the freed pages are not interleaved with what it keeps.
  std::function<void(nlohmann::json&& item)> on_item;
};

struct ListResult {
  std::vector<nlohmann::json> items;  // empty when ListOptions::on_item took them
  std::string resource_version;       // of the list, to start a watch from
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  // The server ends the watch after timeoutSeconds, jittered in [timeout, 2 x timeout) so that
  // many watches opened together do not all reconnect together (as client-go does).
  std::chrono::seconds timeout{300};
  // Ends the watch at once when a stop is requested, however quiet the stream (Informer::Stop).
  std::stop_token stop;
  bool metadata_only = false;  // as ListOptions
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  nlohmann::json object;
};

// What a write hands back. kStatusOnly: only whether it worked; the answer goes unparsed (a
// profile of a 1,000-pool bulk spent about 5 % of the operator's CPU parsing answers nobody read).
enum class Reply { kObject, kStatusOnly };

struct DeleteOptions {
  std::string precondition_uid;
  std::string precondition_resource_version;
  std::string propagation_policy;  // Foreground, Background, Orphan; "" = server default
};

// Consulted by the Client before it sends a request (watches excepted: they only read), so that no
// caller can forget it. Leader election implements two: the write fence of the controller's client
// (writes only while this replica leads, and done before another replica could take the lease) and
// the bound of its own Lease requests (never past the renew deadline).
class RequestGate {
 public:
  virtual ~RequestGate() = default;
  // The longest `method` (GET, POST, PUT, PATCH, DELETE) may take now; the request's timeout is the
  // smaller of this and the client's request_timeout. An error is the request's result, with
  // nothing sent.
  virtual Result<Clock::Duration> Admit(std::string_view method) const = 0;
};

// Requests by verb (get, list, create, update, apply, patch, delete, watch) and HTTP status; 0
// when no response came.
using RequestCountMap = std::map<std::pair<std::string, int>, uint64_t>;

class Client {
 public:
  explicit Client(Transport& transport, ClientOptions options = {});

  Result<nlohmann::json> Get(const ResourceType& type, std::string_view ns, std::string_view name);
  // The object's metadata alone (a meta.k8s.io/v1 PartialObjectMetadata): its name, labels and
  // resourceVersion without its data, e.g. to learn whether a Secret exists without reading it.
  Result<nlohmann::json> GetMetadata(const ResourceType& type, std::string_view ns,
                                     std::string_view name);
  // Get, MergePatch and Delete refuse an empty name (or an empty namespace on a namespaced type)
  // with kInvalid before sending anything: either would address a collection.
  //
  // Every page (limit/continue) of the collection; an expired continue token is kGone.
  Result<ListResult> List(const ResourceType& type, std::string_view ns,
                          const ListOptions& options = {});
  // Create, Update, Apply and ApplyStatus take the namespace and name from object.metadata. A write
  // returns the object as stored, or with Reply::kStatusOnly a null value: the answer is not
  // parsed.
  Result<nlohmann::json> Create(const ResourceType& type, const nlohmann::json& object,
                                Reply reply = Reply::kObject);
  Result<nlohmann::json> Update(const ResourceType& type, const nlohmann::json& object);
  // Server-side apply as our field manager, forcing ownership of the fields we set. apiVersion and
  // kind are filled in when absent. The body is JSON, which is YAML.
  Result<nlohmann::json> Apply(const ResourceType& type, const nlohmann::json& object,
                               Reply reply = Reply::kObject);
  Result<nlohmann::json> ApplyStatus(const ResourceType& type, const nlohmann::json& object,
                                     Reply reply = Reply::kObject);
  Result<nlohmann::json> MergePatch(const ResourceType& type, std::string_view ns,
                                    std::string_view name, const nlohmann::json& patch,
                                    std::string_view subresource = "",
                                    Reply reply = Reply::kObject);
  Status Delete(const ResourceType& type, std::string_view ns, std::string_view name,
                const DeleteOptions& options = {});
  // POSTs a review (TokenReview, SubjectAccessReview): an object the server answers in its
  // status and does not store, so it has no name (a SubjectAccessReview must have empty
  // metadata). Cluster-scoped types only. Counted as "create".
  Result<nlohmann::json> CreateReview(const ResourceType& type, const nlohmann::json& review);

  // Watches until the server ends the stream (success), `on_event` returns false (success), or
  // something fails: an ERROR event becomes its Error (410/Expired: kGone), a broken stream
  // kUnavailable or kInvalid. BOOKMARK events are passed on: their resourceVersion is the one to
  // resume from. Event types other than ADDED, MODIFIED, DELETED, BOOKMARK and ERROR are skipped.
  // `on_event` may take the event's object (an informer keeps it without a copy).
  Status Watch(const ResourceType& type, std::string_view ns, const WatchOptions& options,
               const std::function<bool(WatchEvent&)>& on_event);
  // The same watch on the transport's event loop (Transport::StreamAsync): returns at once;
  // on_event and then, once, on_done (what Watch would return) run on the loop's thread, or
  // on_done on this one when the watch cannot start.
  void WatchAsync(const ResourceType& type, std::string_view ns, const WatchOptions& options,
                  std::function<bool(WatchEvent&)> on_event, std::function<void(Status)> on_done);

  RequestCountMap RequestCounts() const;
  const ClientOptions& options() const { return options_; }
  // How long a write may take if it started now, as the gate says (unbounded without one): for
  // writes that do not go through this client, such as PostgreSQL's, to obey the same fence.
  Result<Clock::Duration> WriteWindow() const;
  // Every request from now on asks `gate` first (nullptr: none). `gate` must outlive the client's
  // use; safe to call while other threads send.
  void SetGate(const RequestGate* gate) { gate_.store(gate); }

 private:
  struct WatchStream;
  Result<HttpResponse> Send(std::string_view verb, HttpRequest request);
  Result<nlohmann::json> SendForObject(std::string_view verb, HttpRequest request,
                                       Reply reply = Reply::kObject);
  Result<nlohmann::json> ApplyTo(const ResourceType& type, const nlohmann::json& object,
                                 std::string_view subresource, Reply reply);
  void Count(std::string_view verb, int status);
  std::chrono::seconds JitteredTimeout(std::chrono::seconds base);

  Transport& transport_;
  ClientOptions options_;
  std::atomic<const RequestGate*> gate_{nullptr};
  mutable std::mutex mutex_;  // guards counts_ and random_
  RequestCountMap counts_;
  std::mt19937_64 random_;
};

// "namespace/name", or "name" for cluster-scoped objects: the key of caches and work queues.
std::string ObjectKey(const nlohmann::json& object);

}  // namespace poolkeeper::kube
