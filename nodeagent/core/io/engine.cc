#include "nodeagent/core/io/engine.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "nodeagent/core/util/log.h"

namespace bunker::io {

Result<Engine> ParseEngine(std::string_view name) {
  if (name == "auto") {
    return Engine::kAuto;
  }
  if (name == "io_uring") {
    return Engine::kIoUring;
  }
  if (name == "pread") {
    return Engine::kPread;
  }
  return InvalidArgument("unknown I/O engine \"" + std::string(name) +
                         "\" (expected auto, io_uring or pread)");
}

std::string_view EngineName(Engine e) {
  switch (e) {
    case Engine::kAuto:
      return "auto";
    case Engine::kIoUring:
      return "io_uring";
    case Engine::kPread:
      return "pread";
  }
  return "unknown";
}

namespace internal {

namespace {

std::atomic<bool> g_read_fallback_logged{false};
std::atomic<bool> g_write_fallback_logged{false};

void LogFallbackOnce(Direction direction, const Status& why) {
  std::atomic<bool>& logged =
      direction == Direction::kRead ? g_read_fallback_logged : g_write_fallback_logged;
  if (logged.exchange(true)) {
    return;
  }
  // The ring setup message ends with strerror(); show just that part.
  std::string reason = why.message();
  if (size_t colon = reason.rfind(": "); colon != std::string::npos) {
    reason = reason.substr(colon + 2);
  }
  spdlog::warn(
      "io_uring unavailable ({}); {} with a {} thread pool (a seccomp profile or "
      "kernel.io_uring_disabled may forbid io_uring; BUNKER_IO_ENGINE=pread selects the pool "
      "explicitly)",
      reason, direction == Direction::kRead ? "reading" : "writing",
      direction == Direction::kRead ? "pread" : "pwrite");
}

}  // namespace

Result<EngineChoice> ChooseEngine(Engine requested, unsigned ring_entries, Direction direction) {
  Engine engine = requested;
  if (const char* env = std::getenv("BUNKER_IO_ENGINE"); env != nullptr && *env != '\0') {
    Result<Engine> parsed = ParseEngine(env);
    if (!parsed.ok()) {
      return parsed.status().Annotated("BUNKER_IO_ENGINE");
    }
    engine = *parsed;
  }
  EngineChoice choice;
  if (engine == Engine::kPread) {
    choice.engine = Engine::kPread;
    return choice;
  }
  Result<std::unique_ptr<Uring>> ring = Uring::Create(ring_entries);
  if (ring.ok()) {
    choice.engine = Engine::kIoUring;
    choice.ring = std::move(*ring);
    return choice;
  }
  if (engine == Engine::kIoUring) {
    return ring.Annotated("io_uring engine requested but unavailable");
  }
  LogFallbackOnce(direction, ring.status());
  choice.engine = Engine::kPread;
  return choice;
}

void ResetFallbackWarningsForTest() {
  g_read_fallback_logged.store(false);
  g_write_fallback_logged.store(false);
}

}  // namespace internal
}  // namespace bunker::io
