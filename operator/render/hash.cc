// The hashes the renderer puts on objects (config hash, applied hash) and the pod selector.
#include "api/pgbouncer_settings.h"
#include "common/digest.h"
#include "render/internal.h"
#include "render/render.h"

namespace poolkeeper::render {

std::string ConfigHash(std::string_view ini, const nlohmann::json& pod_spec,
                       std::string_view credentials_revision) {
  std::string input(ini);
  input.append("\n").append(pod_spec.dump()).append("\n").append(credentials_revision);
  return Sha256Hex(input);
}

std::string RestartHash(std::string_view ini, api::PgBouncerVersion version,
                        const nlohmann::json& pod_spec, std::string_view restart_revision) {
  // The [pgbouncer] section's `key = value` lines (the renderer's own layout: one per line, no
  // continuation) whose key only a new process applies; [databases] and [users] RELOAD applies.
  std::string input;
  bool in_pgbouncer = false;
  size_t start = 0;
  while (start < ini.size()) {
    size_t end = ini.find('\n', start);
    if (end == std::string_view::npos) end = ini.size();
    std::string_view line = ini.substr(start, end - start);
    start = end + 1;
    if (line.starts_with("[")) {
      in_pgbouncer = line == "[pgbouncer]";
      continue;
    }
    size_t equals = line.find('=');
    if (!in_pgbouncer || equals == std::string_view::npos) continue;
    std::string_view key = line.substr(0, equals);
    while (key.ends_with(' ')) key.remove_suffix(1);
    if (api::NeedsRestart(key, version)) input.append(line).append("\n");
  }
  input.append("\n").append(pod_spec.dump()).append("\n").append(restart_revision);
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
