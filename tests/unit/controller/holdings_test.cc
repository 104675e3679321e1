#include "controller/holdings.h"

#include <gtest/gtest.h>

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

std::shared_ptr<const json> Pod(const std::string& name, const std::string& pool,
                                const std::string& server, int connections,
                                const std::string& phase = "Running") {
  return std::make_shared<const json>(
      json{{"metadata",
            {{"name", name},
             {"namespace", "shop"},
             {"labels", {{"poolkeeper.io/pool", pool}}},
             {"annotations",
              {{"poolkeeper.io/server", server},
               {"poolkeeper.io/connections-per-pod", std::to_string(connections)}}}}},
           {"status", {{"phase", phase}}}});
}

json ConfigMap(const std::string& pool, int planned, int per_pod, bool owned = true) {
  json cm = {{"metadata",
              {{"name", pool + "-config"},
               {"namespace", "shop"},
               {"labels", {{"poolkeeper.io/pool", pool}}},
               {"annotations",
                {{"poolkeeper.io/server", "db:5432"},
                 {"poolkeeper.io/planned-connections", std::to_string(planned)},
                 {"poolkeeper.io/connections-per-pod", std::to_string(per_pod)}}}}}};
  if (owned) cm["metadata"]["ownerReferences"] = {{{"kind", "ConnectionPool"}, {"name", pool}}};
  return cm;
}

TEST(HoldingsIndex, ChargesEveryPodThatExistsOnItsOwnServer) {
  FakeClock clock;
  HoldingsIndex index(clock);
  index.UpsertPod(Pod("a-0", "a", "db:5432", 5));
  index.UpsertPod(Pod("a-1", "a", "db:5432", 7));            // an older, larger configuration
  index.UpsertPod(Pod("a-2", "a", "other:5432", 9));         // moved: charged where it connects
  index.UpsertPod(Pod("b-0", "b", "db:5432", 4, "Failed"));  // exited: holds nothing
  EXPECT_EQ(index.OnServer("db:5432"), (std::map<std::string, int64_t>{{"shop/a", 12}}));
  EXPECT_EQ(index.OnServer("other:5432"), (std::map<std::string, int64_t>{{"shop/a", 9}}));
  EXPECT_EQ(index.PodsOf("shop/a").size(), 3u);
  index.RemovePod(*Pod("a-1", "a", "db:5432", 7));
  EXPECT_EQ(index.OnServer("db:5432")["shop/a"], 5);
}

TEST(HoldingsIndex, APoolHoldsAtLeastWhatItWasAdmittedWith) {
  FakeClock clock;
  HoldingsIndex index(clock);
  index.UpsertAdmitted(ConfigMap("a", 15, 5));
  EXPECT_EQ(index.OnServer("db:5432")["shop/a"], 15) << "pods about to start";
  // A restarted container of an old pod loads the ConfigMap as it is now.
  index.UpsertAdmitted(ConfigMap("a", 5, 8));
  index.UpsertPod(Pod("a-0", "a", "db:5432", 5));
  EXPECT_EQ(index.OnServer("db:5432")["shop/a"], 8);
  // An orphaned ConfigMap (delete --cascade=orphan) admits nothing; its pods still count.
  index.UpsertAdmitted(ConfigMap("a", 99, 5, /*owned=*/false));
  EXPECT_EQ(index.OnServer("db:5432")["shop/a"], 5);
}

TEST(HoldingsIndex, APodTheOperatorCreatedCountsUntilTheInformerSeesItOrItExpires) {
  FakeClock clock;
  HoldingsIndex index(clock);
  index.UpsertCreatedPod(Pod("a-0", "a", "db:5432", 5));
  EXPECT_EQ(index.OnServer("db:5432")["shop/a"], 5);
  index.UpsertPod(Pod("a-0", "a", "db:5432", 5));  // confirmed: no longer expires
  index.UpsertCreatedPod(Pod("a-1", "a", "db:5432", 5));
  clock.Advance(HoldingsIndex::kUnconfirmedFor + std::chrono::seconds(1));
  EXPECT_EQ(index.OnServer("db:5432")["shop/a"], 5) << "a-1 was never seen: gone";
  EXPECT_EQ(index.PodsOf("shop/a").size(), 1u);
}

}  // namespace
}  // namespace poolkeeper::controller
