#include "controller/holdings.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

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

// The index keeps pods by server and by pool: a pod whose server or pool changes, or that is
// removed or expires, must leave the old server's and pool's share.
TEST(HoldingsIndex, APodThatMovesOrGoesLeavesItsOldServerAndPool) {
  struct Case {
    std::string name;
    std::function<void(HoldingsIndex&, FakeClock&)> change;
    std::map<std::string, int64_t> on_db, on_other;
    size_t pods_of_a, pods_of_b;
    std::set<std::string> addresses_on_db;
  };
  auto with_ip = [](std::shared_ptr<const json> pod, const std::string& ip) {
    json copy = *pod;
    copy["status"]["podIP"] = ip;
    return std::make_shared<const json>(std::move(copy));
  };
  const std::vector<Case> cases = {
      {"nothing changes",
       [](HoldingsIndex&, FakeClock&) {},
       {{"shop/a", 5}},
       {},
       1,
       0,
       {"10.0.0.1"}},
      {"moved to another server",
       [&](HoldingsIndex& index, FakeClock&) {
         index.UpsertPod(with_ip(Pod("a-0", "a", "other:5432", 5), "10.0.0.1"));
       },
       {},
       {{"shop/a", 5}},
       1,
       0,
       {}},
      {"relabelled to another pool",
       [&](HoldingsIndex& index, FakeClock&) {
         index.UpsertPod(with_ip(Pod("a-0", "b", "db:5432", 5), "10.0.0.1"));
       },
       {{"shop/b", 5}},
       {},
       0,
       1,
       {"10.0.0.1"}},
      {"removed",
       [](HoldingsIndex& index, FakeClock&) { index.RemovePod(*Pod("a-0", "a", "db:5432", 5)); },
       {},
       {},
       0,
       0,
       {}},
      {"re-created elsewhere, never confirmed, then expired",
       [&](HoldingsIndex& index, FakeClock& clock) {
         index.RemovePod(*Pod("a-0", "a", "db:5432", 5));
         index.UpsertCreatedPod(with_ip(Pod("a-0", "a", "other:5432", 5), "10.0.0.1"));
         clock.Advance(HoldingsIndex::kUnconfirmedFor + std::chrono::seconds(1));
       },
       {},
       {},
       0,
       0,
       {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeClock clock;
    HoldingsIndex index(clock);
    index.UpsertPod(with_ip(Pod("a-0", "a", "db:5432", 5), "10.0.0.1"));
    c.change(index, clock);
    EXPECT_EQ(index.OnServer("db:5432"), c.on_db);
    EXPECT_EQ(index.OnServer("other:5432"), c.on_other);
    EXPECT_EQ(index.PodsOf("shop/a").size(), c.pods_of_a);
    EXPECT_EQ(index.PodsOf("shop/b").size(), c.pods_of_b);
    EXPECT_EQ(index.PodAddresses({"db:5432"}), c.addresses_on_db);
  }
}

TEST(HoldingsIndex, AnAdmittedPoolThatMovesServerOrGoesLeavesItsOldServer) {
  FakeClock clock;
  HoldingsIndex index(clock);
  json moved = ConfigMap("a", 15, 5);
  index.UpsertAdmitted(moved);
  index.UpsertAdmitted(ConfigMap("b", 10, 5));
  moved["metadata"]["annotations"]["poolkeeper.io/server"] = "other:5432";
  index.UpsertAdmitted(moved);
  EXPECT_EQ(index.OnServer("db:5432"), (std::map<std::string, int64_t>{{"shop/b", 10}}));
  EXPECT_EQ(index.OnServer("other:5432"), (std::map<std::string, int64_t>{{"shop/a", 15}}));
  index.RemoveAdmitted(moved);
  index.UpsertAdmitted(ConfigMap("b", 10, 5, /*owned=*/false));
  EXPECT_TRUE(index.OnServer("db:5432").empty());
  EXPECT_TRUE(index.OnServer("other:5432").empty());
}

}  // namespace
}  // namespace poolkeeper::controller
