// The label-selected Secret cache on a scripted API server: one LIST and one WATCH with the
// label selector per namespace (or for the cluster), whatever the number of Secrets; what a
// reconcile reads through it; a label added or removed; and the metadata-only look-up that tells
// an unlabelled Secret from a missing one without reading its data.
#include "controller/exposed_secrets.h"

#include <gtest/gtest.h>

#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::Event;
using kube::testing::FakeTransport;
using nlohmann::json;

constexpr char kSelector[] = "labelSelector=poolkeeper.io%2Fexpose-to-pools%3Dtrue";
constexpr char kAllSecrets[] = "/api/v1/secrets";

json Secret(const std::string& ns, const std::string& name, const std::string& version,
            const std::string& password, bool labelled = true) {
  json labels = json::object();
  if (labelled) labels["poolkeeper.io/expose-to-pools"] = "true";
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata",
           {{"name", name}, {"namespace", ns}, {"resourceVersion", version}, {"labels", labels}}},
          {"stringData", {{"password", password}}}};
}

json List(std::vector<json> items) {
  return {{"kind", "SecretList"},
          {"apiVersion", "v1"},
          {"metadata", {{"resourceVersion", "10"}}},
          {"items", std::move(items)}};
}

// A LIST or WATCH of `path` with the label selector, whatever its other parameters.
std::string Selected(const std::string& path) { return path + "?*" + kSelector; }

size_t CountRequests(const FakeTransport& transport, const std::string& part) {
  size_t count = 0;
  for (const auto& request : transport.Requests()) {
    if (request.path.find(part) != std::string::npos) ++count;
  }
  return count;
}

struct ExposedSecretsTest : ::testing::Test {
  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  std::vector<std::string> changes;
  ExposedSecrets secrets{
      client, clock, std::chrono::seconds(60), {}, [this](const std::string& key) {
        changes.push_back(key);
      }};
};

// Issue 12: one watch per referenced Secret made 1,100 pools 1,152 threads. However many Secrets,
// the cache is one LIST and one WATCH, both with the label selector, and never by name.
TEST_F(ExposedSecretsTest, OneListAndOneWatchWithTheLabelSelectorForEverySecret) {
  std::vector<json> listed;
  std::vector<json> events;
  for (int i = 0; i < 60; ++i) {
    listed.push_back(Secret("ns" + std::to_string(i % 7), "s" + std::to_string(i), "5", "p"));
    events.push_back(Event(
        "MODIFIED", Secret("ns" + std::to_string(i % 7), "s" + std::to_string(i), "11", "q")));
  }
  EXPECT_FALSE(secrets.HasSynced());
  transport.RespondJson("GET", Selected(kAllSecrets), 200, List(listed));
  secrets.Step();
  EXPECT_TRUE(secrets.HasSynced());
  transport.QueueWatch(Selected(kAllSecrets), events);
  secrets.Step();

  ASSERT_EQ(transport.Requests().size(), 2u) << "one LIST, one WATCH";
  for (const auto& request : transport.Requests()) {
    EXPECT_TRUE(request.path.starts_with(kAllSecrets)) << request.path;
    EXPECT_NE(request.path.find(kSelector), std::string::npos) << request.path;
    EXPECT_EQ(request.path.find("fieldSelector"), std::string::npos) << request.path;
  }
  EXPECT_EQ(secrets.informers().informers().size(), 1u);
  EXPECT_EQ(secrets.Size(), 60u);
  EXPECT_EQ(changes.size(), 120u) << "each Secret listed, then changed";
  EXPECT_EQ(secrets.Find("ns3", "s10")->data.at("password"), "q");
}

TEST(ExposedSecrets, OneInformerPerWatchedNamespace) {
  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  ExposedSecrets secrets{client, clock, std::chrono::seconds(60), {"shop", "ops", "shop"}, nullptr};
  ASSERT_EQ(secrets.informers().informers().size(), 2u);
  transport.RespondJson("GET", Selected("/api/v1/namespaces/shop/secrets"), 200,
                        List({Secret("shop", "app-db", "7", "a")}));
  secrets.Step();  // ops' LIST is not scripted: it fails
  EXPECT_FALSE(secrets.HasSynced()) << "ops has not listed";
  transport.RespondJson("GET", Selected("/api/v1/namespaces/ops/secrets"), 200, List({}));
  secrets.Step();
  EXPECT_TRUE(secrets.HasSynced());
  EXPECT_EQ(secrets.Find("shop", "app-db")->data.at("password"), "a");
  for (const auto& request : transport.Requests()) {
    EXPECT_TRUE(request.path.starts_with("/api/v1/namespaces/shop/secrets?") ||
                request.path.starts_with("/api/v1/namespaces/ops/secrets?"))
        << "nothing outside the watched namespaces: " << request.path;
    EXPECT_NE(request.path.find(kSelector), std::string::npos) << request.path;
  }
  EXPECT_EQ(CountRequests(transport, "/namespaces/shop/secrets?"), 2u) << "shop: LIST, WATCH";
}

TEST_F(ExposedSecretsTest, ALabelAddedOrRemovedIsAnAddOrADeleteForThePools) {
  transport.RespondJson("GET", Selected(kAllSecrets), 200, List({}));
  secrets.Step();
  // The API server reports an object entering a label selection as ADDED, leaving it as DELETED.
  transport.QueueWatch(Selected(kAllSecrets),
                       {Event("ADDED", Secret("shop", "app-db", "11", "a"))});
  secrets.Step();
  EXPECT_EQ(changes, (std::vector<std::string>{"shop/app-db"}));
  EXPECT_EQ(secrets.Find("shop", "app-db")->data.at("password"), "a");
  transport.QueueWatch(Selected(kAllSecrets),
                       {Event("DELETED", Secret("shop", "app-db", "12", "a", false))});
  secrets.Step();
  EXPECT_EQ(changes.size(), 2u);
  // The Secret still exists, unlabelled: Find says so from its metadata, without its data.
  transport.RespondJson("GET", "/api/v1/namespaces/shop/secrets/app-db", 200,
                        {{"kind", "PartialObjectMetadata"},
                         {"apiVersion", "meta.k8s.io/v1"},
                         {"metadata", {{"name", "app-db"}, {"namespace", "shop"}}}});
  auto found = secrets.Find("shop", "app-db");
  ASSERT_TRUE(found);
  EXPECT_FALSE(secrets::Exposed(*found));
  EXPECT_TRUE(found->data.empty());
}

TEST_F(ExposedSecretsTest, AnUnlabelledSecretIsAskedForItsMetadataOnly) {
  transport.RespondJson("GET", Selected(kAllSecrets), 200, List({}));
  secrets.Step();
  // A server that sent the whole object anyway: its data is dropped all the same.
  transport.RespondJson("GET", "/api/v1/namespaces/shop/secrets/api-key", 200,
                        Secret("shop", "api-key", "3", "payments-key", false));
  auto found = secrets.Find("shop", "api-key");
  ASSERT_TRUE(found);
  EXPECT_FALSE(secrets::Exposed(*found));
  EXPECT_TRUE(found->data.empty()) << "the value of an unlabelled Secret is never kept";
  const kube::HttpRequest request = transport.LastRequest();
  EXPECT_EQ(request.accept, "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
}

TEST_F(ExposedSecretsTest, AMissingSecretIsNotFound) {
  transport.RespondJson("GET", Selected(kAllSecrets), 200, List({}));
  secrets.Step();
  transport.Respond("GET", "/api/v1/namespaces/shop/secrets/app-db", 404,
                    kube::testing::StatusBody(404, "NotFound"));
  EXPECT_FALSE(secrets.Find("shop", "app-db"));
}

TEST_F(ExposedSecretsTest, RelistsCountOnlyTheListsAfterTheFirst) {
  transport.RespondJson("GET", Selected(kAllSecrets), 200, List({}));
  secrets.Step();
  EXPECT_EQ(secrets.Relists(), 0u);
  transport.Respond("GET", std::string(kAllSecrets) + "?*watch=true", 410,
                    kube::testing::StatusBody(410, "Expired"));
  secrets.Step();  // the watch expired: the next attempt lists again
  clock.Advance(std::chrono::seconds(1));
  transport.RespondJson("GET", Selected(kAllSecrets), 200, List({}));
  secrets.Step();
  EXPECT_EQ(secrets.Relists(), 1u);
}

// The ConfigMaps pools may read (a server CA) are the same cache over another type: one LIST and
// one WATCH with the label, data taken as text, and a change reported by key.
TEST(ExposedConfigMaps, OneLabelSelectedWatchDataAsText) {
  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  std::vector<std::string> changes;
  ExposedSecrets config_maps{client,
                             clock,
                             std::chrono::seconds(60),
                             {},
                             [&](const std::string& key) { changes.push_back(key); },
                             kube::resources::kConfigMap};
  auto map = [](const std::string& version, const std::string& pem) {
    return json{{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata",
                 {{"name", "db-ca"},
                  {"namespace", "shop"},
                  {"resourceVersion", version},
                  {"labels", {{"poolkeeper.io/expose-to-pools", "true"}}}}},
                {"data", {{"ca.crt", pem}}}};
  };
  constexpr char kAllMaps[] = "/api/v1/configmaps";
  transport.RespondJson("GET", Selected(kAllMaps), 200, List({map("5", "CA-1")}));
  config_maps.Step();
  EXPECT_TRUE(config_maps.HasSynced());
  EXPECT_EQ(config_maps.Find("shop", "db-ca")->data.at("ca.crt"), "CA-1");
  transport.QueueWatch(Selected(kAllMaps), {Event("MODIFIED", map("6", "CA-2"))});
  config_maps.Step();
  EXPECT_EQ(changes, (std::vector<std::string>{"shop/db-ca", "shop/db-ca"}));
  EXPECT_EQ(config_maps.Find("shop", "db-ca")->data.at("ca.crt"), "CA-2");
  for (const auto& request : transport.Requests()) {
    EXPECT_TRUE(request.path.starts_with(kAllMaps)) << request.path;
    EXPECT_NE(request.path.find(kSelector), std::string::npos) << request.path;
  }
  // An unlabelled one is asked for as metadata of a ConfigMap.
  transport.RespondJson("GET", "/api/v1/namespaces/shop/configmaps/plain", 200,
                        {{"kind", "PartialObjectMetadata"},
                         {"apiVersion", "meta.k8s.io/v1"},
                         {"metadata", {{"name", "plain"}, {"namespace", "shop"}}}});
  auto plain = config_maps.Find("shop", "plain");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(secrets::Exposed(*plain));
}

}  // namespace
}  // namespace poolkeeper::controller
