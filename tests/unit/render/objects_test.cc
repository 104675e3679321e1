// The owned Kubernetes objects: golden JSON, the config hash, PDB, drain on stop, mounts, labels
// and owner references.
#include <gtest/gtest.h>

#include <functional>

#include "common/base64.h"
#include "pools.h"
#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace {

using nlohmann::json;
using testing::BillingPasswords;
using testing::BillingPlan;
using testing::BillingPool;
using testing::ExpectGolden;
using testing::OrdersPasswords;
using testing::OrdersPlan;
using testing::OrdersPool;

OwnedObjects Build(const api::ConnectionPool& pool, const budget::PoolPlan& plan,
                   const Passwords& passwords, const std::string& revision = "rev-1") {
  auto objects = BuildObjects(pool, plan, passwords, revision);
  EXPECT_TRUE(objects.has_value()) << objects.error().message;
  return objects.value_or(OwnedObjects{});
}

OwnedObjects Orders() { return Build(OrdersPool(), OrdersPlan(), OrdersPasswords()); }
OwnedObjects Billing() { return Build(BillingPool(), BillingPlan(), BillingPasswords()); }

json AsList(const OwnedObjects& objects) {
  json list = json::array();
  for (const auto& kind : kOwnedKinds) {
    const json& object = objects.*kind.member;
    if (!object.is_null()) list.push_back(object);
  }
  list.push_back(objects.pod_template);
  return list;
}

const json& PodSpec(const OwnedObjects& objects) { return objects.pod_template["spec"]; }
const json& Container(const OwnedObjects& objects) { return PodSpec(objects)["containers"][0]; }

TEST(BuildObjects, Golden118) {
  ExpectGolden("orders_1.18.objects.json", AsList(Orders()).dump(2) + "\n");
}

TEST(BuildObjects, Golden125) {
  ExpectGolden("billing_1.25.objects.json", AsList(Billing()).dump(2) + "\n");
}

TEST(BuildObjects, Deterministic) {
  EXPECT_EQ(AsList(Orders()).dump(), AsList(Orders()).dump());
  auto pool = OrdersPool();
  std::swap(pool.spec.databases[0], pool.spec.databases[2]);
  std::swap(pool.spec.users[0], pool.spec.users[1]);
  EXPECT_EQ(AsList(Build(pool, OrdersPlan(), OrdersPasswords())).dump(), AsList(Orders()).dump());
}

TEST(BuildObjects, NamesAndData) {
  const OwnedObjects objects = Orders();
  EXPECT_EQ(objects.config_map["metadata"]["name"], "orders-config");
  EXPECT_EQ(objects.config_map["data"]["pgbouncer.ini"], RenderIni(OrdersPool(), OrdersPlan()));
  EXPECT_EQ(objects.secret["metadata"]["name"], "orders-auth");
  EXPECT_EQ(objects.secret["type"], "Opaque");
  EXPECT_FALSE(objects.secret.contains("stringData"));
  EXPECT_EQ(DecodeBase64(objects.secret["data"]["userlist.txt"].get<std::string>()),
            RenderUserlist(OrdersPool(), OrdersPasswords()).value());
  EXPECT_EQ(PodInSlot(objects.pod_template, "orders", 3)["metadata"]["name"], "orders-3");
  EXPECT_EQ(objects.config_map["metadata"]["annotations"]["poolkeeper.io/planned-connections"],
            std::to_string(OrdersPlan().worst_case));
  EXPECT_EQ(objects.service["metadata"]["name"], "orders");
  for (const json& object : AsList(objects)) {
    EXPECT_EQ(object["metadata"]["namespace"], "shop");
  }
}

TEST(BuildObjects, Sha256MatchesKnownVector) {
  EXPECT_EQ(internal::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(BuildObjects, ConfigHashFollowsIniPodSpecAndRevisionButNotPasswords) {
  const OwnedObjects base = Orders();
  EXPECT_EQ(base.config_hash,
            ConfigHash(RenderIni(OrdersPool(), OrdersPlan()), base.pod_template["spec"], "rev-1"));
  EXPECT_EQ(base.config_hash.size(), 64u);
  EXPECT_EQ(base.pod_template["metadata"]["annotations"]["poolkeeper.io/config-hash"],
            base.config_hash);

  auto passwords = OrdersPasswords();
  passwords["plain"] = "rotated-but-same-revision";
  EXPECT_EQ(Build(OrdersPool(), OrdersPlan(), passwords).config_hash, base.config_hash);

  EXPECT_NE(Build(OrdersPool(), OrdersPlan(), OrdersPasswords(), "rev-2").config_hash,
            base.config_hash);

  auto pool = OrdersPool();
  pool.spec.pooler.default_pool_size = 21;
  EXPECT_NE(Build(pool, OrdersPlan(), OrdersPasswords()).config_hash, base.config_hash);

  // A new image alone is a new configuration: a running pod cannot change its image.
  pool = OrdersPool();
  pool.spec.pooler.image = "example.com/pgbouncer:other";
  EXPECT_NE(Build(pool, OrdersPlan(), OrdersPasswords()).config_hash, base.config_hash);

  // Not a hash of anything holding the passwords.
  std::string userlist = RenderUserlist(OrdersPool(), OrdersPasswords()).value();
  EXPECT_NE(base.config_hash, internal::Sha256Hex(userlist));
  EXPECT_NE(base.config_hash, ConfigHash(userlist, base.pod_template["spec"], "rev-1"));
}

TEST(BuildObjects, MissingPasswordFailsTheWholeBuild) {
  auto passwords = OrdersPasswords();
  passwords.erase("orders_app");
  auto objects = BuildObjects(OrdersPool(), OrdersPlan(), passwords, "rev-1");
  ASSERT_FALSE(objects.has_value());
  EXPECT_EQ(objects.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(objects.error().fields.at(0).field, "spec.users[0].passwordSecretRef");
}

TEST(BuildObjects, PodDisruptionBudgetOnlyWithMoreThanOneInstance) {
  const OwnedObjects two = Orders();
  ASSERT_TRUE(two.pod_disruption_budget.is_object());
  EXPECT_EQ(two.pod_disruption_budget["apiVersion"], "policy/v1");
  EXPECT_EQ(two.pod_disruption_budget["spec"]["minAvailable"], 1);
  EXPECT_EQ(two.pod_disruption_budget["spec"]["selector"]["matchLabels"],
            internal::SelectorLabels(OrdersPool()));
  EXPECT_TRUE(Billing().pod_disruption_budget.is_null());
  auto none = OrdersPool();
  none.spec.pooler.instances = 0;
  EXPECT_TRUE(Build(none, OrdersPlan(), OrdersPasswords()).pod_disruption_budget.is_null());
}

TEST(BuildObjects, DrainOnStopSuitsTheVersion) {
  for (int minor = 18; minor <= 25; ++minor) {
    auto pool = OrdersPool();
    pool.spec.pooler.pgbouncer_version = {1, minor};
    const json container = Container(Build(pool, OrdersPlan(), OrdersPasswords()));
    if (minor < 23) {
      ASSERT_TRUE(container.contains("lifecycle")) << "1." << minor;
      EXPECT_EQ(
          container["lifecycle"]["preStop"]["exec"]["command"],
          json({"/bin/sh", "-c", "kill -INT 1; while kill -0 1 2>/dev/null; do sleep 1; done"}));
    } else {
      EXPECT_FALSE(container.contains("lifecycle")) << "1." << minor << ": SIGTERM already drains";
    }
  }
}

TEST(BuildObjects, GracePeriodFitsTheTimeouts) {
  EXPECT_EQ(PodSpec(Orders())["terminationGracePeriodSeconds"], 40);   // 10 + query_timeout 30
  EXPECT_EQ(PodSpec(Billing())["terminationGracePeriodSeconds"], 55);  // 10 + transaction_timeout
  auto pool = OrdersPool();
  pool.spec.pooler.timeouts = {};
  EXPECT_EQ(internal::TerminationGracePeriodSeconds(pool), 60);
  pool.spec.pooler.timeouts.idle_transaction_timeout = 100000;
  EXPECT_EQ(internal::TerminationGracePeriodSeconds(pool), 3600);
}

TEST(BuildObjects, NoSubPathAnywhereAndMountsAreDirectories) {
  std::function<void(const json&)> check = [&](const json& value) {
    if (value.is_object()) {
      EXPECT_FALSE(value.contains("subPath"));
      EXPECT_FALSE(value.contains("subPathExpr"));
      for (const auto& [key, child] : value.items()) check(child);
    } else if (value.is_array()) {
      for (const auto& child : value) check(child);
    }
  };
  for (const OwnedObjects& objects : {Orders(), Billing()}) {
    check(AsList(objects));
    const json& mounts = Container(objects)["volumeMounts"];
    ASSERT_EQ(mounts.size(), 2u);
    EXPECT_EQ(mounts[0]["mountPath"], "/etc/pgbouncer");
    EXPECT_EQ(mounts[1]["mountPath"], "/etc/pgbouncer-auth");
    for (const json& mount : mounts) EXPECT_EQ(mount["readOnly"], true);
    EXPECT_EQ(PodSpec(objects)["volumes"][1]["secret"]["defaultMode"], 288);  // 0440
  }
}

TEST(BuildObjects, HardenedPod) {
  const OwnedObjects objects = Orders();
  const json& pod = PodSpec(objects);
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["securityContext"]["fsGroup"], 70);
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  const json& container = Container(objects);
  EXPECT_EQ(container["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(container["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(container["securityContext"]["capabilities"]["drop"], json({"ALL"}));
  EXPECT_EQ(container["command"], json({"pgbouncer", "/etc/pgbouncer/pgbouncer.ini"}));
  EXPECT_EQ(container["readinessProbe"]["tcpSocket"]["port"], "pgbouncer");
  EXPECT_EQ(container["livenessProbe"]["failureThreshold"], 6);
  EXPECT_EQ(container["resources"]["requests"]["cpu"], "100m");
  EXPECT_EQ(container["resources"]["limits"]["memory"], "256Mi");

  auto pool = OrdersPool();
  pool.spec.pooler.resources = {{"requests", {{"cpu", "1"}}}};
  EXPECT_EQ(Container(Build(pool, OrdersPlan(), OrdersPasswords()))["resources"],
            pool.spec.pooler.resources);
}

// Ready follows pgbouncer's own start within about a second: readiness every second (no startup
// probe, which would hold readiness back a period), liveness slow enough to ride out a slow start.
TEST(BuildObjects, ReadinessEverySecondLivenessAfterAMinuteNoStartupProbe) {
  const OwnedObjects objects = Orders();
  const json& container = Container(objects);
  struct Want {
    const char* probe;
    int period;
    int failures;
  };
  for (const Want& want : {Want{"readinessProbe", 1, 5}, Want{"livenessProbe", 10, 6}}) {
    SCOPED_TRACE(want.probe);
    const json& probe = container[want.probe];
    EXPECT_EQ(probe["tcpSocket"]["port"], "pgbouncer");
    EXPECT_EQ(probe["periodSeconds"], want.period);
    EXPECT_EQ(probe["failureThreshold"], want.failures);
    EXPECT_FALSE(probe.contains("initialDelaySeconds"));
  }
  EXPECT_FALSE(container.contains("startupProbe"));
}

TEST(BuildObjects, PodsCarryTheirServerAndCharge) {
  const json annotations = Orders().pod_template["metadata"]["annotations"];
  EXPECT_EQ(annotations["poolkeeper.io/server"], OrdersPlan().server);
  EXPECT_EQ(annotations["poolkeeper.io/connections-per-pod"],
            std::to_string(OrdersPlan().per_instance));
}

TEST(PodInSlot, NamesThePodAfterItsPoolAndSlot) { EXPECT_EQ(PodName("app", 12), "app-12"); }

TEST(BuildObjects, LabelsSelectorsAndService) {
  const OwnedObjects objects = Orders();
  const json labels = internal::Labels(OrdersPool());
  EXPECT_EQ(labels["app.kubernetes.io/managed-by"], "poolkeeper");
  EXPECT_EQ(labels["poolkeeper.io/pool"], "orders");
  for (const json& object : AsList(objects)) EXPECT_EQ(object["metadata"]["labels"], labels);
  const json selector = {{"app.kubernetes.io/name", "pgbouncer"}, {"poolkeeper.io/pool", "orders"}};
  EXPECT_EQ(objects.pod_disruption_budget["spec"]["selector"]["matchLabels"], selector);
  EXPECT_EQ(objects.pod_template["metadata"]["labels"], labels);
  EXPECT_EQ(objects.service["spec"]["selector"], selector);
  EXPECT_EQ(objects.service["spec"]["type"], "ClusterIP");
  EXPECT_EQ(objects.service["spec"]["ports"][0]["port"], 6432);
  EXPECT_EQ(objects.service["spec"]["ports"][0]["targetPort"], "pgbouncer");
  EXPECT_EQ(Billing().service["spec"]["ports"][0]["port"], 6543);
}

TEST(BuildObjects, OwnerReferencesOnlyWithAUid) {
  for (const json& object : AsList(Orders())) {
    EXPECT_FALSE(object["metadata"].contains("ownerReferences"));
  }
  for (const json& object : AsList(Billing())) {
    const json& owner = object["metadata"]["ownerReferences"].at(0);
    EXPECT_EQ(owner["apiVersion"], "poolkeeper.io/v1alpha1");
    EXPECT_EQ(owner["kind"], "ConnectionPool");
    EXPECT_EQ(owner["name"], "billing");
    EXPECT_EQ(owner["uid"], "5f0c7a9e-2b1d-4c3e-9f00-0123456789ab");
    EXPECT_EQ(owner["controller"], true);
    EXPECT_EQ(owner["blockOwnerDeletion"], true);
  }
}

TEST(BuildObjects, SchedulingOverrides) {
  const json orders = PodSpec(Orders());
  ASSERT_EQ(orders["topologySpreadConstraints"].size(), 1u);
  EXPECT_EQ(orders["topologySpreadConstraints"][0]["topologyKey"], "kubernetes.io/hostname");
  EXPECT_EQ(orders["topologySpreadConstraints"][0]["whenUnsatisfiable"], "ScheduleAnyway");
  EXPECT_FALSE(orders.contains("tolerations"));
  EXPECT_FALSE(orders.contains("affinity"));
  EXPECT_FALSE(orders.contains("nodeSelector"));
  EXPECT_FALSE(orders.contains("priorityClassName"));

  const json billing = PodSpec(Billing());
  EXPECT_EQ(billing["tolerations"], BillingPool().spec.pooler.tolerations);
  EXPECT_EQ(billing["priorityClassName"], "pooler-critical");

  auto pool = OrdersPool();
  pool.spec.pooler.topology_spread_constraints = json::array();  // "no spreading", said explicitly
  pool.spec.pooler.node_selector = {{"pool", "db"}};
  pool.spec.pooler.affinity = {{"nodeAffinity", json::object()}};
  const json custom = PodSpec(Build(pool, OrdersPlan(), OrdersPasswords()));
  EXPECT_EQ(custom["topologySpreadConstraints"], json::array());
  EXPECT_EQ(custom["nodeSelector"], pool.spec.pooler.node_selector);
  EXPECT_EQ(custom["affinity"], pool.spec.pooler.affinity);
}

}  // namespace
}  // namespace poolkeeper::render
