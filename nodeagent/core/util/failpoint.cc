#include "nodeagent/core/util/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace bunker {

namespace {

struct Arm {
  std::string action;  // crash | error | hang
  long nth = 0;        // 0: every time
  long hits = 0;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Arm, std::less<>> arms;  // guarded by mu
  std::set<std::string, std::less<>> seen;       // guarded by mu
  const char* list_file = nullptr;
};

Registry& Get() {
  static Registry* r = [] {
    auto* reg = new Registry();
    reg->list_file = std::getenv("BUNKER_FAILPOINT_LIST");
    if (const char* spec = std::getenv("BUNKER_FAILPOINT")) {
      std::string s(spec);
      size_t start = 0;
      while (start <= s.size()) {
        size_t end = s.find(',', start);
        if (end == std::string::npos) end = s.size();
        std::string item = s.substr(start, end - start);
        size_t colon = item.rfind(':');
        if (colon != std::string::npos) {
          Arm arm;
          std::string action = item.substr(colon + 1);
          size_t at = action.find('@');
          if (at != std::string::npos) {
            arm.nth = std::strtol(action.c_str() + at + 1, nullptr, 10);
            action.resize(at);
          }
          arm.action = action;
          reg->arms[item.substr(0, colon)] = arm;
        }
        start = end + 1;
      }
    }
    return reg;
  }();
  return *r;
}

}  // namespace

Status Failpoint(std::string_view name) {
  Registry& reg = Get();
  if (reg.arms.empty() && reg.list_file == nullptr) {
    return Status::Ok();
  }
  std::string action;
  {
    std::lock_guard lock(reg.mu);
    if (reg.list_file != nullptr && reg.seen.insert(std::string(name)).second) {
      if (FILE* f = std::fopen(reg.list_file, "a")) {
        std::fprintf(f, "%.*s\n", static_cast<int>(name.size()), name.data());
        std::fclose(f);
      }
    }
    auto it = reg.arms.find(name);
    if (it == reg.arms.end()) {
      return Status::Ok();
    }
    ++it->second.hits;
    if (it->second.nth != 0 && it->second.hits != it->second.nth) {
      return Status::Ok();
    }
    action = it->second.action;
  }
  if (action == "crash") {
    std::fprintf(stderr, "failpoint %.*s: crash\n", static_cast<int>(name.size()), name.data());
    _exit(kFailpointCrashExitCode);
  }
  if (action == "stop") {
    // As if an operator or the kernel froze the process (SIGSTOP): it goes
    // on where it stopped once someone sends SIGCONT.
    std::fprintf(stderr, "failpoint %.*s: stop\n", static_cast<int>(name.size()), name.data());
    std::fflush(stderr);
    ::raise(SIGSTOP);
    return Status::Ok();
  }
  if (action == "hang") {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }
  if (action == "error") {
    return IOError("failpoint " + std::string(name));
  }
  return Status::Ok();
}

}  // namespace bunker
