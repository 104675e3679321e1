#include "common/clock.h"

#include <ctime>
#include <string_view>

namespace poolkeeper {

std::string Rfc3339Now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::optional<int64_t> ParseRfc3339(const std::string& text) {
  std::tm utc{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
  if (end == nullptr) return std::nullopt;
  // Fractions of a second, if any, do not matter here; the zone must be UTC.
  while (*end == '.' || (*end >= '0' && *end <= '9')) ++end;
  if (std::string_view(end) != "Z") return std::nullopt;
  return static_cast<int64_t>(timegm(&utc));
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace poolkeeper
