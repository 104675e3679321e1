// The hashes the renderer puts on objects (config hash, applied hash) and the pod selector.
#include "common/digest.h"
#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {

std::string ConfigHash(std::string_view ini, std::string_view credentials_revision) {
  std::string input;
  input.reserve(ini.size() + 1 + credentials_revision.size());
  input.append(ini).append("\n").append(credentials_revision);
  return Sha256Hex(input);
}

std::string AppliedHash(const nlohmann::json& object) { return Sha256Hex(object.dump()); }

std::string PodSelector(const api::ConnectionPool& pool) {
  const nlohmann::json labels = internal::SelectorLabels(pool);  // items() must not outlive it
  std::string selector;
  for (const auto& [key, value] : labels.items()) {
    if (!selector.empty()) selector += ",";
    selector += key + "=" + value.get<std::string>();
  }
  return selector;
}

}  // namespace poolkeeper::render
