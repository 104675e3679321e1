// Manifest files as the CLI reads them: the kinds it plans, the kinds it skips, and every problem
// of every document reported at once with where it is.
#include "manifests/manifests.h"

#include <gtest/gtest.h>

namespace poolkeeper::manifests {
namespace {

constexpr char kPool[] = R"(
apiVersion: poolkeeper.io/v1alpha1
kind: ConnectionPool
metadata: {name: orders, namespace: shop}
spec:
  server: {host: db.shop.svc, maxConnections: 100}
  pooler: {instances: 1, pgbouncerVersion: "1.18", image: registry.example/pgbouncer:1.18.0}
  databases: [{name: orders}]
  users: [{name: app, passwordSecretRef: {name: app-creds}}]
)";

constexpr char kSecretAndOthers[] = R"(
apiVersion: v1
kind: Secret
metadata: {name: app-creds, namespace: shop}
stringData: {password: pw}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {anything: goes}
)";

// Found by the fuzz target render: a kind, apiVersion, name or namespace that is not a string threw
// nlohmann's type_error out of LoadManifests and ended `poolkeeper check`.
TEST(LoadManifests, TakesIdentityFieldsThatAreNotStringsAsUnknownInsteadOfThrowing) {
  for (std::string text :
       {"kind: ~\n", "kind: [1]\napiVersion: 2\n", "kind: Secret\napiVersion: {}\n",
        "kind: ConnectionPool\nmetadata: {name: 1, namespace: [x]}\n"}) {
    auto loaded = LoadManifests({{"odd.yaml", text}});
    if (loaded) {
      EXPECT_TRUE(loaded->pools.empty()) << text;
    }
  }
}

TEST(LoadManifests, ReadsPoolsAndSecretsAcrossFilesAndSkipsOtherKinds) {
  auto loaded = LoadManifests({{"pool.yaml", kPool}, {"rest.yaml", kSecretAndOthers}});
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_EQ(loaded->pools.size(), 1u);
  EXPECT_EQ(loaded->pools[0].metadata.name, "orders");
  auto secret = loaded->secrets.Find("shop", "app-creds");
  ASSERT_TRUE(secret);
  EXPECT_EQ(secret->data.at("password"), "pw");
  EXPECT_TRUE(loaded->servers.empty());
}

TEST(LoadManifests, ReportsEveryProblemWithItsFileAndDocument) {
  const std::string bad_pool = std::string(kPool) + "  budget: {policy: Sometimes}\n";
  auto loaded =
      LoadManifests({{"a.yaml", bad_pool + "---\n" + kPool}, {"b.yaml", "kind: [unclosed"}});
  ASSERT_FALSE(loaded);
  const std::string& message = loaded.error().message;
  EXPECT_NE(message.find("a.yaml document 1 (ConnectionPool shop/orders) spec.budget.policy"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("b.yaml"), std::string::npos) << message;
}

TEST(LoadManifests, RefusesTheSamePoolTwice) {
  auto loaded = LoadManifests({{"a.yaml", kPool}, {"b.yaml", kPool}});
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("b.yaml document 1 (ConnectionPool shop/orders)"),
            std::string::npos)
      << loaded.error().message;
}

}  // namespace
}  // namespace poolkeeper::manifests
