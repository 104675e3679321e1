#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>

namespace poolkeeper {
namespace {

std::atomic<LogFormat> format_in_use{LogFormat::kText};

std::string QuoteIfNeeded(std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      plain = false;
    }
  }
  if (plain) return std::string(value);
  // A JSON string is a quoted, escaped value logfmt parsers accept.
  return nlohmann::json(std::string(value))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void ConfigureLogging(LogFormat format, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("poolkeeper");
  format_in_use = format;
  if (format == LogFormat::kJson) {
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
  }
  auto parsed = spdlog::level::from_str(std::string(level));
  logger->set_level(parsed == spdlog::level::off ? spdlog::level::info : parsed);
  spdlog::set_default_logger(logger);
}

std::string FormatLogText(std::string_view message, std::initializer_list<LogField> fields) {
  std::string line = "msg=" + QuoteIfNeeded(message);
  for (const auto& [key, value] : fields) {
    line += " ";
    line += key;
    line += "=" + QuoteIfNeeded(value);
  }
  return line;
}

std::string FormatLogJson(std::string_view message, std::initializer_list<LogField> fields) {
  auto quoted = [](std::string_view text) {
    return nlohmann::json(std::string(text))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string line = "\"msg\":" + quoted(message);
  for (const auto& [key, value] : fields) line += "," + quoted(key) + ":" + quoted(value);
  return line;
}

void FlushLogs() { spdlog::default_logger()->flush(); }

void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  std::string line = format_in_use == LogFormat::kJson ? FormatLogJson(message, fields)
                                                       : FormatLogText(message, fields);
  switch (level) {
    case LogLevel::kDebug:
      spdlog::debug("{}", line);
      break;
    case LogLevel::kInfo:
      spdlog::info("{}", line);
      break;
    case LogLevel::kWarn:
      spdlog::warn("{}", line);
      break;
    case LogLevel::kError:
      spdlog::error("{}", line);
      break;
  }
}

}  // namespace poolkeeper
