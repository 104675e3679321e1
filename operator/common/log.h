// Logging set-up: spdlog is the one global of the process. Lines are key=value text or one JSON
// object per line; callers pass structured fields, never secrets.
#pragma once

#include <string_view>

namespace poolkeeper {

enum class LogFormat { kText, kJson };

// Configures the default spdlog logger to write to stderr in `format` at `level`
// ("debug", "info", "warn", "error"). Unknown levels fall back to info.
void ConfigureLogging(LogFormat format, std::string_view level);

}  // namespace poolkeeper
