#include "main/metrics_wiring.h"

namespace poolkeeper::cli {

Result<std::unique_ptr<OperatorMetrics>> OperatorMetrics::Register(
    http::Registry& registry, controller::Manager& manager, const kube::Client& client,
    const kube::Client& election_client, const std::atomic<bool>& leading) {
  auto metrics = std::make_unique<OperatorMetrics>();
  auto reconciles = registry.AddCounter("poolkeeper_reconcile_total",
                                        "Reconciles of ConnectionPools by outcome.", {"outcome"});
  auto errors = registry.AddCounter("poolkeeper_reconcile_errors_total",
                                    "Reconciles that failed and were retried.");
  auto durations = registry.AddHistogram("poolkeeper_reconcile_duration_seconds",
                                         "Time to reconcile one ConnectionPool.",
                                         {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  if (!reconciles) return std::unexpected(reconciles.error());
  if (!errors) return std::unexpected(errors.error());
  if (!durations) return std::unexpected(durations.error());
  metrics->reconciles_ = *reconciles;
  metrics->errors_ = *errors;
  metrics->durations_ = *durations;

  auto queue = registry.AddCollector(
      {{"poolkeeper_workqueue_depth", "Keys waiting in the work queue.", http::MetricType::kGauge},
       {"poolkeeper_workqueue_adds_total", "Keys added to the work queue.",
        http::MetricType::kCounter},
       {"poolkeeper_workqueue_retries_total", "Keys re-added after a failure.",
        http::MetricType::kCounter},
       {"poolkeeper_events_total", "Kubernetes Events written.", http::MetricType::kCounter},
       {"poolkeeper_informer_relists_total",
        "Cache relists after the first list (an expired or broken watch).",
        http::MetricType::kCounter}},
      [&manager](http::CollectorOutput& out) {
        controller::QueueFigures queue = manager.Queue();
        out.Add("poolkeeper_workqueue_depth", {}, static_cast<double>(queue.depth));
        out.Add("poolkeeper_workqueue_adds_total", {}, static_cast<double>(queue.adds));
        out.Add("poolkeeper_workqueue_retries_total", {}, static_cast<double>(queue.retries));
        out.Add("poolkeeper_events_total", {}, static_cast<double>(manager.EventsWritten()));
        out.Add("poolkeeper_informer_relists_total", {}, static_cast<double>(manager.Relists()));
      });
  auto requests = [](const char* family, const kube::Client& counted) {
    return [family, &counted](http::CollectorOutput& out) {
      for (const auto& [key, count] : counted.RequestCounts()) {
        out.Add(family, {key.first, std::to_string(key.second)}, static_cast<double>(count));
      }
    };
  };
  auto api = registry.AddCollector(
      {{"poolkeeper_api_requests_total",
        "Requests to the Kubernetes API by verb and HTTP status code (0: no response), leader "
        "election excluded.",
        http::MetricType::kCounter,
        {"verb", "code"}}},
      requests("poolkeeper_api_requests_total", client));
  auto election = registry.AddCollector(
      {{"poolkeeper_leader_election_requests_total",
        "Lease requests of leader election by verb and HTTP status code (0: no response).",
        http::MetricType::kCounter,
        {"verb", "code"}}},
      requests("poolkeeper_leader_election_requests_total", election_client));
  auto leader = registry.AddCollector(
      {{"poolkeeper_leader", "1 while this replica holds the leader Lease (or runs alone).",
        http::MetricType::kGauge}},
      [&leading](http::CollectorOutput& out) {
        out.Add("poolkeeper_leader", {}, leading.load() ? 1 : 0);
      });
  const std::vector<std::string> pool_labels = {"namespace", "pool"};
  auto budget =
      registry.AddCollector({{"poolkeeper_pool_budget_usable_connections",
                              "Server connections usable by poolers on the pool's server.",
                              http::MetricType::kGauge, pool_labels},
                             {"poolkeeper_pool_budget_allocated_connections",
                              "Server connections the ledger has allocated on the pool's server.",
                              http::MetricType::kGauge, pool_labels},
                             {"poolkeeper_pool_budget_headroom_connections",
                              "Usable server connections not allocated on the pool's server.",
                              http::MetricType::kGauge, pool_labels}},
                            [&manager](http::CollectorOutput& out) {
                              for (const auto& pool : manager.Budgets()) {
                                out.Add("poolkeeper_pool_budget_usable_connections",
                                        {pool.ns, pool.name}, static_cast<double>(pool.usable));
                                out.Add("poolkeeper_pool_budget_allocated_connections",
                                        {pool.ns, pool.name}, static_cast<double>(pool.allocated));
                                out.Add("poolkeeper_pool_budget_headroom_connections",
                                        {pool.ns, pool.name}, static_cast<double>(pool.headroom));
                              }
                            });
  const std::vector<std::string> server_labels = {"server"};
  auto servers = registry.AddCollector(
      {{"poolkeeper_server_max_connections",
        "A PostgresServer's max_connections (observed, else declared).", http::MetricType::kGauge,
        server_labels},
       {"poolkeeper_server_in_use_by_others_connections",
        "Client connections to the server that are not poolkeeper's poolers, at the last "
        "observation.",
        http::MetricType::kGauge, server_labels},
       {"poolkeeper_server_usable_connections", "Connections usable by poolers on the server.",
        http::MetricType::kGauge, server_labels},
       {"poolkeeper_server_allocated_connections",
        "Connections the ledger allocates on the server.", http::MetricType::kGauge, server_labels},
       {"poolkeeper_server_headroom_connections", "Usable connections not allocated on the server.",
        http::MetricType::kGauge, server_labels},
       {"poolkeeper_server_reachable", "1 when the last observation of the server succeeded.",
        http::MetricType::kGauge, server_labels},
       {"poolkeeper_server_observation_age_seconds", "Seconds since the server was last observed.",
        http::MetricType::kGauge, server_labels}},
      [&manager](http::CollectorOutput& out) {
        for (const auto& s : manager.Servers()) {
          out.Add("poolkeeper_server_max_connections", {s.name},
                  static_cast<double>(s.max_connections));
          out.Add("poolkeeper_server_in_use_by_others_connections", {s.name},
                  static_cast<double>(s.in_use_by_others));
          out.Add("poolkeeper_server_usable_connections", {s.name}, static_cast<double>(s.usable));
          out.Add("poolkeeper_server_allocated_connections", {s.name},
                  static_cast<double>(s.allocated));
          out.Add("poolkeeper_server_headroom_connections", {s.name},
                  static_cast<double>(s.headroom));
          out.Add("poolkeeper_server_reachable", {s.name}, s.reachable ? 1 : 0);
          if (s.observation_age_seconds) {
            out.Add("poolkeeper_server_observation_age_seconds", {s.name},
                    static_cast<double>(*s.observation_age_seconds));
          }
        }
      });
  for (auto* handle : {&queue, &api, &election, &leader, &budget, &servers}) {
    if (!*handle) return std::unexpected(handle->error());
    metrics->collectors_.push_back(std::move(**handle));
  }
  return metrics;
}

void OperatorMetrics::ObserveReconcile(double seconds, const std::string& outcome) {
  reconciles_->With({outcome}).Increment();
  if (outcome == "error") errors_->With({}).Increment();
  durations_->With({}).Observe(seconds);
}

}  // namespace poolkeeper::cli
