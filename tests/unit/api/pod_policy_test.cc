// The pod policy: which images a pooler may run (repository rules that no look-alike name, tag or
// digest slips past), and which scheduling fields would put it on the cluster's own nodes or
// priority.
#include "api/pod_policy.h"

#include <gtest/gtest.h>

namespace poolkeeper::api {
namespace {

using nlohmann::json;

PodPolicy PolicyOf(const std::vector<std::string>& images,
                   const std::vector<std::string>& priority_classes = {}, bool blanket = false) {
  auto policy = MakePodPolicy(images, priority_classes, blanket, ParseDefaults{});
  EXPECT_TRUE(policy.has_value()) << policy.error().ToString();
  return *policy;
}

TEST(ParseImageReference, NormalisesAsContainerRuntimesDo) {
  struct Case {
    std::string text, repository, tag, digest;
  };
  const std::string digest = "sha256:" + std::string(64, 'a');
  for (const auto& c : std::vector<Case>{
           {"pgbouncer", "docker.io/library/pgbouncer", "", ""},
           {"bitnami/pgbouncer:1.18", "docker.io/bitnami/pgbouncer", "1.18", ""},
           {"index.docker.io/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer", "", ""},
           {"Docker.IO/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer", "", ""},
           {"localhost:5000/x", "localhost:5000/x", "", ""},
           {"localhost:5000/x:1.24.1", "localhost:5000/x", "1.24.1", ""},
           {"localhost/poolkeeper-test/pgbouncer:1.18.0", "localhost/poolkeeper-test/pgbouncer",
            "1.18.0", ""},
           {"ghcr.io/cnpg/pgbouncer@" + digest, "ghcr.io/cnpg/pgbouncer", "", digest},
           {"ghcr.io/cnpg/pgbouncer:1.24@" + digest, "ghcr.io/cnpg/pgbouncer", "1.24", digest},
           {"r.example/a__b/c-d/e.f", "r.example/a__b/c-d/e.f", "", ""},
       }) {
    auto ref = ParseImageReference(c.text);
    ASSERT_TRUE(ref) << c.text;
    EXPECT_EQ(ref->Repository(), c.repository) << c.text;
    EXPECT_EQ(ref->tag, c.tag) << c.text;
    EXPECT_EQ(ref->digest, c.digest) << c.text;
  }
}

TEST(ParseImageReference, RefusesWhatIsNotAReference) {
  for (const std::string& text : std::vector<std::string>{
           "", "Bitnami/../pgbouncer", "r.example/a/../b", "r.example//a", "r.example/A",
           "r.example/a:", "r.example/a@sha256:abc", "r.example/a@sha256:" + std::string(64, 'A'),
           "r.example/a b", "r.example/-a", "r.example/a.", "-r.example/a", "[::1]:5000/a",
           "r.example:port/a", "r.example/a:-tag"}) {
    EXPECT_FALSE(ParseImageReference(text)) << text;
  }
}

TEST(ImageRules, MatchOnTheWholeRepository) {
  const std::string digest = "@sha256:" + std::string(64, 'b');
  struct Case {
    std::string rule, image;
    bool allowed;
  };
  for (const auto& c : std::vector<Case>{
           // Exact repository: any tag or digest, no look-alike.
           {"docker.io/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer:1.18.0", true},
           {"docker.io/bitnami/pgbouncer", "bitnami/pgbouncer:1.18.0", true},
           {"docker.io/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer" + digest, true},
           {"docker.io/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer:1.18" + digest, true},
           {"docker.io/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer-evil:1.18", false},
           {"docker.io/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer.evil.com/x:1.18", false},
           {"docker.io/bitnami/pgbouncer", "docker.io/bitnami/pgbouncer/x:1.18", false},
           {"docker.io/bitnami/pgbouncer", "bitnami.io/bitnami/pgbouncer:1.18", false},
           {"docker.io/bitnami/pgbouncer", "attacker.example/docker.io/bitnami/pgbouncer:1", false},
           {"bitnami/pgbouncer", "docker.io/bitnami/pgbouncer:1.18", true},
           {"pgbouncer", "docker.io/library/pgbouncer:1.18", true},
           {"pgbouncer", "evil/pgbouncer:1.18", false},
           // Registry ports.
           {"localhost:5000/x", "localhost:5000/x:1.18", true},
           {"localhost:5000/x", "localhost:5001/x:1.18", false},
           {"localhost:5000/x", "localhost/x:1.18", false},
           {"localhost:5000/x", "localhost:5000/x-y:1.18", false},
           // Prefixes end at a path boundary.
           {"localhost/poolkeeper-test/*", "localhost/poolkeeper-test/pgbouncer:1.24.1", true},
           {"localhost/poolkeeper-test/*", "localhost/poolkeeper-test-evil/pgbouncer:1", false},
           {"localhost:5000/*", "localhost:5000/team/pgbouncer:1.18", true},
           {"localhost:5000/*", "localhost:50000/team/pgbouncer:1.18", false},
           {"bitnami/*", "docker.io/bitnami/pgbouncer:1.18", true},
           {"bitnami/*", "docker.io/bitnamix/pgbouncer:1.18", false},
           {"docker.io/*", "pgbouncer:1.18", true},
           {"*", "attacker.example/anything:1.18", true},
           // Tags and digests pin.
           {"ghcr.io/cnpg/pgbouncer:1.24.1", "ghcr.io/cnpg/pgbouncer:1.24.1", true},
           {"ghcr.io/cnpg/pgbouncer:1.24.1", "ghcr.io/cnpg/pgbouncer:1.24.2", false},
           {"ghcr.io/cnpg/pgbouncer:1.24.1", "ghcr.io/cnpg/pgbouncer:1.24.1" + digest, false},
           {"ghcr.io/cnpg/pgbouncer" + digest, "ghcr.io/cnpg/pgbouncer:1.24" + digest, true},
           {"ghcr.io/cnpg/pgbouncer" + digest, "ghcr.io/cnpg/pgbouncer:1.24", false},
       }) {
    EXPECT_EQ(PolicyOf({c.rule}).ImageAllowed(c.image), c.allowed) << c.rule << " / " << c.image;
  }
}

TEST(ImageRules, DefaultIsTheDefaultImagesRepository) {
  PodPolicy policy = PolicyOf({});
  EXPECT_TRUE(policy.ImageAllowed(kDefaultImage));
  EXPECT_TRUE(policy.ImageAllowed("ghcr.io/cloudnative-pg/pgbouncer:1.22.0"));
  EXPECT_FALSE(policy.ImageAllowed("attacker.example/anything:1.18"));
  EXPECT_FALSE(policy.ImageAllowed("ghcr.io/cloudnative-pg/pgbouncer-evil:1.22.0"));
  // An explicit list still allows the default image itself (pools that name none run it).
  policy = PolicyOf({"registry.corp/pgbouncer"});
  EXPECT_TRUE(policy.ImageAllowed(kDefaultImage));
  EXPECT_FALSE(policy.ImageAllowed("ghcr.io/cloudnative-pg/pgbouncer:1.22.0"));
  EXPECT_EQ(policy.AllowedImages(), "registry.corp/pgbouncer, " + std::string(kDefaultImage));
}

TEST(MakePodPolicy, NamesTheFlagOfABadValue) {
  for (const auto& [images, classes, flag] :
       std::vector<std::tuple<std::vector<std::string>, std::vector<std::string>, std::string>>{
           {{"docker.io/bitnami/pgbouncer*"}, {}, "--allowed-pooler-images"},
           {{"docker.io/*/pgbouncer"}, {}, "--allowed-pooler-images"},
           {{"*/*"}, {}, "--allowed-pooler-images"},
           {{"Bad Image"}, {}, "--allowed-pooler-images"},
           {{"r.example/a:1/*"}, {}, "--allowed-pooler-images"},
           {{}, {"high-priority"}, "--allowed-priority-classes"},
       }) {
    auto policy = MakePodPolicy(images, classes, false, ParseDefaults{});
    ASSERT_FALSE(policy.has_value());
    EXPECT_EQ(policy.error().fields.at(0).field, flag) << policy.error().ToString();
  }
}

ConnectionPool Pool(std::string image, json tolerations = nullptr, std::string priority = "") {
  ConnectionPool pool;
  pool.spec.pooler.image = std::move(image);
  pool.spec.pooler.tolerations = std::move(tolerations);
  pool.spec.pooler.priority_class_name = std::move(priority);
  return pool;
}

TEST(CheckPodPolicy, RefusesSchedulingOntoTheClustersOwnNodesAndPriority) {
  struct Case {
    json tolerations;
    std::string priority;
    std::vector<std::string> fields;  // refused under the default policy
  };
  for (const auto& c : std::vector<Case>{
           {json::array({{{"operator", "Exists"}}}), "", {"spec.pooler.tolerations[0]"}},
           {json::array({{{"operator", "Exists"}, {"effect", "NoSchedule"}}}),
            "",
            {"spec.pooler.tolerations[0]"}},
           {json::array(
                {{{"key", "dedicated"}, {"value", "db"}, {"effect", "NoSchedule"}},
                 {{"key", "node-role.kubernetes.io/control-plane"}, {"operator", "Exists"}}}),
            "",
            {"spec.pooler.tolerations[1]"}},
           {json::array({{{"key", "node-role.kubernetes.io/master"}, {"operator", "Exists"}}}),
            "",
            {"spec.pooler.tolerations[0]"}},
           {json::array({{{"key", "node.kubernetes.io/unschedulable"}, {"operator", "Exists"}}}),
            "",
            {"spec.pooler.tolerations[0]"}},
           {json::array({{{"key", "CriticalAddonsOnly"}, {"operator", "Exists"}}}),
            "",
            {"spec.pooler.tolerations[0]"}},
           // Forever on a node that is not ready: refused; for a bounded time: what every pod has.
           {json::array({{{"key", "node.kubernetes.io/not-ready"}, {"effect", "NoExecute"}}}),
            "",
            {"spec.pooler.tolerations[0]"}},
           {json::array({{{"key", "node.kubernetes.io/not-ready"},
                          {"operator", "Exists"},
                          {"effect", "NoExecute"},
                          {"tolerationSeconds", 30}}}),
            "",
            {}},
           {json::array({{{"key", "dedicated"}, {"operator", "Exists"}}}), "", {}},
           {nullptr, "system-node-critical", {"spec.pooler.priorityClassName"}},
           {nullptr, "system-cluster-critical", {"spec.pooler.priorityClassName"}},
           {nullptr, "high-priority", {}},
           {json::array({{{"operator", "Exists"}}}),
            "system-node-critical",
            {"spec.pooler.tolerations[0]", "spec.pooler.priorityClassName"}},
       }) {
    std::vector<std::string> fields;
    for (const auto& issue :
         CheckPodPolicy(PolicyOf({}), Pool(kDefaultImage, c.tolerations, c.priority))) {
      fields.push_back(issue.field);
    }
    EXPECT_EQ(fields, c.fields) << c.tolerations.dump() << " " << c.priority;
    // The operator's flags allow them.
    EXPECT_TRUE(
        CheckPodPolicy(PolicyOf({}, {"system-node-critical", "system-cluster-critical"}, true),
                       Pool(kDefaultImage, c.tolerations, c.priority))
            .empty());
  }
}

TEST(CheckPodPolicy, NamesTheImageFieldAndTheAllowedList) {
  auto issues = CheckPodPolicy(PolicyOf({"localhost/poolkeeper-test/*"}),
                               Pool("attacker.example/anything:1.18"));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].field, "spec.pooler.image");
  EXPECT_EQ(issues[0].message,
            "\"attacker.example/anything:1.18\" is not an allowed image (the operator allows: "
            "localhost/poolkeeper-test/*, " +
                std::string(kDefaultImage) + "; --allowed-pooler-images)");
  EXPECT_TRUE(CheckPodPolicy(PolicyOf({"localhost/poolkeeper-test/*"}),
                             Pool("localhost/poolkeeper-test/pgbouncer:1.18.0"))
                  .empty());
}

TEST(CheckPodSpecPolicy, ChecksEveryContainerOfARenderedOrRunningPod) {
  json spec = {
      {"initContainers", {{{"name", "init"}, {"image", "attacker.example/init:1"}}}},
      {"containers",
       {{{"name", "pgbouncer"}, {"image", kDefaultImage}},
        {{"name", "sidecar"}, {"image", "attacker.example/sidecar:1"}}}},
      {"tolerations", {{{"operator", "Exists"}}}},
      {"priorityClassName", "system-node-critical"},
      {"hostNetwork", true},
  };
  std::vector<std::string> fields;
  for (const auto& issue : CheckPodSpecPolicy(PolicyOf({}), spec, "spec")) {
    fields.push_back(issue.field);
  }
  EXPECT_EQ(fields, (std::vector<std::string>{"spec.initContainers[0].image",
                                              "spec.containers[1].image", "spec.tolerations[0]",
                                              "spec.priorityClassName", "spec.hostNetwork"}));
  EXPECT_TRUE(CheckPodSpecPolicy(
                  PolicyOf({}),
                  {{"containers", {{{"name", "pgbouncer"}, {"image", kDefaultImage}}}}}, "spec")
                  .empty());
}

}  // namespace
}  // namespace poolkeeper::api
