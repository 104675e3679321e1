// The write side of a reconcile (pool_writer.h): the owned objects are applied at once, the
// ConfigMap after the rest and all before any pod, with the same requests as one after another; a
// new object's name is looked up in the caches of names held by others (ForeignNames) and GET only
// when those have not listed.
#include "controller/pool_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::FakeTransport;
using nlohmann::json;

json Owned(const std::string& kind, const std::string& name) {
  return {
      {"apiVersion", "v1"}, {"kind", kind}, {"metadata", {{"namespace", "shop"}, {"name", name}}}};
}

const json kPool = {{"metadata", {{"namespace", "shop"}, {"name", "app"}, {"uid", "u-1"}}}};
constexpr char kConfigMap[] = "/api/v1/namespaces/shop/configmaps/app-config";
constexpr char kSecret[] = "/api/v1/namespaces/shop/secrets/app-auth";
constexpr char kService[] = "/api/v1/namespaces/shop/services/app";

// Replies that wait until `expected` requests are in flight together (or 10 s pass): with the
// requests one after another, the first would wait alone.
struct Rendezvous {
  std::function<void()> Arrive() {
    return [this] {
      std::unique_lock lock(mutex);
      ++in_flight;
      most = std::max(most, in_flight);
      changed.notify_all();
      changed.wait_for(lock, std::chrono::seconds(10), [this] { return most >= expected; });
      --in_flight;
    };
  }
  int expected = 3;
  std::mutex mutex;
  std::condition_variable changed;
  int in_flight = 0;
  int most = 0;
};

ReconcileResult ThreeObjectsAPodAndAStatus(bool add_finalizer = false) {
  ReconcileResult result;
  result.apply = {Owned("ConfigMap", "app-config"), Owned("Secret", "app-auth"),
                  Owned("Service", "app")};
  result.create_pods = {Owned("Pod", "app-0")};
  result.status = json{{"phase", "Pending"}};
  if (add_finalizer) result.finalizer = FinalizerChange::kAdd;
  return result;
}

// What a PoolWriter writes against: the fake API server's client, and the pool with `pods`.
struct WriterInputs {
  explicit WriterInputs(FakeTransport& transport, std::vector<json> pods = {})
      : client(transport), holdings(clock) {
    in.pool = kPool;
    in.pods = std::move(pods);
  }
  kube::Client client;
  FakeClock clock;
  HoldingsIndex holdings;
  PoolInputs in;
};

// Once a pod mounts them, the ConfigMap (whose config-hash the agents report loaded) waits for the
// userlist it covers; before any pod exists, nothing can see the gap and all go at once.
TEST(PoolWriter, AppliesTheOwnedObjectsAtOnceAndTheConfigMapLastOnlyOncePodsMountThem) {
  struct Case {
    const char* name;
    std::vector<json> pods;
    bool add_finalizer;
    std::vector<std::string> together;  // in flight at once, first (sorted)
    bool config_map_after;              // then the ConfigMap alone
  };
  const std::string pool_path = "/apis/poolkeeper.io/v1alpha1/namespaces/shop/connectionpools/app";
  const std::vector<Case> cases = {
      {"a pod mounts them", {Owned("Pod", "app-1")}, false, {kSecret, kService}, true},
      {"no pod yet", {}, false, {kConfigMap, kSecret, kService}, false},
      // The finalizer need only precede the pods (the owned objects go by their owner).
      {"a new pool", {}, true, {kConfigMap, kSecret, kService, pool_path}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeTransport transport;
    Rendezvous rendezvous;
    rendezvous.expected = static_cast<int>(c.together.size());
    for (const std::string& path : c.together) {
      transport.Queue("PATCH", path,
                      {.response = {.status = 200, .body = "{}"}, .before = rendezvous.Arrive()});
    }
    if (c.config_map_after) transport.Respond("PATCH", kConfigMap, 200);
    transport.RespondJson("POST", "/api/v1/namespaces/shop/pods", 201, Owned("Pod", "app-0"));
    transport.Respond(
        "PATCH", "/apis/poolkeeper.io/v1alpha1/namespaces/shop/connectionpools/app/status", 200);
    WriterInputs w(transport, c.pods);
    TaskPool helpers;
    ASSERT_TRUE(helpers.Start(3));
    ASSERT_TRUE(PoolWriter(w.client, w.holdings, {.helpers = &helpers})
                    .Write(w.in, ThreeObjectsAPodAndAStatus(c.add_finalizer)));
    EXPECT_EQ(rendezvous.most, rendezvous.expected) << "these were in flight together";
    const auto requests = transport.Requests();
    const size_t before_pod = c.together.size() + (c.config_map_after ? 1 : 0);
    ASSERT_EQ(requests.size(), before_pod + 2) << "the same requests as one after another";
    auto path_of = [&](size_t i) { return requests[i].path.substr(0, requests[i].path.find('?')); };
    std::vector<std::string> first;
    for (size_t i = 0; i < c.together.size(); ++i) first.push_back(path_of(i));
    std::ranges::sort(first);
    EXPECT_EQ(first, c.together);
    if (c.config_map_after) {
      EXPECT_EQ(path_of(2), kConfigMap)
          << "the ConfigMap's config-hash is published only once the userlist it covers is written";
    }
    EXPECT_EQ(requests[before_pod].method, "POST")
        << "the pod only once its ConfigMap, its Secret and the finalizer exist";
    EXPECT_TRUE(requests[before_pod + 1].path.ends_with("/status"));
  }
}

// A failed write ends the pass before any pod and the status: a Secret refused (the ConfigMap's
// config-hash must not land without the userlist it covers), or a pool deleted before its finalizer
// was added (it had none: no pod yet), whose pod nothing would hold its deletion for.
TEST(PoolWriter, AFailedWriteStopsBeforeThePodsAndTheStatus) {
  struct Case {
    const char* name;
    std::string failing_path;
    int status;
    bool add_finalizer;
    std::vector<json> pods;
    ErrorCode code;
    std::string named;  // in the error's message
  };
  const std::string pool_path = "/apis/poolkeeper.io/v1alpha1/namespaces/shop/connectionpools/app";
  const std::vector<Case> cases = {
      {"a Secret refused",
       kSecret,
       422,
       false,
       {Owned("Pod", "app-1")},
       ErrorCode::kInvalid,
       "secrets/app-auth"},
      {"the pool gone before its finalizer",
       pool_path,
       404,
       true,
       {},
       ErrorCode::kNotFound,
       "connectionpools/app"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeTransport transport;
    for (const std::string& path :
         {std::string(kConfigMap), std::string(kSecret), std::string(kService), pool_path}) {
      if (path == c.failing_path) {
        transport.Respond("PATCH", path, c.status, kube::testing::StatusBody(c.status, "No"));
      } else {
        transport.Respond("PATCH", path, 200);
      }
    }
    WriterInputs w(transport, c.pods);
    auto written =
        PoolWriter(w.client, w.holdings).Write(w.in, ThreeObjectsAPodAndAStatus(c.add_finalizer));
    ASSERT_FALSE(written);
    EXPECT_EQ(written.error().code, c.code);
    EXPECT_NE(written.error().message.find(c.named), std::string::npos) << written.error().message;
    for (const auto& request : transport.Requests()) {
      EXPECT_EQ(request.method, "PATCH") << "no pod: " << request.path;
      EXPECT_FALSE(request.path.ends_with("/status"));
      if (!c.pods.empty()) {
        EXPECT_FALSE(request.path.starts_with(kConfigMap)) << "no config-hash without its userlist";
      }
    }
  }
}

// Only a pass that can raise what the server holds waits for the other plans of its budget.
TEST(PoolWriter, OnlyPassesThatCanRaiseWhatTheServerHoldsNeedTheBudgetLock) {
  struct Case {
    const char* name;
    std::vector<json> pods;  // the pool's pods before the pass
    std::vector<json> apply;
    std::vector<json> create_pods;
    std::vector<ReconcileResult::PodFigure> pod_figures;
    bool delete_pods;
    bool status;
    bool needs_lock;
  };
  const json config_map = Owned("ConfigMap", "app-config");
  const json secret = Owned("Secret", "app-auth");
  const json pod = Owned("Pod", "app-1");
  const std::vector<Case> cases = {
      {"a status alone", {pod}, {}, {}, {}, false, true, false},
      {"a new pool's objects, no pod", {}, {config_map, secret}, {}, {}, false, true, false},
      {"pods removed", {pod}, {}, {}, {}, true, true, false},
      {"a userlist under running pods", {pod}, {secret}, {}, {}, false, false, false},
      {"a pod made", {}, {config_map}, {Owned("Pod", "app-0")}, {}, false, true, true},
      {"the admitted configuration under running pods",
       {pod},
       {config_map},
       {},
       {},
       false,
       false,
       true},
      {"a pod's connection figure", {pod}, {}, {}, {{.name = "app-1"}}, false, false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    PoolInputs in;
    in.pool = kPool;
    in.pods = c.pods;
    ReconcileResult result;
    result.apply = c.apply;
    result.create_pods = c.create_pods;
    result.pod_figures = c.pod_figures;
    if (c.delete_pods) result.delete_pods = {{.name = "app-1"}};
    if (c.status) result.status = json{{"phase", "Pending"}};
    EXPECT_EQ(NeedsBudgetLock(in, result), c.needs_lock);
  }
}

TEST(PoolWriter, ChecksTheNamesOfNewObjectsAtOnceAndMergesWhatItFound) {
  FakeTransport transport;
  Rendezvous rendezvous;
  json ours = Owned("ConfigMap", "app-config");
  ours["metadata"]["ownerReferences"] = {
      {{"kind", "ConnectionPool"}, {"name", "app"}, {"uid", "u-1"}}};
  json theirs = Owned("Secret", "app-auth");
  transport.Queue(
      "GET", kConfigMap,
      {.response = {.status = 200, .body = ours.dump()}, .before = rendezvous.Arrive()});
  transport.Queue(
      "GET", kSecret,
      {.response = {.status = 200, .body = theirs.dump()}, .before = rendezvous.Arrive()});
  transport.Queue("GET", kService,
                  {.response = {.status = 404, .body = kube::testing::StatusBody(404, "NotFound")},
                   .before = rendezvous.Arrive()});
  kube::Client client(transport);
  FakeClock clock;
  HoldingsIndex holdings(clock);
  PoolInputs in;
  in.pool = kPool;

  TaskPool helpers;
  ASSERT_TRUE(helpers.Start(2));
  auto changed = PoolWriter(client, holdings, {.helpers = &helpers})
                     .CheckNamesFree(in, ThreeObjectsAPodAndAStatus());
  ASSERT_TRUE(changed);
  EXPECT_TRUE(*changed);
  EXPECT_EQ(rendezvous.most, 3);
  EXPECT_EQ(transport.Requests().size(), 3u);
  EXPECT_EQ(in.owned.at("ConfigMap"), ours) << "our own, the cache was behind";
  EXPECT_NE(in.conflicts.at("Secret").find("not owned by this ConnectionPool"), std::string::npos);
  EXPECT_FALSE(in.owned.contains("Service") || in.conflicts.contains("Service")) << "free";
}

json List(std::vector<json> items) {
  return {{"kind", "List"},
          {"apiVersion", "v1"},
          {"metadata", {{"resourceVersion", "10"}}},
          {"items", std::move(items)}};
}

// Issue 14: the GETs were 3 of a new pool's 10 requests. With the foreign names listed, a free
// name costs nothing and a taken one is a conflict without a request; a kind whose cache has not
// listed is still checked with a GET.
TEST(PoolWriter, LooksNewNamesUpInTheForeignNamesAndGetsOnlyWhatTheyCannotAnswer) {
  FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  ForeignNames foreign(client, clock, std::chrono::seconds(60), {});
  json theirs = Owned("Secret", "app-auth");
  theirs["metadata"]["ownerReferences"] = {{{"kind", "Deployment"}, {"name", "x"}, {"uid", "d"}}};
  // An object this pool owns that lost its label: brought whole by a GET.
  json ours = Owned("ConfigMap", "app-config");
  ours["metadata"]["ownerReferences"] = {
      {{"kind", "ConnectionPool"}, {"name", "app"}, {"uid", "u-1"}}};
  transport.RespondJson("GET", "/api/v1/secrets", 200, List({theirs}));
  transport.RespondJson("GET", "/api/v1/configmaps", 200, List({ours}));
  foreign.Step();  // services are not scripted: their cache has not listed
  const size_t lists = transport.Requests().size();
  transport.RespondJson("GET", kConfigMap, 200, ours);
  transport.Respond("GET", kService, 404, kube::testing::StatusBody(404, "NotFound"));
  HoldingsIndex holdings(clock);
  PoolInputs in;
  in.pool = kPool;

  auto changed = PoolWriter(client, holdings, {.foreign = &foreign})
                     .CheckNamesFree(in, ThreeObjectsAPodAndAStatus());
  ASSERT_TRUE(changed);
  EXPECT_TRUE(*changed);
  std::vector<std::string> gets;
  const auto requests = transport.Requests();
  for (size_t i = lists; i < requests.size(); ++i) gets.push_back(requests[i].path);
  std::ranges::sort(gets);
  EXPECT_EQ(gets, (std::vector<std::string>{kConfigMap, kService}))
      << "no GET of the Secret: its cache has listed";
  EXPECT_NE(in.conflicts.at("Secret").find("owned by Deployment x"), std::string::npos)
      << in.conflicts.at("Secret");
  EXPECT_EQ(in.owned.at("ConfigMap"), ours);
  EXPECT_FALSE(in.owned.contains("Service") || in.conflicts.contains("Service"));
}

TEST(PoolWriter, FreeNamesInListedCachesCostNoRequest) {
  FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  ForeignNames foreign(client, clock, std::chrono::seconds(60), {});
  for (const char* path : {"/api/v1/configmaps", "/api/v1/secrets", "/api/v1/services",
                           "/apis/policy/v1/poddisruptionbudgets"}) {
    transport.RespondJson("GET", path, 200, List({Owned("ConfigMap", "someone-else")}));
  }
  foreign.Step();
  ASSERT_TRUE(foreign.HasSynced());
  const size_t lists = transport.Requests().size();
  HoldingsIndex holdings(clock);
  PoolInputs in;
  in.pool = kPool;

  auto changed = PoolWriter(client, holdings, {.foreign = &foreign})
                     .CheckNamesFree(in, ThreeObjectsAPodAndAStatus());
  ASSERT_TRUE(changed);
  EXPECT_FALSE(*changed);
  EXPECT_EQ(transport.Requests().size(), lists) << "no request";
  EXPECT_TRUE(in.conflicts.empty());
}

}  // namespace
}  // namespace poolkeeper::controller
