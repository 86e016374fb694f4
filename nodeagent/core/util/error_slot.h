#pragma once

// ErrorSlot: the first error of a group of pipeline threads. Set keeps the
// first non-OK status; failed() lets every thread stop early.
// Thread-safety: all methods are safe from any thread.

#include <atomic>
#include <mutex>

#include "nodeagent/core/util/status.h"

namespace bunker {

class ErrorSlot {
 public:
  void Set(Status st) {
    std::lock_guard lock(mu_);
    if (st_.ok()) st_ = std::move(st);
    failed_ = true;
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  Status Get() {
    std::lock_guard lock(mu_);
    return st_;
  }

 private:
  std::mutex mu_;
  Status st_;  // guarded by mu_
  std::atomic<bool> failed_{false};
};

}  // namespace bunker
