// The write side of a reconcile (pool_writer.h): the owned objects are applied at once, all before
// any pod, with the same requests as one after another; the first-write GETs likewise.
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

ReconcileResult ThreeObjectsAPodAndAStatus() {
  ReconcileResult result;
  result.apply = {Owned("ConfigMap", "app-config"), Owned("Secret", "app-auth"),
                  Owned("Service", "app")};
  result.create_pods = {Owned("Pod", "app-0")};
  result.status = json{{"phase", "Pending"}};
  return result;
}

TEST(PoolWriter, AppliesTheOwnedObjectsAtOnceAndAllBeforeAnyPod) {
  FakeTransport transport;
  Rendezvous rendezvous;
  for (const char* path : {kConfigMap, kSecret, kService}) {
    transport.Queue("PATCH", path,
                    {.response = {.status = 200, .body = "{}"}, .before = rendezvous.Arrive()});
  }
  transport.RespondJson("POST", "/api/v1/namespaces/shop/pods", 201, Owned("Pod", "app-0"));
  transport.Respond("PATCH",
                    "/apis/poolkeeper.io/v1alpha1/namespaces/shop/connectionpools/app/status", 200);
  kube::Client client(transport);
  FakeClock clock;
  HoldingsIndex holdings(clock);
  PoolInputs in;
  in.pool = kPool;

  ASSERT_TRUE(PoolWriter(client, holdings).Write(in, ThreeObjectsAPodAndAStatus()));
  EXPECT_EQ(rendezvous.most, 3) << "the three applies were in flight together";
  const auto requests = transport.Requests();
  ASSERT_EQ(requests.size(), 5u) << "the same requests as one after another";
  std::vector<std::string> first_three;
  for (size_t i = 0; i < 3; ++i) {
    first_three.push_back(requests[i].path.substr(0, requests[i].path.find('?')));
  }
  std::ranges::sort(first_three);
  EXPECT_EQ(first_three, (std::vector<std::string>{kConfigMap, kSecret, kService}));
  EXPECT_EQ(requests[3].method, "POST") << "the pod only once its ConfigMap and Secret exist";
  EXPECT_TRUE(requests[4].path.ends_with("/status"));
}

TEST(PoolWriter, AFailedApplyStopsBeforeThePodsAndReportsTheFailure) {
  FakeTransport transport;
  transport.Respond("PATCH", kConfigMap, 200);
  transport.Respond("PATCH", kSecret, 422, kube::testing::StatusBody(422, "Invalid"));
  transport.Respond("PATCH", kService, 200);
  kube::Client client(transport);
  FakeClock clock;
  HoldingsIndex holdings(clock);
  PoolInputs in;
  in.pool = kPool;

  auto written = PoolWriter(client, holdings).Write(in, ThreeObjectsAPodAndAStatus());
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().message.find("secrets/app-auth"), std::string::npos)
      << written.error().message;
  for (const auto& request : transport.Requests()) {
    EXPECT_EQ(request.method, "PATCH") << "no pod, no status: " << request.path;
    EXPECT_FALSE(request.path.ends_with("/status"));
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

  auto changed = PoolWriter(client, holdings).CheckNamesFree(in, ThreeObjectsAPodAndAStatus());
  ASSERT_TRUE(changed);
  EXPECT_TRUE(*changed);
  EXPECT_EQ(rendezvous.most, 3);
  EXPECT_EQ(transport.Requests().size(), 3u);
  EXPECT_EQ(in.owned.at("ConfigMap"), ours) << "our own, the cache was behind";
  EXPECT_NE(in.conflicts.at("Secret").find("not owned by this ConnectionPool"), std::string::npos);
  EXPECT_FALSE(in.owned.contains("Service") || in.conflicts.contains("Service")) << "free";
}

}  // namespace
}  // namespace poolkeeper::controller
