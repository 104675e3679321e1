// What the caches keep (cache_trim.h): the steady state over trimmed caches writes nothing (else
// every resync would apply again), an object as applied is compact and keeps what its readers read,
// a changed one is kept whole, the pods' readers see the same pod. Objects as a 1.35 API server
// returned them: testdata/*.json (captured from the test cluster running the operator; the
// Secret's data replaced). bench/cache_bytes prints the heap bytes per cached object.
#include "controller/cache_trim.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "controller/pods.h"
#include "reconciler_fixture.h"
#include "render/render.h"

namespace poolkeeper::controller {
namespace {

json Load(const std::string& name) {
  std::ifstream in(std::string(POOLKEEPER_TESTDATA_DIR) + "/" + name + ".json");
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

// The object as the cache held it before trims: without managedFields only (kube::Informer).
json Untrimmed(json object) {
  object["metadata"].erase("managedFields");
  return object;
}

// What the API server adds to an object the operator wrote: identity, defaults, status.
json AsServerReturnsIt(json object) {
  if (!object["metadata"].contains("uid")) object["metadata"]["uid"] = "uid-1";
  object["metadata"]["resourceVersion"] = "42";
  object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}";
  const std::string kind = object.value("kind", "");
  if (kind == "Service") {
    object["spec"]["clusterIP"] = "10.0.0.7";
    object["spec"]["clusterIPs"] = {"10.0.0.7"};
    object["spec"]["ipFamilies"] = {"IPv4"};
    object["spec"]["ipFamilyPolicy"] = "SingleStack";
    object["spec"]["internalTrafficPolicy"] = "Cluster";
    object["spec"]["sessionAffinity"] = "None";
    object["status"] = {{"loadBalancer", json::object()}};
  }
  if (kind == "Pod") {
    object["status"] = Load("pod")["status"];
  }
  return object;
}

json Trimmed(json object) {
  TrimFor(object.value("kind", ""))(object);
  return object;
}

// The reconciler's fixture under a suite name of its own (gtest wants one fixture class a suite).
class CacheTrimTest : public ReconcilerTest {};

TEST_F(CacheTrimTest, KeepsEveryFieldRenderSetsSoTheSteadyStateWritesNothing) {
  json pool = PoolJson("orders", 2, 5, "2026-01-01T00:00:00Z");  // 2 instances: a PDB too
  Settle(pool);
  ASSERT_EQ(owned_.size(), 4u) << "ConfigMap, Secret, Service, PodDisruptionBudget";
  ASSERT_EQ(pods_.size(), 2u);
  for (auto& [kind, object] : owned_) {
    SCOPED_TRACE(kind);
    json cached = Trimmed(AsServerReturnsIt(object));
    EXPECT_TRUE(CachedAsApplied(cached)) << "exactly as applied: compact; " << cached.dump();
    object = cached;
  }
  for (auto& [name, pod] : pods_) {
    SCOPED_TRACE(name);
    json stored = pod;
    stored["kind"] = "Pod";
    json cached = Trimmed(AsServerReturnsIt(stored));
    EXPECT_EQ(cached["spec"], stored["spec"]) << "kept whole";
    stored.erase("status");
    EXPECT_TRUE(Contains(cached, stored)) << "metadata kept";
    pod = cached;
  }

  ReconcileResult again = Reconcile(Inputs(pool));
  EXPECT_TRUE(again.apply.empty());
  EXPECT_TRUE(again.create_pods.empty());
  EXPECT_TRUE(again.delete_pods.empty());
  EXPECT_FALSE(again.status.has_value());
}

TEST_F(CacheTrimTest, KeepsOfAnObjectAsAppliedWhatItsReadersRead) {
  json pool = PoolJson("orders", 2, 5, "2026-01-01T00:00:00Z");
  Settle(pool);
  const json config_map = AsServerReturnsIt(owned_.at("ConfigMap"));
  const json compact = Trimmed(config_map);
  ASSERT_TRUE(CachedAsApplied(compact)) << compact.dump();
  json annotations = config_map["metadata"]["annotations"];
  annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
  EXPECT_EQ(compact["metadata"]["annotations"], annotations) << "holdings, the admitted size";
  json owner = config_map["metadata"]["ownerReferences"][0];
  owner.erase("controller");
  owner.erase("blockOwnerDeletion");
  EXPECT_EQ(compact["metadata"]["ownerReferences"], json::array({owner})) << "who owns it";
  for (const char* field : {"name", "namespace", "uid", "resourceVersion"}) {
    EXPECT_EQ(compact["metadata"][field], config_map["metadata"][field]) << field;
  }
  EXPECT_EQ(compact["metadata"]["labels"],
            json({{"poolkeeper.io/pool", "orders"}}))  // the holdings' key
      << "the other labels go";
  EXPECT_EQ(compact["kind"], "ConfigMap");
  EXPECT_FALSE(compact.contains("data"));
  EXPECT_EQ(PlannedConnections(compact), PlannedConnections(config_map));

  // With the agent the auth Secret holds its password too (stamped as the reconciler does).
  json with_agent = owned_.at("Secret");
  with_agent["metadata"]["annotations"].erase(render::kAppliedHashAnnotation);
  with_agent["metadata"].erase("annotations");
  with_agent["data"][render::kAgentPasswordKey] = "c2VjcmV0";
  with_agent["metadata"]["annotations"][render::kAppliedHashAnnotation] =
      render::AppliedHash(with_agent);
  const json secret = AsServerReturnsIt(with_agent);
  const json compact_secret = Trimmed(secret);
  ASSERT_TRUE(CachedAsApplied(compact_secret));
  EXPECT_EQ(compact_secret["data"], json({{render::kAgentPasswordKey, "c2VjcmV0"}}))
      << "the userlist goes";
  EXPECT_EQ(StoredAgentPassword({{"Secret", compact_secret}}),
            StoredAgentPassword({{"Secret", secret}}));
}

// Changed by someone after the apply: kept whole (no mark), so the reconciler compares it field
// by field as before: a field it does not set is left alone, a field it sets is applied again.
TEST_F(CacheTrimTest, KeepsAChangedObjectWholeAndTheReconcilerJudgesIt) {
  struct Case {
    const char* name;
    const char* kind;
    std::function<void(json&)> change;
    bool writes;
  };
  const std::vector<Case> cases = {
      {"a label added", "ConfigMap", [](json& o) { o["metadata"]["labels"]["team"] = "payments"; },
       false},
      {"an annotation added", "Secret", [](json& o) { o["metadata"]["annotations"]["note"] = "x"; },
       false},
      {"a port changed", "Service", [](json& o) { o["spec"]["ports"][0]["port"] = 7000; }, true},
      {"data edited", "ConfigMap", [](json& o) { o["data"]["pgbouncer.ini"] = "[pgbouncer]\n"; },
       true},
      {"minAvailable changed", "PodDisruptionBudget",
       [](json& o) { o["spec"]["minAvailable"] = 0; }, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    owned_.clear();
    pods_.clear();
    json pool = PoolJson("orders", 2, 5, "2026-01-01T00:00:00Z");
    Settle(pool);
    json changed = AsServerReturnsIt(owned_.at(c.kind));
    c.change(changed);
    json cached = Trimmed(changed);
    EXPECT_FALSE(CachedAsApplied(cached)) << cached.dump();
    owned_[c.kind] = cached;
    ReconcileResult again = Reconcile(Inputs(pool));
    if (c.writes) {
      ASSERT_EQ(again.apply.size(), 1u);
      EXPECT_EQ(again.apply[0]["kind"], c.kind);
    } else {
      EXPECT_TRUE(again.apply.empty()) << again.apply.size();
    }
  }
}

TEST(CompactIfAsApplied, TheObjectsAsTheApiServerReturnedThemAreCompact) {
  // Captured from the 1.35 test cluster: what the server adds is exactly what is left out.
  for (const char* name : {"configmap", "secret", "service", "poddisruptionbudget"}) {
    SCOPED_TRACE(name);
    json cached = Trimmed(Untrimmed(Load(name)));
    EXPECT_TRUE(CachedAsApplied(cached)) << cached.dump();
  }
  json bare = {{"kind", "ConfigMap"}, {"metadata", {{"name", "x"}}}, {"data", {{"a", "b"}}}};
  EXPECT_EQ(Trimmed(bare), bare) << "no applied-hash: kept whole";
}

TEST(TrimToOwnership, KeepsWhoHoldsTheNameAndNothingElse) {
  json raw = Untrimmed(Load("secret"));
  raw["metadata"]["ownerReferences"] = {{{"apiVersion", "poolkeeper.io/v1alpha1"},
                                         {"kind", "ConnectionPool"},
                                         {"name", "app"},
                                         {"uid", "u-1"},
                                         {"controller", true},
                                         {"blockOwnerDeletion", true}}};
  json trimmed = raw;
  TrimToOwnership(trimmed);
  EXPECT_EQ(trimmed["metadata"]["name"], raw["metadata"]["name"]);
  EXPECT_EQ(trimmed["metadata"]["namespace"], raw["metadata"]["namespace"]);
  EXPECT_EQ(trimmed["metadata"]["ownerReferences"],
            json::parse(R"([{"kind":"ConnectionPool","name":"app","uid":"u-1"}])"));
  EXPECT_FALSE(trimmed.contains("data"));
  EXPECT_FALSE(trimmed["metadata"].contains("labels"));
  std::cout << "a foreign name: text " << raw.dump().size() << " -> " << trimmed.dump().size()
            << "\n";
}

TEST(TrimPod, KeepsWhatThePodsReadersReadAndDropsTheRestOfTheStatus) {
  const json pod = Untrimmed(Load("pod"));
  const json trimmed = Trimmed(pod);
  const std::string uid = pod["metadata"]["ownerReferences"][0]["uid"];
  const ObservedPod before = ObservePod(pod, uid, 0);
  const ObservedPod after = ObservePod(trimmed, uid, 0);
  EXPECT_TRUE(after.ready);
  EXPECT_EQ(
      std::tie(before.name, before.uid, before.resource_version, before.config_hash,
               before.connections, before.owned, before.terminating, before.finished, before.ready),
      std::tie(after.name, after.uid, after.resource_version, after.config_hash, after.connections,
               after.owned, after.terminating, after.finished, after.ready));
  EXPECT_EQ(trimmed["status"]["podIP"], pod["status"]["podIP"]);
  EXPECT_EQ(trimmed["status"]["phase"], "Running");
  EXPECT_EQ(trimmed["spec"], pod["spec"]) << "a sibling's spec is copied";
  EXPECT_EQ(trimmed["metadata"], pod["metadata"]);
  EXPECT_FALSE(trimmed["status"].contains("containerStatuses"));

  json not_ready = pod;
  not_ready["status"]["conditions"] = {{{"type", "Ready"}, {"status", "False"}}};
  EXPECT_FALSE(ObservePod(Trimmed(not_ready), uid, 0).ready);
  json bare = {{"kind", "Pod"}, {"metadata", {{"name", "p"}}}};
  EXPECT_EQ(Trimmed(bare), bare) << "nothing to trim, nothing added";
}

TEST(DropLastApplied, RemovesOnlyKubectlsCopyOfTheObject) {
  json pool = Untrimmed(Load("connectionpool"));
  ASSERT_TRUE(
      pool["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
  json trimmed = Trimmed(pool);
  EXPECT_FALSE(trimmed["metadata"]["annotations"].contains(
      "kubectl.kubernetes.io/last-applied-configuration"));
  pool["metadata"]["annotations"].erase("kubectl.kubernetes.io/last-applied-configuration");
  EXPECT_EQ(trimmed, pool) << "spec and status are read: kept";
}

}  // namespace
}  // namespace poolkeeper::controller
