#include "common/clock.h"

#include <cstdio>
#include <ctime>
#include <string_view>

namespace poolkeeper {

std::string FormatRfc3339(std::chrono::system_clock::time_point time, TimePrecision precision) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch());
  // Floor division: a time before the epoch still has a fraction in [0, 1 s).
  std::time_t seconds = static_cast<std::time_t>(micros.count() / 1'000'000);
  long fraction = static_cast<long>(micros.count() % 1'000'000);
  if (fraction < 0) {
    fraction += 1'000'000;
    --seconds;
  }
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  if (precision == TimePrecision::kMicroseconds) {
    std::snprintf(text + n, sizeof text - n, ".%06ldZ", fraction);
  } else {
    std::snprintf(text + n, sizeof text - n, "Z");
  }
  return text;
}

std::string Rfc3339Now() { return FormatRfc3339(std::chrono::system_clock::now()); }

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
