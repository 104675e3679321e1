// The password Secret watches on a scripted API server: one name-selected watch per referenced
// Secret, what a reconcile reads through them, which changes they report, and that a Secret no
// pool references any more is forgotten.
#include "controller/secret_watches.h"

#include <gtest/gtest.h>

#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::Event;
using kube::testing::FakeTransport;
using nlohmann::json;

constexpr char kShopSecrets[] = "/api/v1/namespaces/shop/secrets";
constexpr char kOpsSecrets[] = "/api/v1/namespaces/ops/secrets";

json Secret(const std::string& ns, const std::string& name, const std::string& version,
            const std::string& password) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"resourceVersion", version}}},
          {"stringData", {{"password", password}}}};
}

json List(std::vector<json> items) {
  return {{"kind", "SecretList"},
          {"apiVersion", "v1"},
          {"metadata", {{"resourceVersion", "10"}}},
          {"items", std::move(items)}};
}

struct SecretWatchesTest : ::testing::Test {
  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  std::vector<std::string> changes;
  SecretWatches watches{client, clock, std::chrono::seconds(60),
                        [this](const std::string& key) { changes.push_back(key); }};
};

TEST_F(SecretWatchesTest, ListsEachReferencedSecretByNameAndReadsItsData) {
  watches.Watch({"shop/app-db"});
  EXPECT_FALSE(watches.Synced({"shop/app-db"})) << "not listed yet: missing says nothing";
  transport.RespondJson("GET", kShopSecrets, 200, List({Secret("shop", "app-db", "7", "s3cret")}));
  watches.Step();
  EXPECT_TRUE(watches.Synced({"shop/app-db"}));
  EXPECT_NE(transport.LastRequest().path.find("fieldSelector=metadata.name%3Dapp-db"),
            std::string::npos)
      << transport.LastRequest().path;
  auto secret = watches.Find("shop", "app-db");
  ASSERT_TRUE(secret);
  EXPECT_EQ(secret->data.at("password"), "s3cret");
  EXPECT_EQ(secret->resource_version, "7");
  EXPECT_EQ(changes, std::vector<std::string>{"shop/app-db"});
}

TEST_F(SecretWatchesTest, AMissingSecretIsSyncedAndNotFound) {
  watches.Watch({"shop/app-db"});
  transport.RespondJson("GET", kShopSecrets, 200, List({}));
  watches.Step();
  EXPECT_TRUE(watches.Synced({"shop/app-db"}));
  EXPECT_FALSE(watches.Find("shop", "app-db"));
  EXPECT_FALSE(watches.Synced({"shop/app-db", "shop/other"})) << "other is not watched";
}

TEST_F(SecretWatchesTest, ReportsEveryChangeOfAWatchedSecret) {
  watches.Watch({"shop/app-db"});
  transport.RespondJson("GET", kShopSecrets, 200, List({}));
  watches.Step();
  transport.QueueWatch(kShopSecrets, {Event("ADDED", Secret("shop", "app-db", "11", "one")),
                                      Event("MODIFIED", Secret("shop", "app-db", "12", "two"))});
  watches.Step();
  EXPECT_EQ(changes, (std::vector<std::string>{"shop/app-db", "shop/app-db"}));
  EXPECT_EQ(watches.Find("shop", "app-db")->data.at("password"), "two");
  transport.QueueWatch(kShopSecrets, {Event("DELETED", Secret("shop", "app-db", "13", "two"))});
  watches.Step();
  EXPECT_EQ(changes.size(), 3u);
  EXPECT_FALSE(watches.Find("shop", "app-db"));
}

TEST_F(SecretWatchesTest, ForgetsASecretNoPoolReferencesAnyMore) {
  watches.Watch({"shop/app-db", "ops/admin"});
  transport.RespondJson("GET", kShopSecrets, 200, List({Secret("shop", "app-db", "7", "a")}));
  transport.RespondJson("GET", kOpsSecrets, 200, List({Secret("ops", "admin", "8", "b")}));
  watches.Step();
  ASSERT_TRUE(watches.Find("shop", "app-db"));
  watches.Watch({"ops/admin"});
  EXPECT_EQ(watches.Watched(), std::set<std::string>{"ops/admin"});
  EXPECT_FALSE(watches.Find("shop", "app-db"));
  EXPECT_FALSE(watches.Synced({"shop/app-db"}));
  EXPECT_TRUE(watches.Find("ops", "admin"));
}

}  // namespace
}  // namespace poolkeeper::controller
