#include "main/metrics_wiring.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "common/log.h"
#include "common/memory.h"

namespace poolkeeper::cli {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  return MetricFamily{std::move(name), std::move(help), type, {}};
}

void Sample(MetricFamily& family, Labels labels, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

MetricFamily Requests(std::string name, std::string help, const kube::RequestCountMap& counts) {
  MetricFamily family = Family(std::move(name), std::move(help), MetricType::Counter);
  for (const auto& [key, count] : counts) {
    Sample(family, {{"verb", key.first}, {"code", std::to_string(key.second)}},
           static_cast<double>(count));
  }
  return family;
}

// Values other modules own, read when Prometheus scrapes rather than mirrored into counters, so
// they are never stale and nothing has to push them.
class ScrapedFigures : public prometheus::Collectable {
 public:
  explicit ScrapedFigures(MetricSources sources) : sources_(std::move(sources)) {}

  // A source that throws costs this scrape its figures, not the operator (nor the reconcile
  // metrics, which the registry reports apart).
  std::vector<MetricFamily> Collect() const override {
    try {
      return Figures();
    } catch (const std::exception& e) {
      Log(LogLevel::kWarn, "metrics: scrape-time figures left out of this scrape",
          {{"error", e.what()}});
    } catch (...) {
      Log(LogLevel::kWarn, "metrics: scrape-time figures left out of this scrape",
          {{"error", "unknown exception"}});
    }
    return {};
  }

 private:
  std::vector<MetricFamily> Figures() const {
    std::vector<MetricFamily> out;
    auto single = [&out](std::string name, std::string help, MetricType type, double value) {
      out.push_back(Family(std::move(name), std::move(help), type));
      Sample(out.back(), {}, value);
    };
    controller::QueueFigures queue = sources_.queue();
    single("poolkeeper_workqueue_depth", "Keys waiting in the work queue.", MetricType::Gauge,
           static_cast<double>(queue.depth));
    single("poolkeeper_workqueue_adds_total", "Keys added to the work queue.", MetricType::Counter,
           static_cast<double>(queue.adds));
    single("poolkeeper_workqueue_retries_total", "Keys re-added after a failure.",
           MetricType::Counter, static_cast<double>(queue.retries));
    single("poolkeeper_events_total", "Kubernetes Events written.", MetricType::Counter,
           static_cast<double>(sources_.events_written()));
    single("poolkeeper_events_dropped_total",
           "Kubernetes Events not written: the write queue was full or the pool over its rate.",
           MetricType::Counter, static_cast<double>(sources_.events_dropped()));
    single("poolkeeper_informer_relists_total",
           "Cache relists after the first list (an expired or broken watch).", MetricType::Counter,
           static_cast<double>(sources_.relists()));
    single("poolkeeper_leader", "1 while this replica holds the leader Lease (or runs alone).",
           MetricType::Gauge, sources_.leading() ? 1 : 0);
    const HeapFigures heap = ReadHeap();
    out.push_back(Family("poolkeeper_heap_bytes",
                         "The allocator's heap by state: in_use (live), free (freed, still held), "
                         "mapped (large blocks in their own mappings).",
                         MetricType::Gauge));
    Sample(out.back(), {{"state", "in_use"}}, static_cast<double>(heap.in_use));
    Sample(out.back(), {{"state", "free"}}, static_cast<double>(heap.free));
    Sample(out.back(), {{"state", "mapped"}}, static_cast<double>(heap.mapped));
    out.push_back(Requests("poolkeeper_api_requests_total",
                           "Requests to the Kubernetes API by verb and HTTP status code (0: no "
                           "response), leader election excluded.",
                           sources_.api_requests()));
    out.push_back(
        Requests("poolkeeper_leader_election_requests_total",
                 "Lease requests of leader election by verb and HTTP status code (0: no response).",
                 sources_.election_requests()));

    MetricFamily pool_usable =
        Family("poolkeeper_pool_budget_usable_connections",
               "Server connections usable by poolers on the pool's server.", MetricType::Gauge);
    MetricFamily pool_allocated = Family(
        "poolkeeper_pool_budget_allocated_connections",
        "Server connections the ledger has allocated on the pool's server.", MetricType::Gauge);
    MetricFamily pool_headroom =
        Family("poolkeeper_pool_budget_headroom_connections",
               "Usable server connections not allocated on the pool's server.", MetricType::Gauge);
    for (const auto& pool : sources_.budgets()) {
      Labels labels = {{"namespace", pool.ns}, {"pool", pool.name}};
      Sample(pool_usable, labels, static_cast<double>(pool.usable));
      Sample(pool_allocated, labels, static_cast<double>(pool.allocated));
      Sample(pool_headroom, labels, static_cast<double>(pool.headroom));
    }
    for (MetricFamily* family : {&pool_usable, &pool_allocated, &pool_headroom}) {
      out.push_back(std::move(*family));
    }

    MetricFamily max_connections =
        Family("poolkeeper_server_max_connections",
               "A PostgresServer's max_connections (observed, else declared).", MetricType::Gauge);
    MetricFamily in_use_by_others =
        Family("poolkeeper_server_in_use_by_others_connections",
               "Client connections to the server that are not poolkeeper's poolers, at the last "
               "observation.",
               MetricType::Gauge);
    MetricFamily usable = Family("poolkeeper_server_usable_connections",
                                 "Connections usable by poolers on the server.", MetricType::Gauge);
    MetricFamily allocated =
        Family("poolkeeper_server_allocated_connections",
               "Connections the ledger allocates on the server.", MetricType::Gauge);
    MetricFamily headroom =
        Family("poolkeeper_server_headroom_connections",
               "Usable connections not allocated on the server.", MetricType::Gauge);
    MetricFamily reachable =
        Family("poolkeeper_server_reachable",
               "1 when the last observation of the server succeeded.", MetricType::Gauge);
    MetricFamily age = Family("poolkeeper_server_observation_age_seconds",
                              "Seconds since the server was last observed.", MetricType::Gauge);
    for (const auto& s : sources_.servers()) {
      Labels labels = {{"server", s.name}};
      Sample(max_connections, labels, static_cast<double>(s.max_connections));
      Sample(in_use_by_others, labels, static_cast<double>(s.in_use_by_others));
      Sample(usable, labels, static_cast<double>(s.usable));
      Sample(allocated, labels, static_cast<double>(s.allocated));
      Sample(headroom, labels, static_cast<double>(s.headroom));
      Sample(reachable, labels, s.reachable ? 1 : 0);
      if (s.observation_age_seconds) {
        Sample(age, labels, static_cast<double>(*s.observation_age_seconds));
      }
    }
    for (MetricFamily* family :
         {&max_connections, &in_use_by_others, &usable, &allocated, &headroom, &reachable, &age}) {
      out.push_back(std::move(*family));
    }
    return out;
  }

  const MetricSources sources_;
};

}  // namespace

MetricSources SourcesOf(const controller::Manager& manager, const kube::Client& client,
                        const kube::Client& election_client, const std::atomic<bool>& leading) {
  return {
      .queue = [&manager] { return manager.Queue(); },
      .events_written = [&manager] { return manager.EventsWritten(); },
      .events_dropped = [&manager] { return manager.EventsDropped(); },
      .relists = [&manager] { return manager.Relists(); },
      .api_requests = [&client] { return client.RequestCounts(); },
      .election_requests = [&election_client] { return election_client.RequestCounts(); },
      .leading = [&leading] { return leading.load(); },
      .budgets = [&manager] { return manager.Budgets(); },
      .servers = [&manager] { return manager.Servers(); },
  };
}

OperatorMetrics::OperatorMetrics(MetricSources sources)
    : scraped_(std::make_unique<ScrapedFigures>(std::move(sources))) {}

OperatorMetrics::~OperatorMetrics() = default;

Result<std::unique_ptr<OperatorMetrics>> OperatorMetrics::Register(MetricSources sources) {
  std::unique_ptr<OperatorMetrics> metrics(new OperatorMetrics(std::move(sources)));
  prometheus::Registry& registry = metrics->registry_;
  try {
    metrics->reconciles_ = &prometheus::BuildCounter()
                                .Name("poolkeeper_reconcile_total")
                                .Help("Reconciles of ConnectionPools by outcome.")
                                .Register(registry);
    // Unlabeled series are added now so they are exposed, at 0, before the first reconcile.
    metrics->errors_ = &prometheus::BuildCounter()
                            .Name("poolkeeper_reconcile_errors_total")
                            .Help("Reconciles that failed and were retried.")
                            .Register(registry)
                            .Add({});
    metrics->durations_ =
        &prometheus::BuildHistogram()
             .Name("poolkeeper_reconcile_duration_seconds")
             .Help("Time to reconcile one ConnectionPool.")
             .Register(registry)
             .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                              0.5, 1, 2.5, 5, 10});
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInvalid,
                std::string("registering the operator's metrics: ") + e.what());
  }
  return metrics;
}

void OperatorMetrics::ObserveReconcile(double seconds, const std::string& outcome) {
  reconciles_->Add({{"outcome", outcome}}).Increment();
  if (outcome == "error") errors_->Increment();
  durations_->Observe(seconds);
}

std::string OperatorMetrics::Exposition() const {
  std::vector<MetricFamily> families = registry_.Collect();
  for (MetricFamily& family : scraped_->Collect()) {
    if (!family.metric.empty()) families.push_back(std::move(family));
  }
  // prometheus-cpp keeps families in registration order and series in hash order; sorted, the
  // exposition reads like client_golang's and diffs cleanly between scrapes.
  auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
  std::sort(families.begin(), families.end(), by_name);
  for (MetricFamily& family : families) {
    for (ClientMetric& metric : family.metric) {
      std::sort(metric.label.begin(), metric.label.end(), by_name);
    }
    std::sort(family.metric.begin(), family.metric.end(),
              [](const ClientMetric& a, const ClientMetric& b) { return a.label < b.label; });
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace poolkeeper::cli
