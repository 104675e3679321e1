// What the caches keep (cache_trim.h): every field render sets survives the trim (else every resync
// would apply again), the pods' readers see the same pod, and the bytes per cached object, before
// and after, from objects as a 1.35 API server returned them (testdata/*.json, captured from
// bench/ready.sh's cluster; the Secret's data replaced).
#include "controller/cache_trim.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "controller/pods.h"
#include "reconciler_fixture.h"

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
    EXPECT_TRUE(Contains(cached, object)) << cached.dump();
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

// Heap bytes that `copies` parsed copies of `text`, trimmed or not, hold (glibc's count of bytes
// in use; 0 where the allocator does not report it, e.g. under a sanitizer).
size_t HeapBytesPerObject(const std::string& text, bool trim, int copies = 200) {
  std::vector<json> kept;
  kept.reserve(copies);
  const size_t before = mallinfo2().uordblks;
  for (int i = 0; i < copies; ++i) {
    json object = json::parse(text);
    object["metadata"].erase("managedFields");
    if (trim) TrimFor(object.value("kind", ""))(object);
    kept.push_back(std::move(object));
  }
  const size_t after = mallinfo2().uordblks;
  return after > before ? (after - before) / copies : 0;
}

TEST(CacheTrim, ReportsTheBytesPerCachedObjectBeforeAndAfter) {
  std::cout << "bytes per cached object (JSON text; heap as parsed), managedFields already dropped"
            << " before:\n";
  for (const char* name : {"pod", "service", "configmap", "secret", "connectionpool"}) {
    const json raw = Load(name);
    const std::string text = raw.dump();
    const size_t text_before = Untrimmed(raw).dump().size();
    const size_t text_after = Trimmed(Untrimmed(raw)).dump().size();
    const size_t heap_before = HeapBytesPerObject(text, false);
    const size_t heap_after = HeapBytesPerObject(text, true);
    std::cout << "  " << name << ": text " << text_before << " -> " << text_after << ", heap "
              << heap_before << " -> " << heap_after << " (with managedFields: text " << text.size()
              << ")\n";
    ::testing::Test::RecordProperty(std::string(name) + "_heap_before",
                                    std::to_string(heap_before));
    ::testing::Test::RecordProperty(std::string(name) + "_heap_after", std::to_string(heap_after));
    EXPECT_LE(text_after, text_before) << name;
    if (std::string(name) == "pod" || std::string(name) == "service" ||
        std::string(name) == "connectionpool") {
      EXPECT_LT(text_after, text_before) << name << ": something to drop";
    }
  }
}

}  // namespace
}  // namespace poolkeeper::controller
