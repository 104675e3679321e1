// The text exposition format 0.0.4, as client_golang writes it, so what poolkeeper exposes reads
// like every other exporter's output and diffs cleanly between scrapes.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <utility>

#include "http/metrics.h"

namespace poolkeeper::http {
namespace {

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` with labels sorted by name, plus `le` last when given; "" with no labels.
std::string LabelSet(const std::vector<std::pair<std::string, std::string>>& sorted,
                     const std::string* le) {
  if (sorted.empty() && le == nullptr) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : sorted) {
    if (!first) out += ',';
    first = false;
    out += name + "=\"" + EscapeLabelValue(value) + "\"";
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"" + *le + "\"";
  }
  out += '}';
  return out;
}

}  // namespace

void AppendFamily(const FamilyInfo& info, const std::vector<Series>& series_list,
                  std::string& out) {
  // Labels print sorted by name; series sort by their values in that same order, so the
  // exposition reads sorted whatever order the family declared its labels in.
  std::vector<size_t> order(info.label_names.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return info.label_names[a] < info.label_names[b]; });
  std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, const Series*>> rows;
  for (const Series& series : series_list) {
    std::vector<std::pair<std::string, std::string>> labels;
    for (size_t i : order) {
      // Hand-built series may be short of values; a missing one is "", as With() pads it.
      labels.emplace_back(info.label_names[i],
                          i < series.label_values.size() ? series.label_values[i] : "");
    }
    rows.emplace_back(std::move(labels), &series);
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  out += "# HELP " + info.name + " " + EscapeHelp(info.help) + "\n";
  out += "# TYPE " + info.name + " " + std::string(TypeName(info.type)) + "\n";
  for (const auto& [labels, series] : rows) {
    if (info.type != MetricType::kHistogram) {
      out += info.name + LabelSet(labels, nullptr) + " " + FormatValue(series->value) + "\n";
      continue;
    }
    const Histogram::Snapshot& h = series->histogram;
    for (size_t i = 0; i < h.bounds.size() && i < h.cumulative.size(); ++i) {
      std::string le = FormatValue(h.bounds[i]);
      out += info.name + "_bucket" + LabelSet(labels, &le) + " " + std::to_string(h.cumulative[i]) +
             "\n";
    }
    std::string inf = "+Inf";
    out += info.name + "_bucket" + LabelSet(labels, &inf) + " " + std::to_string(h.count) + "\n";
    out += info.name + "_sum" + LabelSet(labels, nullptr) + " " + FormatValue(h.sum) + "\n";
    out += info.name + "_count" + LabelSet(labels, nullptr) + " " + std::to_string(h.count) + "\n";
  }
}

std::string FormatValue(double value) {
  // Go's strconv.FormatFloat(v, 'g', -1, 64), as client_golang writes it: the shortest digits
  // that read back exactly, in exponent form when the exponent is < -4 or >= 6 (so 1e+06,
  // 2.5e-05), which is what scrapers and golden files of other exporters are used to.
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return "0";
  char buffer[64];
  auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string scientific(buffer, end);
  int exponent = std::atoi(scientific.c_str() + scientific.find('e') + 1);
  if (exponent < -4 || exponent >= 6) return scientific;
  auto [fixed_end, fixed_ec] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  return std::string(buffer, fixed_end);
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace poolkeeper::http
