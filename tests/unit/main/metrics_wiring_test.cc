// OperatorMetrics: that reconciles land in the right series, that the scrape-time figures are the
// sources' at each scrape, and that the exposition keeps every family's name, type and labels
// (docs/operating.md and the cluster tests read them). prometheus-cpp itself is not re-tested.
#include "main/metrics_wiring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>

namespace poolkeeper::cli {
namespace {

// Figures a test sets; the sources read them at every scrape, as the manager's would.
struct Figures {
  controller::QueueFigures queue{.depth = 3, .adds = 12, .retries = 2};
  uint64_t events = 5;
  uint64_t events_dropped = 6;
  uint64_t relists = 1;
  kube::RequestCountMap api = {{{"get", 200}, 7}, {{"apply", 200}, 4}, {{"list", 0}, 1}};
  kube::RequestCountMap election = {{{"update", 200}, 9}};
  bool leading = true;
  std::vector<controller::PoolBudgetFigures> budgets = {
      {.ns = "shop", .name = "orders", .usable = 25, .allocated = 20, .headroom = 5}};
  std::vector<controller::ServerFigures> servers = {{.name = "main",
                                                     .max_connections = 30,
                                                     .in_use_by_others = 2,
                                                     .usable = 25,
                                                     .allocated = 20,
                                                     .headroom = 5,
                                                     .reachable = true,
                                                     .observation_age_seconds = 4}};
};

MetricSources SourcesFor(const Figures& f) {
  return {.queue = [&f] { return f.queue; },
          .events_written = [&f] { return f.events; },
          .events_dropped = [&f] { return f.events_dropped; },
          .relists = [&f] { return f.relists; },
          .api_requests = [&f] { return f.api; },
          .election_requests = [&f] { return f.election; },
          .leading = [&f] { return f.leading; },
          .budgets = [&f] { return f.budgets; },
          .servers = [&f] { return f.servers; }};
}

std::unique_ptr<OperatorMetrics> Registered(const Figures& figures) {
  auto metrics = OperatorMetrics::Register(SourcesFor(figures));
  if (!metrics) throw std::runtime_error(metrics.error().ToString());
  return std::move(*metrics);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool HasLine(const std::string& text, const std::string& line) {
  return text.starts_with(line + "\n") || text.find("\n" + line + "\n") != std::string::npos;
}

TEST(OperatorMetrics, EachReconcileOutcomeCountsUnderItsOwnLabel) {
  struct Case {
    std::vector<std::string> outcomes;
    std::vector<std::string> lines;
  };
  for (const Case& c : std::vector<Case>{
           {{"success", "success", "requeue"},
            {"poolkeeper_reconcile_total{outcome=\"success\"} 2",
             "poolkeeper_reconcile_total{outcome=\"requeue\"} 1",
             "poolkeeper_reconcile_errors_total 0",
             "poolkeeper_reconcile_duration_seconds_count 3"}},
           {{"error", "success", "error"},
            {"poolkeeper_reconcile_total{outcome=\"error\"} 2",
             "poolkeeper_reconcile_total{outcome=\"success\"} 1",
             "poolkeeper_reconcile_errors_total 2",
             "poolkeeper_reconcile_duration_seconds_count 3"}},
       }) {
    Figures figures;
    auto metrics = Registered(figures);
    for (const std::string& outcome : c.outcomes) metrics->ObserveReconcile(0.02, outcome);
    std::string text = metrics->Exposition();
    for (const std::string& line : c.lines)
      EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
}

TEST(OperatorMetrics, ReconcileDurationsFallInTheDocumentedBuckets) {
  Figures figures;
  auto metrics = Registered(figures);
  metrics->ObserveReconcile(0.0078125, "success");  // binary fractions: the sum prints exactly
  metrics->ObserveReconcile(3, "success");
  std::string text = metrics->Exposition();
  for (const char* line : {
           "poolkeeper_reconcile_duration_seconds_bucket{le=\"0.005\"} 0",
           "poolkeeper_reconcile_duration_seconds_bucket{le=\"0.01\"} 1",
           "poolkeeper_reconcile_duration_seconds_bucket{le=\"2.5\"} 1",
           "poolkeeper_reconcile_duration_seconds_bucket{le=\"5\"} 2",
           "poolkeeper_reconcile_duration_seconds_bucket{le=\"10\"} 2",
           "poolkeeper_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2",
           "poolkeeper_reconcile_duration_seconds_sum 3.0078125",
           "poolkeeper_reconcile_duration_seconds_count 2",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
}

TEST(OperatorMetrics, BeforeTheFirstReconcileUnlabeledSeriesShowZeroAndOutcomesNothing) {
  Figures figures;
  std::string text = Registered(figures)->Exposition();
  EXPECT_TRUE(HasLine(text, "poolkeeper_reconcile_errors_total 0")) << text;
  EXPECT_TRUE(HasLine(text, "poolkeeper_reconcile_duration_seconds_count 0")) << text;
  EXPECT_EQ(text.find("poolkeeper_reconcile_total"), std::string::npos) << text;
}

TEST(OperatorMetrics, ScrapesReportTheSourcesFiguresOfThatMoment) {
  Figures figures;
  auto metrics = Registered(figures);
  std::string text = metrics->Exposition();
  for (const char* line : {
           "poolkeeper_workqueue_depth 3",
           "poolkeeper_workqueue_adds_total 12",
           "poolkeeper_workqueue_retries_total 2",
           "poolkeeper_events_total 5",
           "poolkeeper_events_dropped_total 6",
           "poolkeeper_informer_relists_total 1",
           "poolkeeper_leader 1",
           "poolkeeper_api_requests_total{code=\"0\",verb=\"list\"} 1",
           "poolkeeper_api_requests_total{code=\"200\",verb=\"apply\"} 4",
           "poolkeeper_api_requests_total{code=\"200\",verb=\"get\"} 7",
           "poolkeeper_leader_election_requests_total{code=\"200\",verb=\"update\"} 9",
           "poolkeeper_pool_budget_usable_connections{namespace=\"shop\",pool=\"orders\"} 25",
           "poolkeeper_pool_budget_allocated_connections{namespace=\"shop\",pool=\"orders\"} 20",
           "poolkeeper_pool_budget_headroom_connections{namespace=\"shop\",pool=\"orders\"} 5",
           "poolkeeper_server_max_connections{server=\"main\"} 30",
           "poolkeeper_server_in_use_by_others_connections{server=\"main\"} 2",
           "poolkeeper_server_usable_connections{server=\"main\"} 25",
           "poolkeeper_server_allocated_connections{server=\"main\"} 20",
           "poolkeeper_server_headroom_connections{server=\"main\"} 5",
           "poolkeeper_server_reachable{server=\"main\"} 1",
           "poolkeeper_server_observation_age_seconds{server=\"main\"} 4",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }

  figures.queue.depth = 0;
  figures.leading = false;
  figures.budgets[0].headroom = -3;  // an overrun server
  figures.servers[0].reachable = false;
  text = metrics->Exposition();
  for (const char* line : {
           "poolkeeper_workqueue_depth 0",
           "poolkeeper_leader 0",
           "poolkeeper_pool_budget_headroom_connections{namespace=\"shop\",pool=\"orders\"} -3",
           "poolkeeper_server_reachable{server=\"main\"} 0",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
}

TEST(OperatorMetrics, FamiliesWithoutSeriesAreLeftOut) {
  Figures figures;
  figures.api.clear();
  figures.budgets.clear();
  figures.servers[0].observation_age_seconds.reset();  // never observed
  std::string text = Registered(figures)->Exposition();
  for (const char* absent : {"poolkeeper_api_requests_total", "poolkeeper_pool_budget_",
                             "poolkeeper_server_observation_age_seconds"}) {
    EXPECT_EQ(text.find(absent), std::string::npos) << absent << "\n" << text;
  }
  EXPECT_TRUE(HasLine(text, "poolkeeper_server_reachable{server=\"main\"} 1")) << text;
}

TEST(OperatorMetrics, ASourceThatThrowsCostsTheScrapeOnlyTheScrapedFigures) {
  Figures figures;
  MetricSources sources = SourcesFor(figures);
  sources.servers = []() -> std::vector<controller::ServerFigures> {
    throw std::runtime_error("cache gone");
  };
  auto metrics = OperatorMetrics::Register(std::move(sources));
  ASSERT_TRUE(metrics.has_value());
  std::string text = (*metrics)->Exposition();
  EXPECT_TRUE(HasLine(text, "poolkeeper_reconcile_errors_total 0")) << text;
  EXPECT_EQ(text.find("poolkeeper_server_"), std::string::npos) << text;
}

// The names, types and label sets docs/operating.md documents, all in one scrape, each family
// once with HELP and TYPE, sorted by name.
TEST(OperatorMetrics, ExposesEveryDocumentedFamilyWithItsTypeAndLabels) {
  const std::map<std::string, std::pair<std::string, std::string>> documented = {
      {"poolkeeper_reconcile_total", {"counter", "{outcome="}},
      {"poolkeeper_reconcile_errors_total", {"counter", ""}},
      {"poolkeeper_reconcile_duration_seconds", {"histogram", ""}},
      {"poolkeeper_workqueue_depth", {"gauge", ""}},
      {"poolkeeper_workqueue_adds_total", {"counter", ""}},
      {"poolkeeper_workqueue_retries_total", {"counter", ""}},
      {"poolkeeper_events_total", {"counter", ""}},
      {"poolkeeper_events_dropped_total", {"counter", ""}},
      {"poolkeeper_informer_relists_total", {"counter", ""}},
      {"poolkeeper_api_requests_total", {"counter", "{code=\"200\",verb="}},
      {"poolkeeper_leader_election_requests_total", {"counter", "{code=\"200\",verb="}},
      {"poolkeeper_leader", {"gauge", ""}},
      {"poolkeeper_heap_bytes", {"gauge", "{state="}},
      {"poolkeeper_pool_budget_usable_connections", {"gauge", "{namespace=\"shop\",pool="}},
      {"poolkeeper_pool_budget_allocated_connections", {"gauge", "{namespace=\"shop\",pool="}},
      {"poolkeeper_pool_budget_headroom_connections", {"gauge", "{namespace=\"shop\",pool="}},
      {"poolkeeper_server_max_connections", {"gauge", "{server="}},
      {"poolkeeper_server_in_use_by_others_connections", {"gauge", "{server="}},
      {"poolkeeper_server_usable_connections", {"gauge", "{server="}},
      {"poolkeeper_server_allocated_connections", {"gauge", "{server="}},
      {"poolkeeper_server_headroom_connections", {"gauge", "{server="}},
      {"poolkeeper_server_reachable", {"gauge", "{server="}},
      {"poolkeeper_server_observation_age_seconds", {"gauge", "{server="}},
  };
  Figures figures;
  auto metrics = Registered(figures);
  metrics->ObserveReconcile(0.1, "success");
  std::string text = metrics->Exposition();

  std::vector<std::string> typed;  // family names in exposition order
  std::string previous;
  for (const std::string& line : Lines(text)) {
    if (line.starts_with("# TYPE ")) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      typed.push_back(name);
      ASSERT_TRUE(documented.contains(name)) << "undocumented family " << name;
      EXPECT_EQ(rest.substr(name.size() + 1), documented.at(name).first) << name;
      EXPECT_TRUE(previous.starts_with("# HELP " + name + " ")) << name << ": " << previous;
    }
    previous = line;
  }
  EXPECT_EQ(typed.size(), documented.size()) << text;
  EXPECT_TRUE(std::is_sorted(typed.begin(), typed.end())) << text;
  for (const auto& [name, definition] : documented) {
    if (definition.first == "histogram") continue;
    // An unlabeled family's sample is "name value"; a labeled one's starts with its label set.
    std::string sample = "\n" + name + (definition.second.empty() ? " " : definition.second);
    EXPECT_NE(text.find(sample), std::string::npos) << sample << "\n" << text;
  }
}

}  // namespace
}  // namespace poolkeeper::cli
