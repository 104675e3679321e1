#include "http/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

namespace poolkeeper::http {
namespace {

TEST(FormatValue, WritesWhatClientGolangWrites) {
  struct Case {
    double value;
    const char* text;
  };
  const double inf = std::numeric_limits<double>::infinity();
  for (const Case& c : std::vector<Case>{{0, "0"},
                                         {-0.0, "0"},
                                         {1, "1"},
                                         {-1, "-1"},
                                         {0.25, "0.25"},
                                         {123456, "123456"},
                                         {1e6, "1e+06"},
                                         {1234567, "1.234567e+06"},
                                         {1e21, "1e+21"},
                                         {0.0001, "0.0001"},
                                         {0.00001, "1e-05"},
                                         {0.1, "0.1"},
                                         {inf, "+Inf"},
                                         {-inf, "-Inf"},
                                         {std::nan(""), "NaN"}}) {
    EXPECT_EQ(FormatValue(c.value), c.text) << c.value;
  }
}

TEST(Escaping, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\nd"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(EscapeLabelValue("plain/value:1"), "plain/value:1");
}

TEST(Escaping, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp("say \"hi\"\\\nnext"), R"(say "hi"\\\nnext)");
}

TEST(AppendFamily, WritesHandBuiltSeriesAndPadsMissingLabelValues) {
  FamilyInfo info{"jobs", "Jobs.", MetricType::kGauge, {"b", "a"}};
  std::vector<Series> series(2);
  series[0].label_values = {"2", "x"};
  series[0].value = 1;
  series[1].label_values = {"1"};
  series[1].value = 2;
  std::string out = "# existing\n";
  AppendFamily(info, series, out);
  EXPECT_EQ(out,
            "# existing\n"
            "# HELP jobs Jobs.\n"
            "# TYPE jobs gauge\n"
            "jobs{a=\"\",b=\"1\"} 2\n"
            "jobs{a=\"x\",b=\"2\"} 1\n");
}

TEST(Registry, RendersFamiliesSortedByNameWithHelpAndType) {
  Registry registry;
  auto gauge = registry.AddGauge("zeta_pools", "Pools known.");
  auto counter = registry.AddCounter("alpha_reconciles_total", "Reconciles done.");
  ASSERT_TRUE(gauge.has_value());
  ASSERT_TRUE(counter.has_value());
  (*counter)->With({}).Increment(3);
  (*gauge)->With({}).Set(2.5);
  EXPECT_EQ(registry.Render(),
            "# HELP alpha_reconciles_total Reconciles done.\n"
            "# TYPE alpha_reconciles_total counter\n"
            "alpha_reconciles_total 3\n"
            "# HELP zeta_pools Pools known.\n"
            "# TYPE zeta_pools gauge\n"
            "zeta_pools 2.5\n");
}

TEST(Registry, UnlabeledFamiliesAreExposedAtZeroBeforeTheFirstEvent) {
  Registry registry;
  ASSERT_TRUE(registry.AddCounter("events_total", "Events.").has_value());
  EXPECT_EQ(registry.Render(),
            "# HELP events_total Events.\n"
            "# TYPE events_total counter\n"
            "events_total 0\n");
}

TEST(Registry, LabeledFamiliesWithoutSeriesAreLeftOut) {
  Registry registry;
  ASSERT_TRUE(registry.AddCounter("errors_total", "Errors.", {"code"}).has_value());
  EXPECT_EQ(registry.Render(), "");
}

TEST(Registry, SortsLabelsByNameAndSeriesByTheirValues) {
  Registry registry;
  auto family = registry.AddGauge("pool_headroom", "Headroom.", {"pool", "namespace"});
  ASSERT_TRUE(family.has_value());
  (*family)->With({"orders", "shop"}).Set(4);
  (*family)->With({"billing", "shop"}).Set(1);
  (*family)->With({"zzz", "admin"}).Set(7);
  EXPECT_EQ(registry.Render(),
            "# HELP pool_headroom Headroom.\n"
            "# TYPE pool_headroom gauge\n"
            "pool_headroom{namespace=\"admin\",pool=\"zzz\"} 7\n"
            "pool_headroom{namespace=\"shop\",pool=\"billing\"} 1\n"
            "pool_headroom{namespace=\"shop\",pool=\"orders\"} 4\n");
}

TEST(Registry, EscapesLabelValuesAndHelpInTheExposition) {
  Registry registry;
  auto family = registry.AddCounter("weird_total", "Line one\nline \\two", {"v"});
  ASSERT_TRUE(family.has_value());
  (*family)->With({"a\"b\\c\nd"}).Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP weird_total Line one\\nline \\\\two\n"
            "# TYPE weird_total counter\n"
            "weird_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(Registry, WrongLabelArityIsPaddedOrTruncated) {
  Registry registry;
  auto family = registry.AddCounter("calls_total", "Calls.", {"a", "b"});
  ASSERT_TRUE(family.has_value());
  (*family)->With({"x"}).Increment();
  (*family)->With({"x", "y", "z"}).Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP calls_total Calls.\n"
            "# TYPE calls_total counter\n"
            "calls_total{a=\"x\",b=\"\"} 1\n"
            "calls_total{a=\"x\",b=\"y\"} 1\n");
}

TEST(Counter, IgnoresNegativeAndNaNIncrements) {
  Counter counter;
  counter.Increment();
  counter.Increment(2.5);
  counter.Increment(-10);
  counter.Increment(std::nan(""));
  EXPECT_EQ(counter.Value(), 3.5);
}

TEST(Gauge, SetsAndAdds) {
  Gauge gauge;
  gauge.Set(10);
  gauge.Add(-2.5);
  EXPECT_EQ(gauge.Value(), 7.5);
}

TEST(Histogram, BucketsAreCumulativeWithValuesOnABoundInThatBucket) {
  Histogram histogram({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 1.0, 7.0, 100.0}) histogram.Observe(v);
  Histogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.bounds, (std::vector<double>{0.1, 1, 10}));
  EXPECT_EQ(snapshot.cumulative, (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(snapshot.count, 6u);
  EXPECT_DOUBLE_EQ(snapshot.sum, 108.65);
}

TEST(Histogram, NaNLandsOnlyInInf) {
  Histogram histogram({1});
  histogram.Observe(std::nan(""));
  EXPECT_EQ(histogram.Read().cumulative, (std::vector<uint64_t>{0, 1}));
}

TEST(Registry, RendersHistogramsWithCumulativeBucketsInfSumAndCountAndLeLast) {
  Registry registry;
  auto family =
      registry.AddHistogram("reconcile_seconds", "Reconcile duration.", {0.5, 2}, {"result"});
  ASSERT_TRUE(family.has_value());
  Histogram& ok = (*family)->With({"ok"});
  ok.Observe(0.25);
  ok.Observe(1);
  ok.Observe(3);
  EXPECT_EQ(registry.Render(),
            "# HELP reconcile_seconds Reconcile duration.\n"
            "# TYPE reconcile_seconds histogram\n"
            "reconcile_seconds_bucket{result=\"ok\",le=\"0.5\"} 1\n"
            "reconcile_seconds_bucket{result=\"ok\",le=\"2\"} 2\n"
            "reconcile_seconds_bucket{result=\"ok\",le=\"+Inf\"} 3\n"
            "reconcile_seconds_sum{result=\"ok\"} 4.25\n"
            "reconcile_seconds_count{result=\"ok\"} 3\n");
}

TEST(Registry, UnlabeledHistogramRendersOnlyLe) {
  Registry registry;
  ASSERT_TRUE(registry.AddHistogram("scrape_seconds", "Scrapes.", {1}).has_value());
  EXPECT_EQ(registry.Render(),
            "# HELP scrape_seconds Scrapes.\n"
            "# TYPE scrape_seconds histogram\n"
            "scrape_seconds_bucket{le=\"1\"} 0\n"
            "scrape_seconds_bucket{le=\"+Inf\"} 0\n"
            "scrape_seconds_sum 0\n"
            "scrape_seconds_count 0\n");
}

TEST(Registry, RegisteringTheSameDefinitionReturnsTheSameFamily) {
  Registry registry;
  auto first = registry.AddCounter("x_total", "X.", {"a"});
  auto again = registry.AddCounter("x_total", "X.", {"a"});
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*first, *again);
}

TEST(Registry, RefusesInvalidDefinitions) {
  struct Case {
    const char* what;
    std::function<Status(Registry&)> add;
  };
  auto status = [](auto result) -> Status {
    if (!result) return std::unexpected(result.error());
    return {};
  };
  std::vector<Case> cases = {
      {"empty name", [&](Registry& r) { return status(r.AddCounter("", "h")); }},
      {"leading digit", [&](Registry& r) { return status(r.AddCounter("1abc", "h")); }},
      {"dash", [&](Registry& r) { return status(r.AddGauge("a-b", "h")); }},
      {"label with colon", [&](Registry& r) { return status(r.AddGauge("a", "h", {"a:b"})); }},
      {"reserved label", [&](Registry& r) { return status(r.AddGauge("a", "h", {"__x"})); }},
      {"duplicate label",
       [&](Registry& r) {
         return status(r.AddGauge("a", "h", {"x", "x"}));
       }},
      {"le on histogram",
       [&](Registry& r) { return status(r.AddHistogram("a", "h", {1}, {"le"})); }},
      {"unsorted bounds",
       [&](Registry& r) {
         return status(r.AddHistogram("a", "h", {2, 1}));
       }},
      {"equal bounds",
       [&](Registry& r) {
         return status(r.AddHistogram("a", "h", {1, 1}));
       }},
      {"infinite bound",
       [&](Registry& r) {
         return status(r.AddHistogram("a", "h", {1, std::numeric_limits<double>::infinity()}));
       }},
      {"collected histogram",
       [&](Registry& r) {
         return status(
             r.AddCollector({{"a", "h", MetricType::kHistogram, {}}}, [](CollectorOutput&) {}));
       }},
  };
  for (const Case& c : cases) {
    Registry registry;
    Status result = c.add(registry);
    ASSERT_FALSE(result.has_value()) << c.what;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalid) << c.what;
  }
}

TEST(Registry, AcceptsNamesWithColonsAndLeOnNonHistograms) {
  Registry registry;
  EXPECT_TRUE(registry.AddCounter("job:requests:rate5m", "h").has_value());
  EXPECT_TRUE(registry.AddGauge("_g", "h", {"le", "_x1"}).has_value());
}

TEST(Registry, RefusesAnotherDefinitionUnderANameInUse) {
  struct Case {
    const char* what;
    std::function<Status(Registry&)> add;
  };
  auto status = [](auto result) -> Status {
    if (!result) return std::unexpected(result.error());
    return {};
  };
  // The registry holds counter "a_total" {x}, histogram "lat" and counter "q_sum".
  std::vector<Case> cases = {
      {"other type", [&](Registry& r) { return status(r.AddGauge("a_total", "A.", {"x"})); }},
      {"other help", [&](Registry& r) { return status(r.AddCounter("a_total", "B.", {"x"})); }},
      {"other labels", [&](Registry& r) { return status(r.AddCounter("a_total", "A.", {"y"})); }},
      {"histogram suffix _count",
       [&](Registry& r) { return status(r.AddCounter("lat_count", "h")); }},
      {"histogram suffix _bucket",
       [&](Registry& r) { return status(r.AddGauge("lat_bucket", "h")); }},
      {"histogram whose _sum is a counter",
       [&](Registry& r) { return status(r.AddHistogram("q", "h", {1})); }},
      {"other bounds", [&](Registry& r) { return status(r.AddHistogram("lat", "L.", {2})); }},
      {"collector over a family",
       [&](Registry& r) {
         return status(
             r.AddCollector({{"lat_sum", "h", MetricType::kGauge, {}}}, [](CollectorOutput&) {}));
       }},
  };
  for (const Case& c : cases) {
    Registry registry;
    ASSERT_TRUE(registry.AddCounter("a_total", "A.", {"x"}).has_value());
    ASSERT_TRUE(registry.AddCounter("q_sum", "Q.").has_value());
    ASSERT_TRUE(registry.AddHistogram("lat", "L.", {1}).has_value());
    Status result = c.add(registry);
    ASSERT_FALSE(result.has_value()) << c.what;
    EXPECT_EQ(result.error().code, ErrorCode::kAlreadyExists) << c.what;
  }
}

TEST(Collector, ReportsDeclaredFamiliesAtRenderTime) {
  Registry registry;
  double backlog = 3;
  auto handle =
      registry.AddCollector({{"queue_depth", "Keys waiting.", MetricType::kGauge, {"queue"}},
                             {"queue_adds_total", "Keys added.", MetricType::kCounter, {}}},
                            [&](CollectorOutput& out) {
                              out.Add("queue_depth", {"pools"}, backlog);
                              out.Add("queue_adds_total", {}, 12);
                              out.Add("undeclared", {}, 1);  // dropped
                            });
  ASSERT_TRUE(handle.has_value());
  EXPECT_EQ(registry.Render(),
            "# HELP queue_adds_total Keys added.\n"
            "# TYPE queue_adds_total counter\n"
            "queue_adds_total 12\n"
            "# HELP queue_depth Keys waiting.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth{queue=\"pools\"} 3\n");
  backlog = 5;
  EXPECT_NE(registry.Render().find("queue_depth{queue=\"pools\"} 5\n"), std::string::npos);
}

TEST(Collector, SameLabelsTwiceKeepTheLastValueAndEmptyFamiliesAreLeftOut) {
  Registry registry;
  auto handle = registry.AddCollector(
      {{"a", "A.", MetricType::kGauge, {"k"}}, {"b", "B.", MetricType::kGauge, {}}},
      [](CollectorOutput& out) {
        out.Add("a", {"x"}, 1);
        out.Add("a", {"x"}, 2);
      });
  ASSERT_TRUE(handle.has_value());
  EXPECT_EQ(registry.Render(), "# HELP a A.\n# TYPE a gauge\na{k=\"x\"} 2\n");
}

TEST(Collector, ResetUnregistersAndFreesItsNames) {
  Registry registry;
  int calls = 0;
  auto handle =
      registry.AddCollector({{"up", "Up.", MetricType::kGauge, {}}}, [&](CollectorOutput& out) {
        ++calls;
        out.Add("up", {}, 1);
      });
  ASSERT_TRUE(handle.has_value());
  EXPECT_EQ(registry.AddGauge("up", "h").error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(registry.Render(), "# HELP up Up.\n# TYPE up gauge\nup 1\n");
  handle->Reset();
  EXPECT_EQ(registry.Render(), "");
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(registry.AddGauge("up", "h").has_value());
}

TEST(Collector, DestroyingTheHandleUnregisters) {
  Registry registry;
  int calls = 0;
  {
    auto handle = registry.AddCollector({{"up", "Up.", MetricType::kGauge, {}}},
                                        [&](CollectorOutput&) { ++calls; });
    ASSERT_TRUE(handle.has_value());
    registry.Render();
  }
  registry.Render();
  EXPECT_EQ(calls, 1);
}

TEST(Collector, MoveAssignmentUnregistersTheOverwrittenCollector) {
  Registry registry;
  auto first = registry.AddCollector({{"a", "A.", MetricType::kGauge, {}}},
                                     [](CollectorOutput& out) { out.Add("a", {}, 1); });
  auto second = registry.AddCollector({{"b", "B.", MetricType::kGauge, {}}},
                                      [](CollectorOutput& out) { out.Add("b", {}, 2); });
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  *first = std::move(*second);
  EXPECT_EQ(registry.Render(), "# HELP b B.\n# TYPE b gauge\nb 2\n");
}

TEST(Collector, HandleMayOutliveTheRegistry) {
  CollectorHandle handle;
  {
    Registry registry;
    auto added =
        registry.AddCollector({{"a", "A.", MetricType::kGauge, {}}}, [](CollectorOutput&) {});
    ASSERT_TRUE(added.has_value());
    handle = std::move(*added);
  }
  handle.Reset();  // must not touch the destroyed registry
}

TEST(Collector, AThrowingCollectorLosesOnlyItsOwnSamples) {
  Registry registry;
  auto bad =
      registry.AddCollector({{"bad", "B.", MetricType::kGauge, {}}}, [](CollectorOutput& out) {
        out.Add("bad", {}, 1);
        throw std::runtime_error("boom");
      });
  auto good = registry.AddCollector({{"good", "G.", MetricType::kGauge, {}}},
                                    [](CollectorOutput& out) { out.Add("good", {}, 1); });
  ASSERT_TRUE(bad.has_value());
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(registry.Render(), "# HELP good G.\n# TYPE good gauge\ngood 1\n");
}

TEST(Collector, TwoCollectorsMayNotShareAName) {
  Registry registry;
  auto first = registry.AddCollector({{"a", "A.", MetricType::kGauge, {}}}, [](auto&) {});
  auto second = registry.AddCollector({{"a", "A.", MetricType::kGauge, {}}}, [](auto&) {});
  ASSERT_TRUE(first.has_value());
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, ErrorCode::kAlreadyExists);
}

TEST(Registry, CountsEveryIncrementFromManyThreadsWhileScraping) {
  Registry registry;
  auto counter = registry.AddCounter("hits_total", "Hits.", {"worker"});
  auto histogram = registry.AddHistogram("work_seconds", "Work.", {0.5});
  ASSERT_TRUE(counter.has_value());
  ASSERT_TRUE(histogram.has_value());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter& shared = (*counter)->With({"all"});
      for (int i = 0; i < kPerThread; ++i) {
        shared.Increment();
        (*counter)->With({"w" + std::to_string(t % 2)}).Increment();
        (*histogram)->With({}).Observe(i % 2 == 0 ? 0.25 : 1);
      }
    });
  }
  // Scrape while they run: every exposition must stay well formed (no torn lines).
  for (int i = 0; i < 20; ++i) {
    std::string text = registry.Render();
    EXPECT_EQ(text.back(), '\n');
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ((*counter)->With({"all"}).Value(), kThreads * kPerThread);
  EXPECT_EQ((*counter)->With({"w0"}).Value() + (*counter)->With({"w1"}).Value(),
            kThreads * kPerThread);
  Histogram::Snapshot snapshot = (*histogram)->With({}).Read();
  EXPECT_EQ(snapshot.count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(snapshot.cumulative.front(), static_cast<uint64_t>(kThreads * kPerThread / 2));
}

}  // namespace
}  // namespace poolkeeper::http
