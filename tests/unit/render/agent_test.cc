// The pooler agent in the rendered objects (--agent-image): its container, volumes (its password,
// the pod's budget figures), the ini's console settings, the ConfigMap's config hash and paused
// key; and nothing of it without an image.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "common/base64.h"
#include "pools.h"
#include "render/render.h"

namespace poolkeeper::render {
namespace {

using nlohmann::json;
using testing::ExpectGolden;
using testing::OrdersPasswords;
using testing::OrdersPlan;
using testing::OrdersPool;

constexpr char kAgentImage[] = "localhost/poolkeeper:dev";
constexpr char kAgentPassword[] = "agent-s3cret";

api::ConnectionPool AgentPool() {
  auto pool = OrdersPool();
  pool.spec.pooler.agent_image = kAgentImage;
  return pool;
}

Passwords AgentPasswords() {
  Passwords passwords = OrdersPasswords();
  passwords[api::kAgentUser] = kAgentPassword;
  return passwords;
}

OwnedObjects Build(const api::ConnectionPool& pool, const Passwords& passwords) {
  auto objects = BuildObjects(pool, OrdersPlan(), passwords, "rev-1");
  EXPECT_TRUE(objects.has_value()) << objects.error().message;
  return objects.value_or(OwnedObjects{});
}

const json* FindNamed(const json& list, const std::string& name) {
  for (const json& item : list) {
    if (item.value("name", "") == name) return &item;
  }
  return nullptr;
}

TEST(Agent, GoldenPod) {
  ExpectGolden("orders_agent_1.18.pod.json",
               Build(AgentPool(), AgentPasswords()).pod_template.dump(2) + "\n");
}

TEST(Agent, IniOpensTheConsoleSocketForTheAgentUserOnly) {
  std::string ini = RenderIni(AgentPool(), OrdersPlan());
  EXPECT_NE(ini.find("\nunix_socket_dir = /var/run/pgbouncer\n"), std::string::npos) << ini;
  EXPECT_NE(ini.find("\nadmin_users = poolkeeper_agent\n"), std::string::npos) << ini;
  std::string without = RenderIni(OrdersPool(), OrdersPlan());
  EXPECT_NE(without.find("\nunix_socket_dir =\n"), std::string::npos);
  EXPECT_EQ(without.find("admin_users"), std::string::npos);
}

TEST(Agent, TheUserlistAndSecretCarryTheAgentPasswordAndTheConfigMapItsHash) {
  OwnedObjects objects = Build(AgentPool(), AgentPasswords());
  auto userlist = DecodeBase64(objects.secret["data"][kUserlistFile].get<std::string>());
  ASSERT_TRUE(userlist);
  EXPECT_NE(userlist->find("\"poolkeeper_agent\" \"agent-s3cret\"\n"), std::string::npos);
  EXPECT_EQ(DecodeBase64(objects.secret["data"][kAgentPasswordKey].get<std::string>()),
            std::optional<std::string>(kAgentPassword));
  EXPECT_EQ(objects.config_map["data"][kConfigHashKey], objects.config_hash);
  // The ConfigMap is readable more widely than the Secret: no password in it.
  EXPECT_EQ(objects.config_map.dump().find(kAgentPassword), std::string::npos);
  EXPECT_EQ(objects.pod_template.dump().find(kAgentPassword), std::string::npos);
}

TEST(Agent, WithoutItsPasswordTheAgentPoolIsNotRendered) {
  auto objects = BuildObjects(AgentPool(), OrdersPlan(), OrdersPasswords(), "rev-1");
  ASSERT_FALSE(objects.has_value());
  EXPECT_NE(objects.error().message.find("spec.pooler"), std::string::npos)
      << objects.error().message;
}

TEST(Agent, TheSidecarSharesTheSocketReadsOnlyItsPasswordAndGatesReadiness) {
  const json spec = Build(AgentPool(), AgentPasswords()).pod_template["spec"];
  ASSERT_EQ(spec["containers"].size(), 2u);
  const json& pgbouncer = spec["containers"][0];
  const json& agent = spec["containers"][1];
  EXPECT_EQ(agent["name"], "agent");
  EXPECT_EQ(agent["image"], kAgentImage);
  EXPECT_EQ(agent["args"][0], "agent");
  EXPECT_EQ(agent["ports"][0]["name"], "metrics");
  EXPECT_EQ(agent["ports"][0]["containerPort"], 9127);
  EXPECT_EQ(agent["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(agent["readinessProbe"]["httpGet"]["port"], "metrics");
  EXPECT_EQ(agent["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(agent["securityContext"]["allowPrivilegeEscalation"], false);
  for (const json* container : {&pgbouncer, &agent}) {
    const json* run = FindNamed((*container)["volumeMounts"], "run");
    ASSERT_NE(run, nullptr) << (*container)["name"];
    EXPECT_EQ((*run)["mountPath"], kSocketDir);
  }
  EXPECT_EQ(FindNamed(agent["volumeMounts"], "auth"), nullptr);  // not the userlist
  EXPECT_NE(FindNamed(agent["volumeMounts"], "config"), nullptr);
  const json* password = FindNamed(spec["volumes"], "agent-password");
  ASSERT_NE(password, nullptr);
  EXPECT_EQ((*password)["secret"]["items"],
            json::array({{{"key", "agent-password"}, {"path", "password"}}}));
  EXPECT_EQ((*password)["secret"]["defaultMode"], 0440);
  EXPECT_TRUE(FindNamed(spec["volumes"], "run")->contains("emptyDir"));
}

// The figures the operator changes on a running pod reach the agent through a downward API
// volume, which the kubelet rewrites (an env var would keep the value the pod started with).
TEST(Agent, OnlyTheAgentMountsThePodsBudgetFiguresFromTheDownwardApi) {
  const json spec = Build(AgentPool(), AgentPasswords()).pod_template["spec"];
  const json* volume = FindNamed(spec["volumes"], "pod-info");
  ASSERT_NE(volume, nullptr);
  ASSERT_TRUE(volume->contains("downwardAPI")) << volume->dump();
  EXPECT_EQ((*volume)["downwardAPI"]["defaultMode"], 0444);
  std::map<std::string, std::string> items;
  for (const json& item : (*volume)["downwardAPI"]["items"]) {
    items[item["path"]] = item["fieldRef"]["fieldPath"];
  }
  EXPECT_EQ(
      items,
      (std::map<std::string, std::string>{
          {"connections-per-pod", "metadata.annotations['poolkeeper.io/connections-per-pod']"},
          {"server", "metadata.annotations['poolkeeper.io/server']"},
          {"pool", "metadata.labels['poolkeeper.io/pool']"},
      }));
  const json& agent = spec["containers"][1];
  const json* mount = FindNamed(agent["volumeMounts"], "pod-info");
  ASSERT_NE(mount, nullptr);
  EXPECT_EQ((*mount)["mountPath"], kPodInfoDir);
  EXPECT_EQ((*mount)["readOnly"], true);
  const json arg = std::string("--pod-info-dir=") + kPodInfoDir;
  EXPECT_NE(std::find(agent["args"].begin(), agent["args"].end(), arg), agent["args"].end());
  EXPECT_EQ(FindNamed(spec["containers"][0]["volumeMounts"], "pod-info"), nullptr);
  const json plain = Build(OrdersPool(), OrdersPasswords()).pod_template["spec"];
  EXPECT_EQ(FindNamed(plain["volumes"], "pod-info"), nullptr);
}

TEST(Agent, WithoutAnImageThePodIsAsBefore) {
  const json spec = Build(OrdersPool(), OrdersPasswords()).pod_template["spec"];
  EXPECT_EQ(spec["containers"].size(), 1u);
  EXPECT_EQ(FindNamed(spec["volumes"], "run"), nullptr);
  OwnedObjects objects = Build(OrdersPool(), OrdersPasswords());
  EXPECT_FALSE(objects.config_map["data"].contains(kConfigHashKey));
  EXPECT_FALSE(objects.config_map["data"].contains(kPausedKey));
  EXPECT_FALSE(objects.secret["data"].contains(kAgentPasswordKey));
}

api::ConnectionPool Paused(api::ConnectionPool pool) {
  pool.spec.paused = true;
  return pool;
}

TEST(Agent, GoldenPausedConfigMap) {
  ExpectGolden("orders_agent_paused_1.18.configmap.json",
               Build(Paused(AgentPool()), AgentPasswords()).config_map.dump(2) + "\n");
}

// The agents PAUSE on the ConfigMap's `paused` key alone: no pod rolls, and the config hash they
// report loaded stays the one the reconciler waits for.
TEST(Agent, PausingChangesOnlyTheConfigMapsPausedKey) {
  OwnedObjects running = Build(AgentPool(), AgentPasswords());
  OwnedObjects paused = Build(Paused(AgentPool()), AgentPasswords());
  EXPECT_EQ(running.config_map["data"][kPausedKey], "false");
  EXPECT_EQ(paused.config_map["data"][kPausedKey], "true");
  EXPECT_EQ(paused.config_hash, running.config_hash);
  EXPECT_EQ(paused.pod_hash, running.pod_hash);
  EXPECT_EQ(paused.pod_template, running.pod_template);
  EXPECT_EQ(paused.secret, running.secret);
  EXPECT_EQ(paused.service, running.service);
  json config_map = paused.config_map;
  config_map["data"][kPausedKey] = "false";
  EXPECT_EQ(config_map, running.config_map);
}

// Without the agent nothing can PAUSE: spec.paused renders nothing (the reconciler says why).
TEST(Agent, WithoutAnImagePausedRendersNothing) {
  OwnedObjects running = Build(OrdersPool(), OrdersPasswords());
  OwnedObjects paused = Build(Paused(OrdersPool()), OrdersPasswords());
  EXPECT_EQ(paused.config_map, running.config_map);
  EXPECT_EQ(paused.pod_template, running.pod_template);
  EXPECT_EQ(paused.config_hash, running.config_hash);
}

}  // namespace
}  // namespace poolkeeper::render
