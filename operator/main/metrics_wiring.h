// The operator's metrics, registered on one http::Registry: reconciles (totals by outcome and a
// duration histogram, recorded by the manager's observer), and collectors read at scrape time for
// figures other modules own (work queue, API requests by verb and code, leadership, per-pool
// budget). Names follow Prometheus conventions (poolkeeper_ prefix, _total counters, base units).
#pragma once

#include <atomic>
#include <vector>

#include "controller/manager.h"
#include "http/metrics.h"
#include "kube/client.h"

namespace poolkeeper::cli {

class OperatorMetrics {
 public:
  // Keeps references: the registry, manager and clients must outlive this object. The election
  // client's requests (Lease renewals every 2 s) are counted apart, so that
  // poolkeeper_api_requests_total shows what reconciling costs.
  static Result<std::unique_ptr<OperatorMetrics>> Register(http::Registry& registry,
                                                           controller::Manager& manager,
                                                           const kube::Client& client,
                                                           const kube::Client& election_client,
                                                           const std::atomic<bool>& leading);
  // For Manager::SetObserver.
  void ObserveReconcile(double seconds, const std::string& outcome);

 private:
  http::CounterFamily* reconciles_ = nullptr;
  http::CounterFamily* errors_ = nullptr;
  http::HistogramFamily* durations_ = nullptr;
  std::vector<http::CollectorHandle> collectors_;
};

}  // namespace poolkeeper::cli
