// The PostgresServers' CA Secrets as pools read them: by name, only ca.crt kept (never the
// issuer's private key), one read for the pools of a server within the TTL, read again after it.
#include "controller/server_ca_secrets.h"

#include <gtest/gtest.h>

#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::FakeTransport;
using nlohmann::json;

constexpr char kPath[] = "/api/v1/namespaces/ops/secrets/db-ca";

json CaSecret(const std::string& pem) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "db-ca"}, {"namespace", "ops"}, {"resourceVersion", "3"}}},
          {"stringData", {{"ca.crt", pem}, {"tls.crt", "ISSUER-CERT"}, {"tls.key", "ISSUER-KEY"}}}};
}

size_t Reads(const FakeTransport& transport) {
  size_t count = 0;
  for (const auto& request : transport.Requests()) count += request.path == kPath ? 1 : 0;
  return count;
}

TEST(ServerCaSecrets, KeepsOnlyTheCertificateAndReadsOncePerTtl) {
  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  ServerCaSecrets cas(client, clock, std::chrono::seconds(10));
  transport.RespondJson("GET", kPath, 200, CaSecret("CA-1"));
  for (int pool = 0; pool < 5; ++pool) {
    auto found = cas.Find("ops", "db-ca");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->data, (std::map<std::string, std::string>{{"ca.crt", "CA-1"}}))
        << "the issuer's key and certificate are dropped";
  }
  EXPECT_EQ(Reads(transport), 1u) << "the pools of one server, one read";

  transport.RespondJson("GET", kPath, 200, CaSecret("CA-2"));
  clock.Advance(std::chrono::seconds(9));
  EXPECT_EQ(cas.Find("ops", "db-ca")->data.at("ca.crt"), "CA-1");
  clock.Advance(std::chrono::seconds(1));
  EXPECT_EQ(cas.Find("ops", "db-ca")->data.at("ca.crt"), "CA-2") << "read again after the TTL";
  EXPECT_EQ(Reads(transport), 2u);
}

TEST(ServerCaSecrets, AMissingSecretIsNotFound) {
  FakeTransport transport;
  FakeClock clock;
  kube::Client client{transport};
  ServerCaSecrets cas(client, clock, std::chrono::seconds(10));
  transport.Respond("GET", kPath, 404, kube::testing::StatusBody(404, "NotFound"));
  EXPECT_FALSE(cas.Find("ops", "db-ca"));
}

}  // namespace
}  // namespace poolkeeper::controller
