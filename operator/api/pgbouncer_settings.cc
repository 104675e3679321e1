// Placeholder until the settings table lands: knows nothing, allows nothing.
#include "api/pgbouncer_settings.h"

namespace poolkeeper::api {

std::span<const SettingInfo> AllSettings() { return {}; }
const SettingInfo* FindSetting(std::string_view) { return nullptr; }
bool SettingExistsIn(const SettingInfo& setting, PgBouncerVersion version) {
  return version >= setting.since && (!setting.until || version < *setting.until);
}
std::optional<std::string> CheckParameter(std::string_view, std::string_view, PgBouncerVersion) {
  return "not a setting poolkeeper knows";
}

}  // namespace poolkeeper::api
