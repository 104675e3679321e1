#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace poolkeeper {

void ConfigureLogging(LogFormat format, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("poolkeeper");
  if (format == LogFormat::kJson) {
    // Messages are emitted already JSON-escaped by callers that choose JSON.
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_default_logger(logger);
}

}  // namespace poolkeeper
