// ForeignNames (foreign_names.h): the names of the owned kinds held by objects poolkeeper does not
// manage, from label-selected caches trimmed to who holds a name; a cache that has not listed
// answers kUnknown, so the writer asks the API server instead.
#include "controller/foreign_names.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "../kube/fake_transport.h"

namespace poolkeeper::controller {
namespace {

using kube::testing::FakeTransport;
using nlohmann::json;

json Foreign(const std::string& kind, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", kind},
          {"metadata",
           {{"namespace", "shop"},
            {"name", name},
            {"uid", "uid-" + name},
            {"resourceVersion", "5"},
            {"labels", {{"app", "shop"}}},
            {"annotations", {{"note", std::string(2000, 'x')}}},
            {"ownerReferences",
             {{{"apiVersion", "apps/v1"},
               {"kind", "Deployment"},
               {"name", "shop"},
               {"uid", "d-1"},
               {"controller", true}}}}}},
          {"data", {{"big", std::string(4000, 'y')}}}};
}

json List(std::vector<json> items) {
  return {{"kind", "List"},
          {"apiVersion", "v1"},
          {"metadata", {{"resourceVersion", "10"}}},
          {"items", std::move(items)}};
}

TEST(ForeignNames, ListsEachOwnedKindWithTheComplementOfTheManagedBySelector) {
  FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  ForeignNames names(client, clock, std::chrono::seconds(60), {});
  names.Step();
  std::vector<std::string> lists;
  for (const auto& request : transport.Requests()) {
    EXPECT_NE(request.path.find("labelSelector=app.kubernetes.io%2Fmanaged-by%21%3Dpoolkeeper"),
              std::string::npos)
        << request.path;
    EXPECT_EQ(request.accept, "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
        << "names only: never a Secret's data";
    lists.push_back(request.path.substr(0, request.path.find('?')));
  }
  std::ranges::sort(lists);
  EXPECT_EQ(lists,
            (std::vector<std::string>{"/api/v1/configmaps", "/api/v1/secrets", "/api/v1/services",
                                      "/apis/policy/v1/poddisruptionbudgets"}));
}

TEST(ForeignNames, AnswersFromTheCachesOnceListedAndUnknownBefore) {
  FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  ForeignNames names(client, clock, std::chrono::seconds(60), {});
  EXPECT_EQ(names.Lookup("Secret", "shop", "app-auth"), NameState::kUnknown) << "not listed";

  transport.RespondJson("GET", "/api/v1/secrets", 200, List({Foreign("Secret", "app-auth")}));
  transport.RespondJson("GET", "/api/v1/configmaps", 200, List({}));
  names.Step();  // services and PodDisruptionBudgets are not scripted: their LIST fails
  struct Case {
    std::string kind, ns, name;
    NameState want;
  };
  for (const Case& c : std::vector<Case>{
           {"Secret", "shop", "app-auth", NameState::kTaken},
           {"Secret", "shop", "other-auth", NameState::kFree},
           {"Secret", "bank", "app-auth", NameState::kFree},
           {"ConfigMap", "shop", "app-auth", NameState::kFree},
           {"Service", "shop", "app", NameState::kUnknown},
           {"PodDisruptionBudget", "shop", "app", NameState::kUnknown},
           {"Deployment", "shop", "app", NameState::kUnknown},
       }) {
    EXPECT_EQ(names.Lookup(c.kind, c.ns, c.name), c.want) << c.kind << " " << c.ns << "/" << c.name;
  }
  EXPECT_FALSE(names.HasSynced());
}

TEST(ForeignNames, KeepsOnlyWhoHoldsTheName) {
  FakeTransport transport;
  kube::Client client(transport);
  FakeClock clock;
  ForeignNames names(client, clock, std::chrono::seconds(60), {});
  const json full = Foreign("ConfigMap", "app-config");
  transport.RespondJson("GET", "/api/v1/configmaps", 200, List({full}));
  names.Step();
  auto held = names.Find("ConfigMap", "shop", "app-config");
  ASSERT_TRUE(held);
  const json want = {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata",
       {{"namespace", "shop"},
        {"name", "app-config"},
        {"uid", "uid-app-config"},
        {"resourceVersion", "5"},
        {"ownerReferences", {{{"kind", "Deployment"}, {"name", "shop"}, {"uid", "d-1"}}}}}}};
  EXPECT_EQ(*held, want);
  names.Step();  // the ConfigMaps' watch (not scripted: it fails, the cache stays)
  const auto requests = transport.Requests();
  auto watch = std::ranges::find_if(requests, [](const kube::HttpRequest& r) {
    return r.path.find("watch=true") != std::string::npos;
  });
  ASSERT_NE(watch, requests.end());
  EXPECT_EQ(watch->accept, "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
  EXPECT_TRUE(names.Find("ConfigMap", "shop", "app-config"));
  std::cout << "foreign ConfigMap: " << full.dump().size() << " B as listed, "
            << held->dump().size() << " B cached\n";
}

}  // namespace
}  // namespace poolkeeper::controller
