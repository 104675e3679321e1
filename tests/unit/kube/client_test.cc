#include "kube/client.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "fake_transport.h"

namespace poolkeeper::kube {
namespace {

using nlohmann::json;
using testing::Bookmark;
using testing::Event;
using testing::FakeTransport;
using testing::StatusBody;

// A custom resource: kube knows no product kinds, its tests bring their own.
constexpr ResourceType kWidgets{"example.io", "v1", "widgets", "Widget", true};

constexpr char kConfigMaps[] = "/api/v1/namespaces/shop/configmaps";

// The query of a request path as key → (still encoded) value.
std::map<std::string, std::string> QueryOf(const std::string& path) {
  std::map<std::string, std::string> query;
  size_t start = path.find('?');
  if (start == std::string::npos) return query;
  std::string rest = path.substr(start + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t end = rest.find('&', pos);
    if (end == std::string::npos) end = rest.size();
    std::string pair = rest.substr(pos, end - pos);
    size_t eq = pair.find('=');
    query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    pos = end + 1;
  }
  return query;
}

json ConfigMap(std::string name, std::string rv) {
  return {{"metadata", {{"name", name}, {"namespace", "shop"}, {"resourceVersion", rv}}}};
}

class ClientTest : public ::testing::Test {
 protected:
  FakeTransport transport_;
  Client client_{transport_, {.list_page_size = 2, .jitter_seed = 42}};
};

TEST(ResourcePath, BuildsCoreGroupClusterAndSubresourcePaths) {
  struct Case {
    const ResourceType* type;
    std::string ns, name, sub;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {&resources::kConfigMap, "shop", "a", "", "/api/v1/namespaces/shop/configmaps/a"},
           {&resources::kConfigMap, "", "", "", "/api/v1/configmaps"},
           {&resources::kDeployment, "shop", "", "", "/apis/apps/v1/namespaces/shop/deployments"},
           {&kWidgets, "shop", "w1", "status",
            "/apis/example.io/v1/namespaces/shop/widgets/w1/status"},
           {&resources::kNamespace, "ignored", "shop", "", "/api/v1/namespaces/shop"},
           {&resources::kLease, "ops", "poolkeeper", "",
            "/apis/coordination.k8s.io/v1/namespaces/ops/leases/poolkeeper"},
       }) {
    EXPECT_EQ(ResourcePath(*c.type, c.ns, c.name, c.sub), c.want);
  }
}

TEST(ResourcePath, PercentEncodesQueryValuesOutsideTheUnreservedSet) {
  std::string path = ResourcePath(
      resources::kPod, "shop", "", "",
      {{"labelSelector", "app in (a,b),tier!=db"}, {"continue", "eyJ2Ijo/+x=="}, {"limit", "500"}});
  EXPECT_EQ(path,
            "/api/v1/namespaces/shop/pods?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Ddb"
            "&continue=eyJ2Ijo%2F%2Bx%3D%3D&limit=500");
  EXPECT_EQ(UrlEncode("a-b_c.d~e"), "a-b_c.d~e");
}

TEST(ObjectKey, IsNamespaceSlashNameAndSurvivesMalformedObjects) {
  EXPECT_EQ(ObjectKey(ConfigMap("a", "1")), "shop/a");
  EXPECT_EQ(ObjectKey(json{{"metadata", {{"name", "shop"}}}}), "shop");
  EXPECT_EQ(ObjectKey(json::array()), "");
  EXPECT_EQ(ObjectKey(json{{"metadata", {{"name", 7}}}}), "");
  EXPECT_EQ(ObjectKey(json{{"metadata", "x"}}), "");
}

TEST_F(ClientTest, GetReturnsTheObjectAndStatusBodiesAsTypedErrors) {
  transport_.RespondJson("GET", std::string(kConfigMaps) + "/a", 200, ConfigMap("a", "7"));
  transport_.Respond("GET", std::string(kConfigMaps) + "/b", 404,
                     StatusBody(404, "NotFound", "configmaps \"b\" not found"));
  auto found = client_.Get(resources::kConfigMap, "shop", "a");
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ((*found)["metadata"]["resourceVersion"], "7");
  auto missing = client_.Get(resources::kConfigMap, "shop", "b");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message,
            "GET /api/v1/namespaces/shop/configmaps/b: configmaps \"b\" not found");
}

TEST_F(ClientTest, RefusesToAddressACollectionWhereOneObjectIsMeant) {
  EXPECT_EQ(client_.Get(resources::kConfigMap, "shop", "").error().code, ErrorCode::kInvalid);
  EXPECT_EQ(client_.Get(resources::kConfigMap, "", "a").error().code, ErrorCode::kInvalid);
  EXPECT_EQ(client_.Delete(resources::kConfigMap, "shop", "").error().code, ErrorCode::kInvalid);
  EXPECT_EQ(client_.MergePatch(resources::kConfigMap, "shop", "", json::object()).error().code,
            ErrorCode::kInvalid);
  EXPECT_EQ(client_.Create(resources::kConfigMap, json{{"metadata", {{"name", "a"}}}}).error().code,
            ErrorCode::kInvalid);
  EXPECT_EQ(client_.Update(resources::kConfigMap, json::array()).error().code, ErrorCode::kInvalid);
  EXPECT_TRUE(transport_.Requests().empty()) << "nothing may reach the server";
}

TEST_F(ClientTest, ListFollowsContinueTokensAndFillsTypeMetaOfItems) {
  transport_.RespondJson("GET", std::string(kConfigMaps) + "?labelSelector=app%3Dx&limit=2", 200,
                         {{"metadata", {{"resourceVersion", "10"}, {"continue", "tok/1="}}},
                          {"items", {ConfigMap("a", "3"), ConfigMap("b", "4")}}});
  transport_.RespondJson(
      "GET", std::string(kConfigMaps) + "?labelSelector=app%3Dx&limit=2" + "&continue=tok%2F1%3D",
      200, {{"metadata", {{"resourceVersion", "10"}}}, {"items", {ConfigMap("c", "9")}}});
  auto list = client_.List(resources::kConfigMap, "shop",
                           {.label_selector = "app=x", .resource_version = "5"});
  ASSERT_FALSE(list) << "the first page must carry resourceVersion=5, which was not scripted";

  list = client_.List(resources::kConfigMap, "shop", {.label_selector = "app=x"});
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->items.size(), 3u);
  EXPECT_EQ(list->resource_version, "10");
  EXPECT_EQ(list->items[2]["metadata"]["name"], "c");
  EXPECT_EQ(list->items[0]["apiVersion"], "v1");
  EXPECT_EQ(list->items[0]["kind"], "ConfigMap");
  EXPECT_EQ(transport_.Unused(), 0u);
}

TEST_F(ClientTest, ListHandsEachItemToOnItemPageByPageInsteadOfCollectingThem) {
  transport_.RespondJson("GET", kConfigMaps, 200,
                         {{"metadata", {{"resourceVersion", "10"}, {"continue", "c1"}}},
                          {"items", {ConfigMap("a", "3"), ConfigMap("b", "4")}}});
  transport_.RespondJson(
      "GET", kConfigMaps, 200,
      {{"metadata", {{"resourceVersion", "10"}}}, {"items", {ConfigMap("c", "9")}}});
  std::vector<std::string> handed;  // name@requests sent when it was handed over
  auto list = client_.List(resources::kConfigMap, "shop", {.on_item = [&](json&& item) {
                             EXPECT_EQ(item["kind"], "ConfigMap");
                             handed.push_back(item["metadata"]["name"].get<std::string>() + "@" +
                                              std::to_string(transport_.Requests().size()));
                           }});
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_TRUE(list->items.empty());
  EXPECT_EQ(list->resource_version, "10");
  EXPECT_EQ(handed, (std::vector<std::string>{"a@1", "b@1", "c@2"}))
      << "a page's items are handed over before the next page is asked for";
}

TEST_F(ClientTest, ListSendsResourceVersionOnlyOnTheFirstPage) {
  transport_.RespondJson(
      "GET", kConfigMaps, 200,
      {{"metadata", {{"resourceVersion", "10"}, {"continue", "c1"}}}, {"items", json::array()}});
  transport_.RespondJson("GET", kConfigMaps, 200, {{"metadata", {{"resourceVersion", "10"}}}});
  ASSERT_TRUE(client_.List(resources::kConfigMap, "shop", {.resource_version = "0"}));
  auto requests = transport_.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(QueryOf(requests[0].path),
            (std::map<std::string, std::string>{{"limit", "2"}, {"resourceVersion", "0"}}));
  EXPECT_EQ(QueryOf(requests[1].path),
            (std::map<std::string, std::string>{{"limit", "2"}, {"continue", "c1"}}));
}

TEST_F(ClientTest, ListWithAnExpiredContinueTokenIsGone) {
  transport_.RespondJson("GET", kConfigMaps, 200,
                         {{"metadata", {{"resourceVersion", "10"}, {"continue", "old"}}},
                          {"items", {ConfigMap("a", "3")}}});
  transport_.Respond("GET", kConfigMaps, 410,
                     StatusBody(410, "Expired", "The provided continue parameter is too old"));
  auto list = client_.List(resources::kConfigMap, "shop");
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code, ErrorCode::kGone);
  EXPECT_EQ(list.error().next_step(), NextStep::kRetryNow);
}

TEST_F(ClientTest, WritesUseTheVerbPathAndContentTypeOfEachKind) {
  json object = ConfigMap("a", "3");
  transport_.RespondJson("POST", kConfigMaps, 201, object);
  transport_.RespondJson("PUT", std::string(kConfigMaps) + "/a", 200, object);
  transport_.RespondJson("PATCH", std::string(kConfigMaps) + "/a", 200, object);
  transport_.RespondJson("PATCH", std::string(kConfigMaps) + "/a", 200, object);
  transport_.RespondJson("PATCH", std::string(kConfigMaps) + "/a/status", 200, object);
  ASSERT_TRUE(client_.Create(resources::kConfigMap, object));
  ASSERT_TRUE(client_.Update(resources::kConfigMap, object));
  ASSERT_TRUE(client_.Apply(resources::kConfigMap, object));
  ASSERT_TRUE(client_.MergePatch(resources::kConfigMap, "shop", "a", {{"data", {{"k", "v"}}}}));
  ASSERT_TRUE(client_.ApplyStatus(resources::kConfigMap, object));

  auto requests = transport_.Requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(json::parse(requests[0].body)["apiVersion"], "v1");
  EXPECT_EQ(json::parse(requests[0].body)["kind"], "ConfigMap");
  EXPECT_EQ(requests[1].method, "PUT");
  EXPECT_EQ(json::parse(requests[1].body)["metadata"]["resourceVersion"], "3");

  for (const HttpRequest& apply : {requests[2], requests[4]}) {
    EXPECT_EQ(apply.method, "PATCH");
    EXPECT_EQ(apply.content_type, "application/apply-patch+yaml");
    EXPECT_EQ(QueryOf(apply.path), (std::map<std::string, std::string>{
                                       {"fieldManager", "poolkeeper"}, {"force", "true"}}));
    EXPECT_EQ(json::parse(apply.body)["kind"], "ConfigMap");
  }
  EXPECT_EQ(requests[2].path, std::string(kConfigMaps) + "/a?fieldManager=poolkeeper&force=true");
  EXPECT_EQ(requests[4].path,
            std::string(kConfigMaps) + "/a/status?fieldManager=poolkeeper&force=true");
  EXPECT_EQ(requests[3].content_type, "application/merge-patch+json");
  EXPECT_EQ(json::parse(requests[3].body), (json{{"data", {{"k", "v"}}}}));
}

TEST_F(ClientTest, DeleteSendsPreconditionsAndAcceptsAnyAnswerBody) {
  transport_.Respond("DELETE", std::string(kConfigMaps) + "/a", 200, "");
  transport_.Respond("DELETE", std::string(kConfigMaps) + "/b", 409,
                     StatusBody(409, "Conflict", "precondition failed"));
  ASSERT_TRUE(client_.Delete(resources::kConfigMap, "shop", "a",
                             {.precondition_uid = "u-1", .propagation_policy = "Foreground"}));
  json body = json::parse(transport_.Requests()[0].body);
  EXPECT_EQ(body["preconditions"]["uid"], "u-1");
  EXPECT_EQ(body["propagationPolicy"], "Foreground");
  EXPECT_EQ(body["kind"], "DeleteOptions");
  auto conflict = client_.Delete(resources::kConfigMap, "shop", "b");
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(transport_.Requests()[1].body.empty());
}

TEST_F(ClientTest, WriteFailuresBecomeTypedErrors) {
  struct Case {
    int http;
    std::string reason;
    ErrorCode code;
  };
  for (const Case& c : std::vector<Case>{{409, "AlreadyExists", ErrorCode::kAlreadyExists},
                                         {409, "Conflict", ErrorCode::kConflict},
                                         {422, "Invalid", ErrorCode::kInvalid},
                                         {403, "Forbidden", ErrorCode::kUnauthorized},
                                         {429, "TooManyRequests", ErrorCode::kTooManyRequests},
                                         {503, "ServiceUnavailable", ErrorCode::kUnavailable}}) {
    transport_.Respond("PATCH", std::string(kConfigMaps) + "/a", c.http,
                       StatusBody(c.http, c.reason));
    auto applied = client_.Apply(resources::kConfigMap, ConfigMap("a", ""));
    ASSERT_FALSE(applied) << c.reason;
    EXPECT_EQ(applied.error().code, c.code) << c.reason;
  }
  transport_.FailWith("PATCH", std::string(kConfigMaps) + "/a", ErrorCode::kTimeout);
  EXPECT_EQ(client_.Apply(resources::kConfigMap, ConfigMap("a", "")).error().code,
            ErrorCode::kTimeout);
}

TEST_F(ClientTest, AStatusOnlyWriteLeavesTheAnswerUnparsedButStillReportsFailures) {
  const std::string path = std::string(kConfigMaps) + "/a";
  // An answer that does not parse: a write that wants the object fails on it, a status-only one
  // never reads it.
  transport_.Respond("PATCH", path, 200, "{not json");
  transport_.Respond("PATCH", path, 200, "{not json");
  transport_.Respond("POST", kConfigMaps, 201, "{not json");
  transport_.Respond("PATCH", path, 409, StatusBody(409, "Conflict", "resourceVersion changed"));
  auto wanted = client_.Apply(resources::kConfigMap, ConfigMap("a", ""));
  ASSERT_FALSE(wanted);
  EXPECT_EQ(wanted.error().code, ErrorCode::kInternal);

  auto applied = client_.Apply(resources::kConfigMap, ConfigMap("a", ""), Reply::kStatusOnly);
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_TRUE(applied->is_null());
  auto created = client_.Create(resources::kConfigMap, ConfigMap("a", ""), Reply::kStatusOnly);
  ASSERT_TRUE(created) << created.error().message;
  auto patched = client_.MergePatch(resources::kConfigMap, "shop", "a", {{"data", nullptr}}, "",
                                    Reply::kStatusOnly);
  ASSERT_FALSE(patched);
  EXPECT_EQ(patched.error().code, ErrorCode::kConflict);
}

// A gate that refuses writes, or lets them take `window`: what the leader-election fence does.
class ScriptedGate : public RequestGate {
 public:
  Result<Clock::Duration> Admit(std::string_view method) const override {
    asked.emplace_back(method);
    if (method == "GET") return Clock::Duration::max();
    if (refuse) return Fail(ErrorCode::kNotLeader, "not leader");
    return window;
  }
  bool refuse = true;
  Clock::Duration window{};
  mutable std::vector<std::string> asked;
};

TEST_F(ClientTest, EveryWriteVerbAsksTheGateAndARefusalSendsNothing) {
  ScriptedGate gate;
  client_.SetGate(&gate);
  json object = ConfigMap("a", "3");
  struct Case {
    std::string verb;
    std::function<Status()> call;
  };
  auto status = [](const auto& result) -> Status {
    if (!result) return std::unexpected(result.error());
    return {};
  };
  for (const Case& c : std::vector<Case>{
           {"create", [&] { return status(client_.Create(resources::kConfigMap, object)); }},
           {"update", [&] { return status(client_.Update(resources::kConfigMap, object)); }},
           {"apply", [&] { return status(client_.Apply(resources::kConfigMap, object)); }},
           {"apply status",
            [&] { return status(client_.ApplyStatus(resources::kConfigMap, object)); }},
           {"merge patch",
            [&] { return status(client_.MergePatch(resources::kConfigMap, "shop", "a", {})); }},
           {"delete", [&] { return client_.Delete(resources::kConfigMap, "shop", "a"); }},
       }) {
    auto result = c.call();
    ASSERT_FALSE(result) << c.verb;
    EXPECT_EQ(result.error().code, ErrorCode::kNotLeader) << c.verb;
  }
  EXPECT_EQ(gate.asked,
            (std::vector<std::string>{"POST", "PUT", "PATCH", "PATCH", "PATCH", "DELETE"}));
  EXPECT_TRUE(transport_.Requests().empty()) << "a refused write never reaches the transport";

  // Reads pass, with the client's own timeout.
  transport_.RespondJson("GET", std::string(kConfigMaps) + "/a", 200, object);
  ASSERT_TRUE(client_.Get(resources::kConfigMap, "shop", "a"));
  EXPECT_EQ(transport_.LastRequest().timeout, std::chrono::seconds(30));
}

// What writes outside the API (PostgreSQL's role limits) ask: the gate's answer for a write, and no
// bound without a gate.
TEST_F(ClientTest, WriteWindowIsTheGatesAnswerForAWrite) {
  auto unbounded = client_.WriteWindow();
  ASSERT_TRUE(unbounded);
  EXPECT_EQ(*unbounded, Clock::Duration::max());
  ScriptedGate gate;
  client_.SetGate(&gate);
  auto refused = client_.WriteWindow();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kNotLeader);
  gate.refuse = false;
  gate.window = std::chrono::seconds(7);
  EXPECT_EQ(client_.WriteWindow().value_or(Clock::Duration::zero()), std::chrono::seconds(7));
  EXPECT_EQ(gate.asked, (std::vector<std::string>{"PATCH", "PATCH"}));
  EXPECT_TRUE(transport_.Requests().empty());
}

TEST_F(ClientTest, AWriteTakesNoLongerThanTheGateAllows) {
  ScriptedGate gate;
  gate.refuse = false;
  client_.SetGate(&gate);
  struct Case {
    Clock::Duration window;
    std::chrono::milliseconds timeout;
  };
  for (const Case& c : std::vector<Case>{
           {std::chrono::milliseconds(2500), std::chrono::milliseconds(2500)},
           {std::chrono::microseconds(1999), std::chrono::milliseconds(1)},  // rounded down
           {std::chrono::hours(1), std::chrono::seconds(30)},  // the client's own is shorter
       }) {
    gate.window = c.window;
    transport_.RespondJson("PATCH", std::string(kConfigMaps) + "/a", 200, ConfigMap("a", "1"));
    ASSERT_TRUE(client_.Apply(resources::kConfigMap, ConfigMap("a", "")));
    EXPECT_EQ(transport_.LastRequest().timeout, c.timeout);
  }
  gate.window = std::chrono::microseconds(999);  // less than the transport can count
  auto late = client_.Apply(resources::kConfigMap, ConfigMap("a", ""));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(transport_.Requests().size(), 3u);
}

TEST_F(ClientTest, WatchDeliversEventsWhateverTheChunkBoundaries) {
  std::vector<json> events = {Event("ADDED", ConfigMap("a", "11")),
                              Event("MODIFIED", ConfigMap("a", "12")), Bookmark("13"),
                              Event("DELETED", ConfigMap("a", "14"))};
  size_t body_size = 0;
  for (const auto& event : events) body_size += event.dump().size() + 1;
  for (size_t chunk = 1; chunk <= body_size; chunk += 7) {
    transport_.QueueWatch(kConfigMaps, events, chunk);
    std::vector<WatchEvent> seen;
    auto status = client_.Watch(resources::kConfigMap, "shop", {.resource_version = "10"},
                                [&](const WatchEvent& event) {
                                  seen.push_back(event);
                                  return true;
                                });
    ASSERT_TRUE(status) << "chunk " << chunk << ": " << status.error().message;
    ASSERT_EQ(seen.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(seen[0].type, "ADDED");
    EXPECT_EQ(seen[0].object["kind"], "ConfigMap");
    EXPECT_EQ(seen[1].object["metadata"]["resourceVersion"], "12");
    EXPECT_EQ(seen[2].type, "BOOKMARK");
    EXPECT_EQ(seen[2].object["metadata"]["resourceVersion"], "13");
    EXPECT_EQ(seen[3].type, "DELETED");
  }
  auto query = QueryOf(transport_.LastRequest().path);
  EXPECT_EQ(query["watch"], "true");
  EXPECT_EQ(query["allowWatchBookmarks"], "true");
  EXPECT_EQ(query["resourceVersion"], "10");
}

TEST_F(ClientTest, WatchEndsWhenTheHandlerSaysSo) {
  transport_.QueueWatch(
      kConfigMaps, {Event("ADDED", ConfigMap("a", "11")), Event("ADDED", ConfigMap("b", "12"))});
  int seen = 0;
  auto status = client_.Watch(resources::kConfigMap, "shop", {}, [&](const WatchEvent&) {
    ++seen;
    return false;
  });
  EXPECT_TRUE(status);
  EXPECT_EQ(seen, 1);
}

TEST_F(ClientTest, WatchFailuresSayWhetherToRelist) {
  json expired = json::parse(StatusBody(410, "Expired", "too old resource version: 5 (20)"));
  struct Case {
    std::string name;
    std::function<void()> script;
    ErrorCode code;
  };
  std::vector<Case> cases = {
      {"ERROR event 410", [&] { transport_.QueueWatch(kConfigMaps, {Event("ERROR", expired)}, 5); },
       ErrorCode::kGone},
      {"HTTP 410", [&] { transport_.Respond("GET", kConfigMaps, 410, expired.dump()); },
       ErrorCode::kGone},
      {"stream ends inside an event",
       [&] {
         transport_.Queue("GET", kConfigMaps,
                          {.response = {.status = 200}, .chunks = {R"({"type":"ADDED","obj)"}});
       },
       ErrorCode::kUnavailable},
      {"connection drops",
       [&] {
         transport_.QueueWatch(kConfigMaps, {Event("ADDED", ConfigMap("a", "11"))}, 8,
                               Error{ErrorCode::kUnavailable, "reset", {}, 0});
       },
       ErrorCode::kUnavailable},
      {"garbage",
       [&] {
         transport_.Queue("GET", kConfigMaps, {.response = {.status = 200}, .chunks = {"]"}});
       },
       ErrorCode::kInvalid},
  };
  for (const Case& c : cases) {
    c.script();
    auto status = client_.Watch(resources::kConfigMap, "shop", {.resource_version = "5"},
                                [](const WatchEvent&) { return true; });
    ASSERT_FALSE(status) << c.name;
    EXPECT_EQ(status.error().code, c.code) << c.name << ": " << status.error().message;
  }
}

TEST_F(ClientTest, WatchTimeoutIsJitteredWithinOnceToTwiceTheBase) {
  std::set<int> seen;
  for (int i = 0; i < 50; ++i) {
    transport_.QueueWatch(kConfigMaps, {});
    ASSERT_TRUE(client_.Watch(resources::kConfigMap, "shop", {.timeout = std::chrono::seconds(60)},
                              [](const WatchEvent&) { return true; }));
    HttpRequest request = transport_.LastRequest();
    int timeout = std::stoi(QueryOf(request.path)["timeoutSeconds"]);
    EXPECT_GE(timeout, 60);
    EXPECT_LT(timeout, 120);
    EXPECT_GT(request.timeout, std::chrono::seconds(timeout)) << "the transport must outlast it";
    seen.insert(timeout);
  }
  EXPECT_GT(seen.size(), 5u) << "watches opened together must not all reconnect together";
}

TEST_F(ClientTest, CountsRequestsByVerbAndStatus) {
  transport_.RespondJson("GET", std::string(kConfigMaps) + "/a", 200, ConfigMap("a", "1"));
  transport_.Respond("GET", std::string(kConfigMaps) + "/b", 404, StatusBody(404, "NotFound"));
  transport_.RespondJson("GET", kConfigMaps, 200,
                         {{"metadata", {{"continue", "c"}}}, {"items", json::array()}});
  transport_.RespondJson("GET", kConfigMaps, 200, {{"items", json::array()}});
  transport_.QueueWatch(kConfigMaps, {Bookmark("3")});
  (void)client_.Get(resources::kConfigMap, "shop", "a");
  (void)client_.Get(resources::kConfigMap, "shop", "b");
  (void)client_.Get(resources::kConfigMap, "shop", "c");  // not scripted: no response
  (void)client_.List(resources::kConfigMap, "shop");
  (void)client_.Watch(resources::kConfigMap, "shop", {}, [](const WatchEvent&) { return true; });
  EXPECT_EQ(client_.RequestCounts(), (RequestCountMap{{{"get", 200}, 1},
                                                      {{"get", 404}, 1},
                                                      {{"get", 0}, 1},
                                                      {{"list", 200}, 2},
                                                      {{"watch", 200}, 1}}));
}

}  // namespace
}  // namespace poolkeeper::kube
