// The reconciler's small readings of stored objects (reconciler.h): ledger order, annotations, and
// whether a stored object still holds what the operator applied. Shared with the callers that
// gather its inputs.
#include <algorithm>

#include "controller/pool_index.h"
#include "controller/reconciler.h"
#include "render/render.h"

namespace poolkeeper::controller {

using nlohmann::json;

void SortLedger(std::vector<budget::SharedPool>& pools) {
  std::ranges::stable_sort(pools, [](const budget::SharedPool& a, const budget::SharedPool& b) {
    return LedgerBefore(*a, *b);
  });
}

std::string StringAnnotation(const json& object, const char* name) {
  auto pointer = json::json_pointer("/metadata/annotations") / name;
  if (!object.is_object() || !object.contains(pointer) || !object[pointer].is_string()) return "";
  return object[pointer].get<std::string>();
}

std::optional<int64_t> IntAnnotation(const json& object, const char* name) {
  const std::string text = StringAnnotation(object, name);
  if (text.empty()) return std::nullopt;
  try {
    size_t used = 0;
    int64_t n = std::stoll(text, &used);
    if (used == text.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<int64_t> PlannedConnections(const json& config_map) {
  return IntAnnotation(config_map, render::kPlannedConnectionsAnnotation);
}

bool Contains(const json& stored, const json& desired) {
  if (desired.is_object()) {
    if (!stored.is_object()) return false;
    for (const auto& [key, value] : desired.items()) {
      auto it = stored.find(key);
      if (it == stored.end() || !Contains(*it, value)) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!stored.is_array() || stored.size() != desired.size()) return false;
    for (size_t i = 0; i < desired.size(); ++i) {
      if (!Contains(stored[i], desired[i])) return false;
    }
    return true;
  }
  return stored == desired;
}

}  // namespace poolkeeper::controller
