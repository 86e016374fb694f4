#pragma once

// Shows a Progress while an operation runs: on a terminal a one-line bar
// (bytes, rate, ETA) redrawn every half second on stderr; with --json, one
// JSON object per second on stderr ({"type":"progress",…}); otherwise nothing.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "nodeagent/core/mover/progress.h"

namespace bunker::agent {

class ProgressPrinter {
 public:
  ProgressPrinter(const mover::Progress* progress, std::string verb, bool json);
  ~ProgressPrinter();  // Stop()
  void Stop();

 private:
  void Loop();
  void Print(bool final);

  const mover::Progress* progress_;
  std::string verb_;
  bool json_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::string HumanBytes(uint64_t bytes);

}  // namespace bunker::agent
