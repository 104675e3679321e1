// The Prometheus registry (the text format itself is in exposition.cc). Rendering copies what it
// needs under the registry's lock and then reads each family under that family's own lock, so a
// scrape never holds up registration for longer than a copy, and recording never waits for a
// scrape's formatting.
#include "http/metrics.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <set>
#include <type_traits>
#include <utility>

#include "common/log.h"

namespace poolkeeper::http {

struct CollectorHandle::Entry {
  std::vector<CollectedFamily> families;
  // Held while `collect` runs; Reset() takes it, so once Reset() returns the callback is done.
  std::mutex mutex;
  CollectFunction collect;  // guarded by `mutex`; empty once unregistered
  // Read by the registry without `mutex`, so registration never waits on a running callback.
  std::atomic<bool> registered{true};
};

namespace {

bool IsMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

Status ValidateDefinition(const FamilyInfo& info) {
  if (!IsMetricName(info.name)) {
    return Fail(ErrorCode::kInvalid,
                "metric name \"" + info.name + "\" does not match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  std::set<std::string_view> seen;
  for (const std::string& label : info.label_names) {
    if (!IsLabelName(label) || label.starts_with("__")) {
      return Fail(ErrorCode::kInvalid,
                  "metric " + info.name + ": label name \"" + label +
                      "\" does not match [a-zA-Z_][a-zA-Z0-9_]* or is reserved");
    }
    if (info.type == MetricType::kHistogram && label == "le") {
      return Fail(ErrorCode::kInvalid, "metric " + info.name + ": a histogram may not use \"le\"");
    }
    if (!seen.insert(label).second) {
      return Fail(ErrorCode::kInvalid, "metric " + info.name + ": label \"" + label + "\" twice");
    }
  }
  if (info.type == MetricType::kHistogram) {
    for (size_t i = 0; i < info.bounds.size(); ++i) {
      if (!std::isfinite(info.bounds[i]) || (i > 0 && info.bounds[i] <= info.bounds[i - 1])) {
        return Fail(ErrorCode::kInvalid, "histogram " + info.name +
                                             ": bucket bounds must be finite and strictly "
                                             "increasing");
      }
    }
  }
  return {};
}

// Every name a family puts in the exposition: a histogram also owns its suffixed series.
std::vector<std::string> ExposedNames(std::string_view name, MetricType type) {
  std::vector<std::string> names{std::string(name)};
  if (type == MetricType::kHistogram) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      names.push_back(std::string(name) + std::string(suffix));
    }
  }
  return names;
}

bool Overlaps(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const std::string& x : a) {
    if (std::find(b.begin(), b.end(), x) != b.end()) return true;
  }
  return false;
}

bool SameDefinition(const FamilyInfo& a, const FamilyInfo& b) {
  return a.name == b.name && a.help == b.help && a.type == b.type &&
         a.label_names == b.label_names && a.bounds == b.bounds;
}

// A family ready to print: its definition and its series, already read.
struct Collected {
  FamilyInfo info;
  std::vector<Series> series;
};

std::vector<std::string> PadOrTruncate(std::vector<std::string> values, size_t arity) {
  values.resize(arity);
  return values;
}

}  // namespace

// --- Counter, Histogram ---

void Counter::Increment(double by) {
  if (!(by >= 0)) return;  // also false for NaN
  value_.fetch_add(by, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::Observe(double value) {
  // lower_bound finds the first bound >= value; NaN compares false with everything, so it is
  // sent to +Inf explicitly.
  size_t bucket =
      std::isnan(value)
          ? bounds_.size()
          : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.bounds = bounds_;
  std::lock_guard lock(mutex_);
  uint64_t running = 0;
  for (uint64_t n : counts_) {
    running += n;
    snapshot.cumulative.push_back(running);
  }
  snapshot.sum = sum_;
  snapshot.count = count_;
  return snapshot;
}

// --- Families ---

std::vector<std::string> FamilyBase::Normalise(std::vector<std::string> values) const {
  return PadOrTruncate(std::move(values), info_.label_names.size());
}

template <typename Metric>
Family<Metric>::Family(FamilyInfo info) : FamilyBase(std::move(info)) {
  // An unlabeled family is one series: expose it at 0 before anything happened.
  if (info_.label_names.empty()) With({});
}

template <typename Metric>
Metric& Family<Metric>::With(std::vector<std::string> label_values) {
  std::vector<std::string> key = Normalise(std::move(label_values));
  std::lock_guard lock(mutex_);
  auto it = children_.find(key);
  if (it == children_.end()) {
    std::unique_ptr<Metric> child;
    if constexpr (std::is_same_v<Metric, Histogram>) {
      child = std::make_unique<Histogram>(info_.bounds);
    } else {
      child = std::make_unique<Metric>();
    }
    it = children_.emplace(std::move(key), std::move(child)).first;
  }
  return *it->second;
}

template <typename Metric>
std::vector<Series> Family<Metric>::Collect() const {
  std::lock_guard lock(mutex_);
  std::vector<Series> out;
  out.reserve(children_.size());
  for (const auto& [labels, child] : children_) {
    Series series;
    series.label_values = labels;
    if constexpr (std::is_same_v<Metric, Histogram>) {
      series.histogram = child->Read();
    } else {
      series.value = child->Value();
    }
    out.push_back(std::move(series));
  }
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- Collectors ---

void CollectorOutput::Add(std::string_view family, std::vector<std::string> label_values,
                          double value) {
  auto it = families_.find(family);
  if (it == families_.end()) return;
  it->second.samples[PadOrTruncate(std::move(label_values), it->second.arity)] = value;
}

CollectorHandle& CollectorHandle::operator=(CollectorHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    entry_ = std::move(other.entry_);
  }
  return *this;
}

void CollectorHandle::Reset() {
  if (!entry_) return;
  {
    std::lock_guard lock(entry_->mutex);  // waits for a running callback
    entry_->registered.store(false);
    entry_->collect = nullptr;  // what it captured goes now, not when the registry prunes it
  }
  entry_.reset();
}

// --- Registry ---

Registry::~Registry() = default;

Status Registry::CheckNameFree(const FamilyInfo& info) const {
  std::vector<std::string> wanted = ExposedNames(info.name, info.type);
  for (const auto& [name, family] : families_) {
    if (Overlaps(wanted, ExposedNames(name, family->info().type))) {
      return Fail(ErrorCode::kAlreadyExists,
                  "metric " + info.name + " clashes with the registered metric " + name);
    }
  }
  for (const auto& entry : collectors_) {
    if (!entry->registered.load()) continue;
    for (const CollectedFamily& family : entry->families) {
      if (Overlaps(wanted, ExposedNames(family.name, family.type))) {
        return Fail(ErrorCode::kAlreadyExists,
                    "metric " + info.name + " clashes with the collected metric " + family.name);
      }
    }
  }
  return {};
}

template <typename F>
Result<F*> Registry::Add(FamilyInfo info) {
  if (auto valid = ValidateDefinition(info); !valid) return std::unexpected(valid.error());
  std::lock_guard lock(mutex_);
  if (auto it = families_.find(info.name); it != families_.end()) {
    auto* same = dynamic_cast<F*>(it->second.get());
    if (same != nullptr && SameDefinition(same->info(), info)) return same;
    return Fail(ErrorCode::kAlreadyExists,
                "metric " + info.name + " is already registered with another definition");
  }
  if (auto free = CheckNameFree(info); !free) return std::unexpected(free.error());
  std::string name = info.name;
  auto family = std::make_unique<F>(std::move(info));
  F* out = family.get();
  families_.emplace(std::move(name), std::move(family));
  return out;
}

Result<CounterFamily*> Registry::AddCounter(std::string name, std::string help,
                                            std::vector<std::string> label_names) {
  return Add<CounterFamily>(
      FamilyInfo{std::move(name), std::move(help), MetricType::kCounter, std::move(label_names)});
}

Result<GaugeFamily*> Registry::AddGauge(std::string name, std::string help,
                                        std::vector<std::string> label_names) {
  return Add<GaugeFamily>(
      FamilyInfo{std::move(name), std::move(help), MetricType::kGauge, std::move(label_names)});
}

Result<HistogramFamily*> Registry::AddHistogram(std::string name, std::string help,
                                                std::vector<double> bounds,
                                                std::vector<std::string> label_names) {
  return Add<HistogramFamily>(FamilyInfo{std::move(name), std::move(help), MetricType::kHistogram,
                                         std::move(label_names), std::move(bounds)});
}

Result<CollectorHandle> Registry::AddCollector(std::vector<CollectedFamily> families,
                                               CollectFunction collect) {
  if (!collect) return Fail(ErrorCode::kInvalid, "collector without a function");
  std::vector<FamilyInfo> infos;
  for (const CollectedFamily& family : families) {
    if (family.type == MetricType::kHistogram) {
      return Fail(ErrorCode::kInvalid,
                  "collected metric " + family.name + ": only counters and gauges are collected");
    }
    FamilyInfo info{family.name, family.help, family.type, family.label_names};
    if (auto valid = ValidateDefinition(info); !valid) return std::unexpected(valid.error());
    for (const FamilyInfo& earlier : infos) {
      if (earlier.name == info.name) {
        return Fail(ErrorCode::kAlreadyExists, "collected metric " + info.name + " twice");
      }
    }
    infos.push_back(std::move(info));
  }
  std::lock_guard lock(mutex_);
  std::erase_if(collectors_, [](const auto& entry) { return !entry->registered.load(); });
  for (const FamilyInfo& info : infos) {
    if (families_.contains(info.name)) {
      return Fail(ErrorCode::kAlreadyExists,
                  "collected metric " + info.name + " clashes with the registered metric");
    }
    if (auto free = CheckNameFree(info); !free) return std::unexpected(free.error());
  }
  auto entry = std::make_shared<CollectorHandle::Entry>();
  entry->families = std::move(families);
  entry->collect = std::move(collect);
  collectors_.push_back(entry);
  return CollectorHandle(std::move(entry));
}

std::string Registry::Render() const {
  std::vector<const FamilyBase*> families;
  std::vector<std::shared_ptr<CollectorHandle::Entry>> collectors;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, family] : families_) families.push_back(family.get());
    collectors = collectors_;
  }

  std::vector<Collected> all;
  for (const FamilyBase* family : families) {
    Collected collected{family->info(), family->Collect()};
    if (!collected.series.empty()) all.push_back(std::move(collected));
  }
  for (const auto& entry : collectors) {
    CollectorOutput output;
    for (const CollectedFamily& family : entry->families) {
      output.families_[family.name].arity = family.label_names.size();
    }
    {
      std::lock_guard lock(entry->mutex);
      if (!entry->collect) continue;  // unregistered since the copy
      try {
        entry->collect(output);
      } catch (const std::exception& e) {
        Log(LogLevel::kWarn, "metrics collector failed; its samples are left out of this scrape",
            {{"error", e.what()}});
        continue;
      } catch (...) {
        Log(LogLevel::kWarn, "metrics collector failed; its samples are left out of this scrape",
            {{"error", "unknown exception"}});
        continue;
      }
    }
    for (const CollectedFamily& family : entry->families) {
      Collected collected{{family.name, family.help, family.type, family.label_names}, {}};
      for (auto& [labels, value] : output.families_[family.name].samples) {
        Series series;
        series.label_values = labels;
        series.value = value;
        collected.series.push_back(std::move(series));
      }
      if (!collected.series.empty()) all.push_back(std::move(collected));
    }
  }

  std::sort(all.begin(), all.end(),
            [](const Collected& a, const Collected& b) { return a.info.name < b.info.name; });
  std::string out;
  for (const Collected& family : all) AppendFamily(family.info, family.series, out);
  return out;
}

}  // namespace poolkeeper::http
