// Lenient reads of fields in JSON the operator wrote itself (statuses, annotations it set): a field
// that is missing or of another type gives the fallback, since an older or hand-edited status must
// not stop a reconcile. User input goes through FieldReader instead, which reports every problem.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

namespace poolkeeper::api {

template <typename T>
T JsonGet(const nlohmann::json& object, const char* key, T fallback) {
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

}  // namespace poolkeeper::api
