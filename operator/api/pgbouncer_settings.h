// What PgBouncer accepts in the [pgbouncer] section, release by release: one table, one line per
// setting (as PgBouncer's own loader keeps it). Validation uses it to allow-list
// `spec.pooler.parameters`; the renderer uses it to emit only keys the image's version knows
// (1.18 refuses to start on an unknown key).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "api/connection_pool.h"

namespace poolkeeper::api {

enum class SettingType { kInt, kBool, kString, kEnum, kList };

enum class SettingAccess {
  kManaged,  // poolkeeper renders it from the spec or its own layout; users cannot override it
  kAllowed,  // users may set it through spec.pooler.parameters
  kRefused,  // exists in pgbouncer, but would break the pod or the budget (e.g. logfile, pidfile)
};

struct SettingInfo {
  std::string_view name;
  PgBouncerVersion since;                 // first release that knows the key
  std::optional<PgBouncerVersion> until;  // first release that no longer knows it
  SettingType type;
  SettingAccess access;
  std::string_view allowed_values;  // for kEnum: "a|b|c"
  // kManaged: the spec field to set instead (or what of poolkeeper's layout sets it);
  // kRefused: why. Shown to the user by CheckParameter.
  std::string_view note = {};
};

std::span<const SettingInfo> AllSettings();  // sorted by name
const SettingInfo* FindSetting(std::string_view name);
bool SettingExistsIn(const SettingInfo& setting, PgBouncerVersion version);

// Checks one user-supplied parameter for `version`: known, allowed, in the version, well-typed and
// free of anything that could inject a line or another setting. Returns the problem, or nullopt.
std::optional<std::string> CheckParameter(std::string_view name, std::string_view value,
                                          PgBouncerVersion version);

}  // namespace poolkeeper::api
