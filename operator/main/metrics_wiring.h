// The operator's metrics, on a prometheus-cpp registry: reconciles (totals by outcome and a
// duration histogram, recorded by the manager's observer), and figures other modules own, read at
// every scrape (work queue, API requests by verb and code, leadership, per-pool and per-server
// budget). Names follow Prometheus conventions (poolkeeper_ prefix, _total counters, base units);
// docs/operating.md lists them and tests/docs_test.sh checks it does.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "controller/manager.h"
#include "kube/client.h"

namespace poolkeeper::cli {

// Where the scrape-time figures come from. Each is called at every scrape, from the HTTP server's
// threads, so each must be thread-safe. SourcesOf wires them to the running operator; tests give
// fixed figures.
struct MetricSources {
  std::function<controller::QueueFigures()> queue;
  std::function<uint64_t()> events_written;
  std::function<uint64_t()> events_dropped;
  std::function<uint64_t()> relists;
  std::function<kube::RequestCountMap()> api_requests;
  std::function<kube::RequestCountMap()> election_requests;
  std::function<bool()> leading;
  std::function<std::vector<controller::PoolBudgetFigures>()> budgets;
  std::function<std::vector<controller::ServerFigures>()> servers;
};

// Keeps references: the manager, clients and flag must outlive whatever holds the sources. The
// election client's requests (Lease renewals every 2 s) are counted apart, so that
// poolkeeper_api_requests_total shows what reconciling costs.
MetricSources SourcesOf(const controller::Manager& manager, const kube::Client& client,
                        const kube::Client& election_client, const std::atomic<bool>& leading);

class OperatorMetrics {
 public:
  // kInvalid when prometheus-cpp refuses a definition: a programming error, reported rather than
  // thrown across the module boundary.
  static Result<std::unique_ptr<OperatorMetrics>> Register(MetricSources sources);
  ~OperatorMetrics();

  // For Manager::SetObserver.
  void ObserveReconcile(double seconds, const std::string& outcome);

  // The body of GET /metrics, text format 0.0.4: families sorted by name, series by their labels,
  // families without series left out.
  std::string Exposition() const;

 private:
  explicit OperatorMetrics(MetricSources sources);

  prometheus::Registry registry_;
  prometheus::Family<prometheus::Counter>* reconciles_ = nullptr;
  prometheus::Counter* errors_ = nullptr;
  prometheus::Histogram* durations_ = nullptr;
  // The scrape-time figures; a Collectable of its own because prometheus::Registry only holds the
  // families it built.
  std::unique_ptr<prometheus::Collectable> scraped_;
};

}  // namespace poolkeeper::cli
