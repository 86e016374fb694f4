#pragma once

// Logging: spdlog's default logger, writing to stderr. Programs call
// InitLogging once in main; libraries just log with spdlog::info(...) etc.
// Secrets (passwords, keys, credentials) are never passed to a log call.

#include <spdlog/spdlog.h>

#include <string_view>

namespace bunker {

// level: "debug", "info", "warn", "error". Lines carry time, level and text.
void InitLogging(std::string_view level);

}  // namespace bunker
