// pgbouncer.ini against SHOW CONFIG (see config_check.h).
#include "agent/config_check.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace poolkeeper::agent {
namespace {

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::optional<bool> AsBool(const std::string& value) {
  std::string lower = Lower(value);
  if (lower == "1" || lower == "on" || lower == "true" || lower == "yes") return true;
  if (lower == "0" || lower == "off" || lower == "false" || lower == "no") return false;
  return std::nullopt;
}

std::optional<double> AsNumber(const std::string& value) {
  double number = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return number;
}

std::string AsList(const std::string& value) {
  std::string list;
  for (char c : value) {
    if (c == ' ') continue;
    list += c;
  }
  return list;
}

bool SameValue(const std::string& want, const std::string& running) {
  if (want == running) return true;
  auto want_number = AsNumber(want);
  auto running_number = AsNumber(running);
  if (want_number && running_number) return *want_number == *running_number;
  auto want_bool = AsBool(want);
  auto running_bool = AsBool(running);
  if (want_bool && running_bool) return *want_bool == *running_bool;
  return AsList(want) == AsList(running);
}

}  // namespace

std::map<std::string, std::string> PgBouncerSection(const std::string& ini) {
  std::map<std::string, std::string> section;
  bool inside = false;
  size_t start = 0;
  while (start <= ini.size()) {
    size_t end = ini.find('\n', start);
    if (end == std::string::npos) end = ini.size();
    std::string line = Trim(std::string_view(ini).substr(start, end - start));
    start = end + 1;
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    if (line.front() == '[') {
      inside = Lower(line) == "[pgbouncer]";
      continue;
    }
    size_t equals = line.find('=');
    if (!inside || equals == std::string::npos) continue;
    section[Lower(Trim(line.substr(0, equals)))] = Trim(line.substr(equals + 1));
  }
  return section;
}

std::vector<Mismatch> CompareConfig(const std::map<std::string, std::string>& ini,
                                    const postgres::ConsoleTable& show_config) {
  std::vector<Mismatch> mismatches;
  for (size_t row = 0; row < show_config.rows.size(); ++row) {
    std::string key = Lower(show_config.Value(row, "key"));
    auto want = ini.find(key);
    if (want == ini.end()) continue;
    std::string running = show_config.Value(row, "value");
    if (SameValue(want->second, running)) continue;
    mismatches.push_back(
        {key, want->second, running, show_config.Value(row, "changeable") != "no"});
  }
  return mismatches;
}

}  // namespace poolkeeper::agent
