#include "appliance/auth/login_throttle.h"

namespace bunker::auth {

void LoginThrottle::ExpireLocked(std::deque<int64_t>* failures, int64_t now) const {
  while (!failures->empty() && failures->front() <= now - window_) {
    failures->pop_front();
  }
}

int64_t LoginThrottle::RetryAfter(const std::string& key, int64_t now) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  if (it == failures_.end()) {
    return 0;
  }
  ExpireLocked(&it->second, now);
  if (static_cast<int>(it->second.size()) < max_failures_) {
    return 0;
  }
  return it->second.front() + window_ - now;
}

void LoginThrottle::RecordFailure(const std::string& key, int64_t now) {
  std::lock_guard lock(mu_);
  if (failures_.size() >= kMaxKeys && failures_.find(key) == failures_.end()) {
    for (auto it = failures_.begin(); it != failures_.end();) {
      ExpireLocked(&it->second, now);
      it = it->second.empty() ? failures_.erase(it) : std::next(it);
    }
    if (failures_.size() >= kMaxKeys) {
      failures_.clear();
    }
  }
  std::deque<int64_t>& f = failures_[key];
  ExpireLocked(&f, now);
  f.push_back(now);
  while (static_cast<int>(f.size()) > max_failures_) {
    f.pop_front();
  }
}

void LoginThrottle::RecordSuccess(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

}  // namespace bunker::auth
