// A small Prometheus registry: counters, gauges and fixed-bucket histograms with labels, and
// collectors evaluated at scrape time for values owned elsewhere, rendered in the text exposition
// format 0.0.4. The operator owns one Registry and hands it (or the families it returned) to
// whoever records metrics; there is deliberately no process-wide default registry, so tests and
// several operators in one process never share counts.
//
// Thread safety: everything here may be called from any thread. Recording on a child you already
// hold is lock-free for counters and gauges (atomics) and one uncontended mutex for a histogram;
// With() takes the family's mutex, so hot paths look their child up once and keep the reference.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace poolkeeper::http {

enum class MetricType { kCounter, kGauge, kHistogram };

class Counter {
 public:
  // Negative and NaN increments are ignored: a Prometheus counter never goes down.
  void Increment(double by = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds` are the finite upper bounds, strictly increasing; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  // A value lands in the first bucket whose bound is >= it (Prometheus' `le`); NaN only in +Inf.
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;        // finite bounds, as given
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  // Read under the histogram's lock, so buckets, sum and count always agree with each other.
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is (bound, +Inf)
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What a family is: exposed name, HELP text, type and label names (in the order With() takes
// values). Histogram families also carry their bucket bounds.
struct FamilyInfo {
  std::string name;
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
};

// One sample as the renderer sees it: label values in the family's label-name order, and either a
// value (counter, gauge) or a histogram snapshot.
struct Series {
  std::vector<std::string> label_values;
  double value = 0;
  Histogram::Snapshot histogram;
};

class FamilyBase {
 public:
  explicit FamilyBase(FamilyInfo info) : info_(std::move(info)) {}
  virtual ~FamilyBase() = default;
  const FamilyInfo& info() const { return info_; }
  // The current value of every child, sorted by label values.
  virtual std::vector<Series> Collect() const = 0;

 protected:
  // Label values of the right arity: a call with too few is padded with "", too many truncated.
  // Arity mismatches are programming errors; normalising them keeps the exposition valid
  // instead of crashing the operator over a metric.
  std::vector<std::string> Normalise(std::vector<std::string> values) const;

  const FamilyInfo info_;
};

// A metric with labels: one child per distinct tuple of label values, created on first use.
// References returned by With() stay valid as long as the Registry.
template <typename Metric>
class Family : public FamilyBase {
 public:
  explicit Family(FamilyInfo info);
  Metric& With(std::vector<std::string> label_values);
  std::vector<Series> Collect() const override;

 private:
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// A family whose samples a collector reports at scrape time: counter or gauge only.
struct CollectedFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<std::string> label_names;
};

// Where a collector writes one scrape's samples.
class CollectorOutput {
 public:
  // One sample of a family declared with the collector; label values in its label-name order.
  // Samples of undeclared families are dropped (the exposition stays valid); the same labels
  // reported twice keep the last value.
  void Add(std::string_view family, std::vector<std::string> label_values, double value);

 private:
  friend class Registry;
  struct Declared {
    size_t arity = 0;
    std::map<std::vector<std::string>, double> samples;
  };
  std::map<std::string, Declared, std::less<>> families_;
};

using CollectFunction = std::function<void(CollectorOutput&)>;

// Keeps a collector registered; destroying or Reset()ing it unregisters the collector and, once
// that returns, the callback is not running and will not run again, so what it captured may go.
// Safe to destroy after the Registry. Do not reset it from inside the callback (it would wait on
// itself).
class CollectorHandle {
 public:
  struct Entry;
  CollectorHandle() = default;
  explicit CollectorHandle(std::shared_ptr<Entry> entry) : entry_(std::move(entry)) {}
  CollectorHandle(CollectorHandle&&) noexcept = default;
  CollectorHandle& operator=(CollectorHandle&& other) noexcept;
  ~CollectorHandle() { Reset(); }
  void Reset();

 private:
  std::shared_ptr<Entry> entry_;
};

class Registry {
 public:
  Registry() = default;
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a family. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
  // [a-zA-Z_][a-zA-Z0-9_]* (not "__"-prefixed, not "le" on a histogram, no duplicates). Registering
  // the same definition again returns the same family; a different one under a name in use (a
  // histogram's _bucket/_sum/_count included) is kAlreadyExists. Unlabeled families start with
  // their one child at 0, so they are exposed before the first event.
  Result<CounterFamily*> AddCounter(std::string name, std::string help,
                                    std::vector<std::string> label_names = {});
  Result<GaugeFamily*> AddGauge(std::string name, std::string help,
                                std::vector<std::string> label_names = {});
  // `bounds`: finite, strictly increasing upper bounds; +Inf is added by the exposition.
  Result<HistogramFamily*> AddHistogram(std::string name, std::string help,
                                        std::vector<double> bounds,
                                        std::vector<std::string> label_names = {});

  // Registers `collect`, called at every Render() to report the samples of `families`. The names
  // are reserved while the handle lives. An exception thrown by `collect` is caught, logged and
  // its samples of that scrape dropped.
  Result<CollectorHandle> AddCollector(std::vector<CollectedFamily> families,
                                       CollectFunction collect);

  // The text exposition format 0.0.4: families sorted by name, each with HELP and TYPE, series
  // sorted by label values, labels sorted by name (histograms: `le` last). Families with no
  // series are left out, as client_golang does.
  std::string Render() const;

 private:
  Status CheckNameFree(const FamilyInfo& info) const;  // mutex_ held
  template <typename F>
  Result<F*> Add(FamilyInfo info);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_;
  std::vector<std::shared_ptr<CollectorHandle::Entry>> collectors_;
};

// Text-format building blocks, exposed for tests and for anything that writes exposition by hand.
std::string FormatValue(double value);           // 1, 0.25, 123456, 1e+06, +Inf, -Inf, NaN
std::string EscapeLabelValue(std::string_view);  // \ -> \\, " -> \", newline -> \n
std::string EscapeHelp(std::string_view);        // \ -> \\, newline -> \n
// Appends one family's HELP and TYPE lines and its series to `out`: labels sorted by name (a
// histogram's `le` last), series sorted by their label values in that order, a histogram's
// buckets cumulative and ending with +Inf, then _sum and _count.
void AppendFamily(const FamilyInfo& info, const std::vector<Series>& series, std::string& out);

}  // namespace poolkeeper::http
