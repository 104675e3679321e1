// "namespace/name": how the work queue, the pool index and the Secret cache name an object.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace poolkeeper::controller {

inline std::string ObjectKey(std::string_view ns, std::string_view name) {
  return std::string(ns) + "/" + std::string(name);
}

// The namespace and name of a key made by ObjectKey.
inline std::pair<std::string, std::string> SplitObjectKey(std::string_view key) {
  auto slash = key.find('/');
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

}  // namespace poolkeeper::controller
