// Lenient reads of JSON fields where a missing or mistyped field has a sensible fallback: what the
// operator wrote itself (statuses: an older or hand-edited one must not stop a reconcile) and the
// API server's bodies (a Lease, object metadata), which are not trusted to be well formed;
// nlohmann's value() would throw on a non-object or a value of another type. User input goes
// through api::FieldReader instead, which reports every problem.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>

namespace poolkeeper {

template <typename T>
T JsonGet(const nlohmann::json& object, std::string_view key, T fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->template get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else {
    return it->is_number_integer() ? it->template get<T>() : fallback;
  }
}

}  // namespace poolkeeper
