#include "common/clock.h"

#include <cstdio>
#include <ctime>
#include <optional>
#include <string_view>

namespace poolkeeper {

namespace {

std::string Format(int64_t unix_seconds, std::optional<long> micros) {
  std::time_t seconds = static_cast<std::time_t>(unix_seconds);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[48];
  size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  if (micros) {
    std::snprintf(text + n, sizeof text - n, ".%06ldZ", *micros);
  } else {
    std::snprintf(text + n, sizeof text - n, "Z");
  }
  return text;
}

}  // namespace

std::string FormatRfc3339(std::chrono::system_clock::time_point time, TimePrecision precision) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch());
  // Floor division: a time before the epoch still has a fraction in [0, 1 s).
  int64_t seconds = micros.count() / 1'000'000;
  long fraction = static_cast<long>(micros.count() % 1'000'000);
  if (fraction < 0) {
    fraction += 1'000'000;
    --seconds;
  }
  return Format(seconds,
                precision == TimePrecision::kMicroseconds ? std::optional(fraction) : std::nullopt);
}

std::string FormatRfc3339(int64_t unix_seconds) { return Format(unix_seconds, std::nullopt); }

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
