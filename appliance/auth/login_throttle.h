#pragma once

// LoginThrottle: slows password guessing. After `max_failures` failed logins
// for one key (user name and client address) within `window_seconds`, that
// key is refused until the oldest failure leaves the window; a success clears
// the key. Keys by name *and* address, so one guessing client cannot lock a
// user out for everyone else. Memory is bounded: at most kMaxKeys keys are
// tracked; beyond that, keys whose failures have expired are dropped first,
// then the whole table is reset (failing open rather than growing).
// Thread-safety: all methods are thread-safe (one mutex).

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace bunker::auth {

class LoginThrottle {
 public:
  static constexpr size_t kMaxKeys = 100000;

  explicit LoginThrottle(int max_failures = 5, int64_t window_seconds = 300)
      : max_failures_(max_failures), window_(window_seconds) {}

  // Seconds until `key` may try again; 0 when it may now.
  int64_t RetryAfter(const std::string& key, int64_t now);
  void RecordFailure(const std::string& key, int64_t now);
  void RecordSuccess(const std::string& key);

 private:
  void ExpireLocked(std::deque<int64_t>* failures, int64_t now) const;

  const int max_failures_;
  const int64_t window_;
  std::mutex mu_;
  std::map<std::string, std::deque<int64_t>> failures_;  // guarded by mu_
};

}  // namespace bunker::auth
