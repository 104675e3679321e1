#include "controller/agent_poller.h"

#include <algorithm>
#include <set>

#include "common/log.h"
#include "common/thread.h"
#include "controller/holdings.h"
#include "controller/pods.h"

namespace poolkeeper::controller {
namespace {

using nlohmann::json;

// How often the thread looks for due polls: the fast interval is 1 s.
constexpr std::chrono::milliseconds kTick{250};
// A report older than this many intervals no longer counts in the live figures.
constexpr int kFreshIntervals = 3;

// The pods whose PgBouncer has the agent beside it (render/pod.cc names its container).
bool RunsAgent(const json& pod) {
  const json containers = pod.value("/spec/containers"_json_pointer, json::array());
  if (!containers.is_array()) return false;
  return std::ranges::any_of(containers, [](const json& c) {
    return c.is_object() && c.value("name", json()) == json("agent");
  });
}

// Whether a reconcile that saw `before` (nullopt: the pod unheard) would decide otherwise on
// `now`: the config hash loaded, paused or not, and while it waits for `within`, the server
// connections on the other side of it.
bool DecidesOtherwise(const std::optional<AgentReport>& before, const AgentReport& now,
                      std::optional<int64_t> within) {
  if (!before || before->config_hash != now.config_hash || before->paused != now.paused) {
    return true;
  }
  return within && (before->server_connections > *within) != (now.server_connections > *within);
}

void Add(api::LiveStatus& live, const AgentReport& report) {
  live.server_connections += report.server_connections;
  live.clients_waiting += report.clients_waiting;
  live.longest_wait_seconds = std::max(live.longest_wait_seconds, report.longest_wait_seconds);
  ++live.pods_reporting;
}

}  // namespace

AgentPoller::AgentPoller(AgentPollerDeps deps, AgentPollerOptions options)
    : deps_(std::move(deps)), options_(options) {}

AgentPoller::~AgentPoller() { Stop(); }

Status AgentPoller::Start() {
  if (auto started = helpers_.Start(options_.threads, "agent-poll"); !started) return started;
  auto started = StartThread("agent-poller", [this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      RunDue();
      lock.lock();
      // A bounded wait: due times move with the Clock.
      wake_.wait_for(lock, kTick, [this] { return stopping_; });
    }
  });
  if (!started) return std::unexpected(started.error());
  thread_ = std::move(*started);
  return {};
}

void AgentPoller::Stop() {
  {
    std::lock_guard guard(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  helpers_.Stop();  // the polls in hand end within the source's timeout; queued ones are dropped
}

void AgentPoller::Refresh(const std::vector<kube::ObjectPtr>& cached, Clock::TimePoint now) {
  std::set<std::string> present;
  for (const kube::ObjectPtr& object : cached) {
    const json& pod = *object;
    auto pool_key = PoolLabelKey(pod);
    const std::string ip = pod.value("/status/podIP"_json_pointer, "");
    if (!pool_key || ip.empty() || pod.contains("/metadata/deletionTimestamp"_json_pointer) ||
        PodFinished(pod) || !RunsAgent(pod)) {
      continue;
    }
    const std::string name = pod.value("/metadata/name"_json_pointer, "");
    const std::string uid = pod.value("/metadata/uid"_json_pointer, "");
    const std::string key = pod.value("/metadata/namespace"_json_pointer, "") + "/" + name;
    present.insert(key);
    Pod& known = pods_[key];
    if (known.uid != uid || known.pool_key != *pool_key) {
      // A new pod (or one relabelled): nothing it reported before counts.
      known = Pod{.pool_key = *pool_key, .name = name, .uid = uid, .next = now};
    }
    known.ip = ip;
  }
  std::set<std::string> polled;
  std::erase_if(pods_, [&](const auto& entry) {
    if (!present.contains(entry.first)) return true;  // an answer in flight finds it gone
    polled.insert(entry.second.pool_key);
    return false;
  });
  std::erase_if(pools_, [&](const auto& entry) { return !polled.contains(entry.first); });
}

int AgentPoller::RunDue() {
  struct Ask {
    std::string key, uid, ip;
  };
  std::vector<Ask> due;
  std::vector<std::string> queue;
  const std::vector<kube::ObjectPtr> cached = deps_.pods();  // the cache's lock, not ours
  {
    std::lock_guard guard(mutex_);
    const Clock::TimePoint now = deps_.clock.Now();
    Refresh(cached, now);
    for (auto& [key, pod] : pods_) {
      if (pod.asking || pod.next > now) continue;
      pod.asking = true;
      due.push_back({key, pod.uid, pod.ip});
    }
    // A pod silent for too long drops out of the live figures with no answer to notice it by.
    for (const auto& [key, pool] : pools_) QueueLiveChange(key, now);
    queue.swap(to_queue_);
  }
  for (const auto& key : queue) deps_.enqueue(key);
  for (const Ask& ask : due) {
    if (!helpers_.Post([this, ask] { Poll(ask.key, ask.uid, ask.ip); })) {
      Poll(ask.key, ask.uid, ask.ip);
    }
  }
  return static_cast<int>(due.size());
}

void AgentPoller::Poll(const std::string& pod_key, const std::string& uid, const std::string& ip) {
  Result<AgentReport> report = deps_.source.Report(ip);
  std::vector<std::string> queue;
  {
    std::lock_guard guard(mutex_);
    const Clock::TimePoint now = deps_.clock.Now();
    auto it = pods_.find(pod_key);
    if (it == pods_.end() || it->second.uid != uid) return;  // gone meanwhile
    Pod& pod = it->second;
    pod.asking = false;
    pod.next = now + IntervalOf(pod.pool_key);
    if (report) {
      const bool decides =
          DecidesOtherwise(pod.report, *report, pools_[pod.pool_key].awaited_within);
      pod.report = *report;
      pod.answered = now;
      if (decides) Enqueue(pod.pool_key, now);
    } else {
      Log(LogLevel::kDebug, "pooler agent did not answer",
          {{"pod", pod_key}, {"error", report.error().message}});
    }
    QueueLiveChange(pod.pool_key, now);
    queue.swap(to_queue_);
  }
  for (const auto& key : queue) deps_.enqueue(key);
}

Clock::Duration AgentPoller::IntervalOf(const std::string& pool_key) const {
  auto pool = pools_.find(pool_key);
  const bool waiting = pool != pools_.end() && pool->second.awaited_within;
  return waiting ? options_.waiting_interval : options_.interval;
}

bool AgentPoller::Fresh(const Pod& pod, Clock::TimePoint now) const {
  return pod.report && now - pod.answered <= kFreshIntervals * options_.interval;
}

api::LiveStatus AgentPoller::LiveOf(const std::string& pool_key, Clock::TimePoint now) const {
  api::LiveStatus live;
  for (const auto& [key, pod] : pods_) {
    if (pod.pool_key == pool_key && Fresh(pod, now)) Add(live, *pod.report);
  }
  return live;
}

void AgentPoller::QueueLiveChange(const std::string& pool_key, Clock::TimePoint now) {
  const Pool& pool = pools_[pool_key];
  if (pool.queued_live == LiveOf(pool_key, now)) return;
  if (pool.queued_live && now - pool.queued_at < options_.live_interval) return;
  Enqueue(pool_key, now);
}

void AgentPoller::Enqueue(const std::string& pool_key, Clock::TimePoint now) {
  Pool& pool = pools_[pool_key];
  pool.queued_live = LiveOf(pool_key, now);
  pool.queued_at = now;
  if (std::ranges::find(to_queue_, pool_key) == to_queue_.end()) to_queue_.push_back(pool_key);
}

AgentSnapshot AgentPoller::Snapshot(const std::vector<json>& pods) const {
  std::lock_guard guard(mutex_);
  const Clock::TimePoint now = deps_.clock.Now();
  AgentSnapshot snapshot;
  for (const json& stored : pods) {
    auto it = pods_.find(stored.value("/metadata/namespace"_json_pointer, "") + "/" +
                         stored.value("/metadata/name"_json_pointer, ""));
    if (it == pods_.end() || !it->second.report ||
        it->second.uid != stored.value("/metadata/uid"_json_pointer, "")) {
      continue;  // unheard, or what the pod that had its name reported
    }
    const Pod& pod = it->second;
    snapshot.reports[pod.name] = *pod.report;
    if (Fresh(pod, now)) Add(snapshot.live, *pod.report);
  }
  return snapshot;
}

void AgentPoller::Decided(const std::string& pool_key, std::optional<int64_t> awaited_within,
                          const AgentSnapshot& seen) {
  std::vector<std::string> queue;
  {
    std::lock_guard guard(mutex_);
    const Clock::TimePoint now = deps_.clock.Now();
    bool has_pods = false;
    bool decides = false;
    for (auto& [key, pod] : pods_) {
      if (pod.pool_key != pool_key) continue;
      has_pods = true;
      if (awaited_within) pod.next = std::min(pod.next, now + options_.waiting_interval);
      if (!pod.report) continue;
      auto saw = seen.reports.find(pod.name);
      const bool unseen = saw == seen.reports.end();
      decides = decides || DecidesOtherwise(unseen ? std::nullopt : std::optional(saw->second),
                                            *pod.report, awaited_within);
    }
    if (!has_pods) return;  // none of its pods is polled (yet)
    Pool& pool = pools_[pool_key];
    pool.awaited_within = awaited_within;
    // The status holds these now: a change of the live figures alone waits from here.
    pool.queued_live = seen.live;
    pool.queued_at = now;
    if (decides) Enqueue(pool_key, now);
    queue.swap(to_queue_);
  }
  for (const auto& key : queue) deps_.enqueue(key);
}

}  // namespace poolkeeper::controller
