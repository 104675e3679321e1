// Polls the pooler agents (agent_status.h) off the reconcile path, so a reconcile reads what they
// last reported from memory instead of asking every pod over HTTP (up to 2 s each when one does
// not answer) on a worker. It asks the agent of every cached pooler pod that runs one (an IP, not
// terminating, an `agent` container) every `interval`, and every `waiting_interval` the pods of
// the pools the reconciler waits on (a reload not yet confirmed); a few polls at a time on threads
// of its own, so a hung agent holds up only its own pod.
//
// It keeps each pod's last report (by uid: a new pod in an old slot starts unheard) and queues
// a pool at once when a report changes what its reconcile decides (the config hash loaded, or
// the server connections crossing the figure the reconciler waits for); when only the live
// figures (status.live) change, at most once per `live_interval`, so a busy pool does not write
// its status on every poll. A pod never heard from is absent from what a reconcile reads: it stays
// charged its old figure (reconciler.cc, ConfirmReloads).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/status.h"
#include "common/clock.h"
#include "controller/agent_status.h"
#include "controller/parallel.h"
#include "kube/informer.h"

namespace poolkeeper::controller {

struct AgentPollerOptions {
  Clock::Duration interval = std::chrono::seconds(10);
  Clock::Duration waiting_interval = std::chrono::seconds(1);  // pools the reconciler waits on
  Clock::Duration live_interval = std::chrono::seconds(30);    // live-only changes queue a pool
  size_t threads = 4;                                          // polls at once
};

struct AgentPollerDeps {
  AgentStatusSource& source;
  const Clock& clock;
  std::function<std::vector<kube::ObjectPtr>()> pods;  // the cached pooler pods
  std::function<void(const std::string& pool_key)> enqueue;
};

// What a reconcile of one pool reads.
struct AgentSnapshot {
  std::map<std::string, AgentReport> reports;  // pod name -> its last report; unheard: absent
  api::LiveStatus live;  // over the pods whose agent answered within the last 3 intervals
};

class AgentPoller {
 public:
  AgentPoller(AgentPollerDeps deps, AgentPollerOptions options);
  ~AgentPoller();  // Stop()
  AgentPoller(const AgentPoller&) = delete;
  AgentPoller& operator=(const AgentPoller&) = delete;

  // Its thread and poll helpers; kUnavailable when the kernel refuses the thread.
  Status Start();
  void Stop();
  // Polls every pod that is due and not already being asked; returns how many polls it started.
  // With the helpers started they run there (RunDue does not wait for them); without (a test
  // driving it on its own thread) on the caller's thread, before RunDue returns.
  int RunDue();

  // What a reconcile decides on, for `pods` (a pool's pods as stored): each one's last report, if
  // it was heard from under its uid, and the live figures over them.
  AgentSnapshot Snapshot(const std::vector<nlohmann::json>& pods) const;
  // After a reconcile of `pool_key` that decided on `seen` (its Snapshot) and wrote its live
  // figures: whether it waits on the agents, and for which server-connection figure (nullopt: it
  // does not). A report that came in meanwhile and decides otherwise queues the pool at once.
  void Decided(const std::string& pool_key, std::optional<int64_t> awaited_within,
               const AgentSnapshot& seen);

 private:
  struct Pod {
    std::string pool_key, name, uid, ip;
    std::optional<AgentReport> report;
    Clock::TimePoint answered{};  // when `report` came
    Clock::TimePoint next{};      // next poll due
    bool asking = false;          // a poll is in flight
  };
  struct Pool {
    std::optional<int64_t> awaited_within;
    std::optional<api::LiveStatus> queued_live;  // the live figures when last queued
    Clock::TimePoint queued_at{};
  };

  // The rest under mutex_. Refresh: the pods to poll, from the cache's.
  void Refresh(const std::vector<kube::ObjectPtr>& cached, Clock::TimePoint now);
  Clock::Duration IntervalOf(const std::string& pool_key) const;
  bool Fresh(const Pod& pod, Clock::TimePoint now) const;  // counts in the live figures
  api::LiveStatus LiveOf(const std::string& pool_key, Clock::TimePoint now) const;
  // Queues the pool when its live figures differ from those it was last queued with, and that
  // was at least `live_interval` ago.
  void QueueLiveChange(const std::string& pool_key, Clock::TimePoint now);
  // Notes the pool in to_queue_, with the live figures it is queued with.
  void Enqueue(const std::string& pool_key, Clock::TimePoint now);
  // One pod's poll, on a helper (or the caller's thread); it takes mutex_ after the answer.
  void Poll(const std::string& pod_key, const std::string& uid, const std::string& ip);

  AgentPollerDeps deps_;
  AgentPollerOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, Pod> pods_;    // by namespace/name
  std::map<std::string, Pool> pools_;  // by pool key, while it has pods
  std::vector<std::string> to_queue_;  // pool keys, queued outside mutex_
  TaskPool helpers_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace poolkeeper::controller
