// The admission webhook's decisions: an overrunning create or spec change is denied with the
// arithmetic, a server's refusal is passed on, and nothing unrelated (metadata-only updates,
// deletions) is ever blocked.
#include "controller/admission.h"

#include <gtest/gtest.h>

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

json PoolObject(const std::string& name, int pool_size, const std::string& policy = "Enforce") {
  return {{"apiVersion", "poolkeeper.io/v1alpha1"},
          {"kind", "ConnectionPool"},
          {"metadata", {{"name", name}, {"namespace", "shop"}}},
          {"spec",
           {{"server", {{"host", "db"}, {"maxConnections", 30}, {"overhead", 2}}},
            {"pooler", {{"instances", 1}, {"maxSurge", 1}, {"defaultPoolSize", pool_size}}},
            {"databases", {{{"name", "app"}, {"maxDbConnections", pool_size}}}},
            {"users", {{{"name", "app"}, {"passwordSecretRef", {{"name", "app-db"}}}}}},
            {"budget", {{"policy", policy}}}}}};
}

// 30 - 3 - 2 = 25 usable; "first" already holds (1 + 1) x 10 = 20 of it.
std::optional<std::string> Admit(const json& candidate, const api::PodPolicy& policy = {}) {
  const budget::ServerDirectory directory;
  auto first = api::ParseConnectionPool(PoolObject("first", 10));
  first->metadata.creation_timestamp = "2026-11-30T00:00:00Z";
  return AdmitPool(candidate, {}, policy, directory, [&](const api::ConnectionPool&) {
    return AdmissionInputs{{std::make_shared<const api::ConnectionPool>(*first)},
                           &directory,
                           {{"db:5432", {{"shop/first", 20}}}}};
  });
}

TEST(Admission, DeniesAnOverrunWithTheArithmetic) {
  auto denial = Admit(PoolObject("second", 5));  // (1 + 1) x 5 = 10 > 5 remaining
  ASSERT_TRUE(denial);
  EXPECT_NE(denial->find("ConnectionPool shop/second does not fit its server (db:5432)"),
            std::string::npos)
      << *denial;
  EXPECT_NE(denial->find("= 10 > 5 remaining of 25 usable"), std::string::npos) << *denial;
  EXPECT_FALSE(Admit(PoolObject("second", 2)));          // 4 fits
  EXPECT_FALSE(Admit(PoolObject("second", 5, "Warn")));  // the pool's own Warn, no server
}

TEST(Admission, PassesOnInvalidSpecsAndRefusals) {
  json bad = PoolObject("second", 2);
  bad["spec"]["pooler"]["poolMode"] = "Transaction";
  auto denial = Admit(bad);
  ASSERT_TRUE(denial);
  EXPECT_NE(denial->find("spec.pooler.poolMode"), std::string::npos);
  json liar = PoolObject("liar", 1);
  liar["spec"]["server"]["maxConnections"] = 31;
  denial = Admit(liar);
  ASSERT_TRUE(denial);
  EXPECT_NE(denial->find("ServerConflict"), std::string::npos);
}

// The reproduction of issue 12: a pool that would mount its users' passwords into an image of
// its author's choosing, or schedule onto the cluster's own nodes, is denied on create and update
// with the field and what the operator allows; it fits its budget, so nothing else would stop it.
TEST(Admission, DeniesWhatThePodPolicyRefuses) {
  struct Case {
    std::string field;
    json value;
    std::string expected;
  };
  for (const auto& c : std::vector<Case>{
           {"image", "attacker.example/anything:1.18",
            "ConnectionPool shop/second refused by the operator's pod policy: spec.pooler.image: "
            "\"attacker.example/anything:1.18\" is not an allowed image (the operator allows: "
            "ghcr.io/cloudnative-pg/pgbouncer, ghcr.io/cloudnative-pg/pgbouncer:1.24.1; "
            "--allowed-pooler-images)"},
           {"image", "ghcr.io/cloudnative-pg/pgbouncer-evil:1.24", "spec.pooler.image: "},
           {"tolerations", json::array({{{"operator", "Exists"}}}),
            "spec.pooler.tolerations[0]: tolerates every taint"},
           {"priorityClassName", "system-node-critical",
            "spec.pooler.priorityClassName: \"system-node-critical\" is a system priority class"},
       }) {
    json pool = PoolObject("second", 2);
    pool["spec"]["pooler"][c.field] = c.value;
    auto denial = Admit(pool);
    ASSERT_TRUE(denial) << c.field;
    EXPECT_NE(denial->find(c.expected), std::string::npos) << *denial;
    // The same request as an update of a pool that was allowed.
    json review = Review(json({{"request",
                                {{"uid", "u"},
                                 {"operation", "UPDATE"},
                                 {"object", pool},
                                 {"oldObject", PoolObject("second", 2)}}}})
                             .dump(),
                         [](const json& p) { return Admit(p); });
    EXPECT_EQ(review["response"]["allowed"], false) << c.field;
    // What the caches need not be synced for.
    EXPECT_EQ(PolicyDenial(pool, {}, {}), Admit(pool)) << c.field;
  }
  json allowed = PoolObject("second", 2);
  allowed["spec"]["pooler"]["image"] = "localhost/poolkeeper-test/pgbouncer:1.18.0";
  allowed["spec"]["pooler"]["pgbouncerVersion"] = "1.18";
  EXPECT_TRUE(Admit(allowed));
  auto policy = api::MakePodPolicy({"localhost/poolkeeper-test/*"}, {}, false, {});
  ASSERT_TRUE(policy);
  EXPECT_FALSE(Admit(allowed, *policy));
  EXPECT_FALSE(PolicyDenial(allowed, {}, *policy));
}

json ReviewOf(const json& object, const json& old = nullptr) {
  json request = {
      {"uid", "1234"}, {"object", object}, {"operation", old.is_null() ? "CREATE" : "UPDATE"}};
  if (!old.is_null()) request["oldObject"] = old;
  return Review(json({{"apiVersion", "admission.k8s.io/v1"},
                      {"kind", "AdmissionReview"},
                      {"request", request}})
                    .dump(),
                [](const json& pool) { return Admit(pool); });
}

TEST(Admission, ReviewAnswersTheRequestAndBlocksNothingUnrelated) {
  json denied = ReviewOf(PoolObject("second", 5));
  EXPECT_EQ(denied["kind"], "AdmissionReview");
  EXPECT_EQ(denied["response"]["uid"], "1234");
  EXPECT_EQ(denied["response"]["allowed"], false);
  EXPECT_EQ(denied["response"]["status"]["code"], 403);
  // A label on a pool that would not fit today: its spec did not change, so it is allowed.
  json labelled = PoolObject("second", 5);
  labelled["metadata"]["labels"] = {{"team", "payments"}};
  EXPECT_EQ(ReviewOf(labelled, PoolObject("second", 5))["response"]["allowed"], true);
  json deleting = PoolObject("second", 5);
  deleting["metadata"]["deletionTimestamp"] = "2026-11-30T00:00:00Z";
  EXPECT_EQ(ReviewOf(deleting, PoolObject("second", 4))["response"]["allowed"], true);
  EXPECT_TRUE(Review("not json", [](const json&) { return std::nullopt; }).contains("error"));
}

}  // namespace
}  // namespace poolkeeper::controller
