// Logging set-up: spdlog is the one global of the process. Lines are key=value text or one JSON
// object per line; callers pass structured fields through Log(), never secrets.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace poolkeeper {

enum class LogFormat { kText, kJson };
enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Configures the default spdlog logger to write to stderr in `format` at `level`
// ("debug", "info", "warn", "error"). Unknown levels fall back to info.
void ConfigureLogging(LogFormat format, std::string_view level);

// Writes out what the logger buffered (before the process ends without unwinding).
void FlushLogs();

using LogField = std::pair<std::string_view, std::string>;

// One line: msg="..." key=value ... (values quoted when they need it) or
// {"msg":"...","key":"value",...}, in the configured format.
void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

// The text and JSON renderings of a line's message and fields (what follows ts and level).
std::string FormatLogText(std::string_view message, std::initializer_list<LogField> fields);
std::string FormatLogJson(std::string_view message, std::initializer_list<LogField> fields);

}  // namespace poolkeeper
