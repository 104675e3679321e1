// The PostgresServers' CA Secrets watched on a scripted API server: one field-selected LIST and
// WATCH per named Secret in its own namespace, a change reported by key, nothing of the Secret's
// data kept (a CA issuer's Secret holds its private key), and watches following the servers.
#include "controller/server_ca_watch.h"

#include <gtest/gtest.h>

#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::Event;
using kube::testing::FakeTransport;
using nlohmann::json;

constexpr char kCaSecrets[] = "/api/v1/namespaces/ops/secrets?*fieldSelector=metadata.name%3Ddb-ca";

json CaSecret(const std::string& version, const std::string& ca) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "db-ca"}, {"namespace", "ops"}, {"resourceVersion", version}}},
          {"data", {{"ca.crt", ca}, {"tls.key", "c2VjcmV0LWtleQ=="}}}};
}

json List(std::vector<json> items) {
  return {{"kind", "SecretList"},
          {"apiVersion", "v1"},
          {"metadata", {{"resourceVersion", "10"}}},
          {"items", std::move(items)}};
}

api::PostgresServer WithCa(const std::string& name, const std::string& ns,
                           const std::string& secret) {
  api::PostgresServer server;
  server.name = name;
  server.spec.ca_secret_ref = api::NamespacedSecretRef{ns, secret};
  return server;
}

struct ServerCaWatchTest : ::testing::Test {
  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  std::vector<std::string> changes;
  ServerCaWatch watch{client, clock, std::chrono::seconds(60),
                      [this](const std::string& key) { changes.push_back(key); }};
};

TEST(ServerCaSecretKeys, EveryNamedSecretOnce) {
  api::PostgresServer plain;
  plain.name = "plain";
  EXPECT_EQ(ServerCaSecretKeys({WithCa("a", "ops", "db-ca"), WithCa("b", "ops", "db-ca"),
                                WithCa("c", "dba", "other-ca"), plain}),
            (std::set<std::string>{"dba/other-ca", "ops/db-ca"}));
}

TEST_F(ServerCaWatchTest, AChangeIsReportedByKeyAndNoDataIsKept) {
  watch.Track({"ops/db-ca"});
  transport.RespondJson("GET", kCaSecrets, 200, List({CaSecret("5", "b2xk")}));
  watch.Step();
  EXPECT_EQ(changes, std::vector<std::string>{"ops/db-ca"});  // first listed
  transport.QueueWatch(kCaSecrets, {Event("MODIFIED", CaSecret("11", "bmV3")),
                                    Event("DELETED", CaSecret("12", "bmV3"))});
  watch.Step();
  EXPECT_EQ(changes, (std::vector<std::string>{"ops/db-ca", "ops/db-ca", "ops/db-ca"}));

  ASSERT_EQ(transport.Requests().size(), 2u) << "one LIST, one WATCH, of that Secret only";
  for (const auto& request : transport.Requests()) {
    EXPECT_TRUE(request.path.starts_with("/api/v1/namespaces/ops/secrets?")) << request.path;
    EXPECT_NE(request.path.find("fieldSelector=metadata.name%3Ddb-ca"), std::string::npos)
        << request.path;
    EXPECT_TRUE(request.accept.starts_with("application/json;as=PartialObjectMetadata"))
        << "the API server sends the Secret's metadata only: " << request.accept;
  }
}

// What the watches' caches keep of a Secret (their trim): its identity and version only.
TEST(KeepSecretIdentity, DropsTheDataTheCertificateAndTheKey) {
  json secret = CaSecret("5", "b2xk");
  secret["metadata"]["annotations"] = {{"cert-manager.io/issuer-name", "ca"}};
  secret["stringData"] = {{"x", "y"}};
  KeepSecretIdentity(secret);
  EXPECT_EQ(secret, json::parse(R"({"metadata":{"name":"db-ca","namespace":"ops",
      "resourceVersion":"5"}})"));
}

TEST_F(ServerCaWatchTest, WatchesFollowTheServersThatNameTheSecrets) {
  watch.Track({"ops/db-ca", "dba/other-ca"});
  EXPECT_EQ(watch.Watched(), (std::set<std::string>{"dba/other-ca", "ops/db-ca"}));
  watch.Track({"dba/other-ca"});  // the server that named ops/db-ca is gone or changed
  EXPECT_EQ(watch.Watched(), std::set<std::string>{"dba/other-ca"});
  watch.Track({});
  EXPECT_TRUE(watch.Watched().empty());
  EXPECT_TRUE(transport.Requests().empty()) << "nothing runs before Start or Step";
}

}  // namespace
}  // namespace poolkeeper::controller
