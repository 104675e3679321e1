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

// How a running PgBouncer takes a new value: on RELOAD (the pooler agent applies it in place), or
// only at start (SHOW CONFIG's `changeable` column says no: a new process, so the pod rolls).
enum class SettingApply { kReload, kRestart };

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
  SettingApply apply = SettingApply::kReload;
};

std::span<const SettingInfo> AllSettings();  // sorted by name
const SettingInfo* FindSetting(std::string_view name);
bool SettingExistsIn(const SettingInfo& setting, PgBouncerVersion version);
// Whether a change of `name` needs a new PgBouncer process in `version`: true for the table's
// kRestart keys, and for a key the table does not know or `version` does not have (nothing says
// RELOAD would apply it).
bool NeedsRestart(std::string_view name, PgBouncerVersion version);

// Checks one user-supplied parameter for `version`: known, allowed, in the version, well-typed and
// free of anything that could inject a line or another setting. Returns the problem, or nullopt.
std::optional<std::string> CheckParameter(std::string_view name, std::string_view value,
                                          PgBouncerVersion version);

}  // namespace poolkeeper::api
