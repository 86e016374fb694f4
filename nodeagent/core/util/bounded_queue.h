#pragma once

// A bounded multi-producer multi-consumer queue. Push blocks while the queue
// is full (back-pressure keeps pipeline memory flat); Pop blocks while it is
// empty; TryPop never blocks. Close() wakes everyone: Push then returns
// false, Pop drains what is left and then returns nullopt.
// Thread-safety: all methods are safe from any thread.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace bunker {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  bool Push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [this] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  std::optional<T> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [this] { return closed_ || !items_.empty(); });
    return TakeFrontLocked();
  }

  // An item if one is waiting, else nullopt at once (closed or not).
  std::optional<T> TryPop() {
    std::lock_guard lock(mu_);
    return TakeFrontLocked();
  }

  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  // Requires mu_. The front item (making room for a Push), or nullopt.
  std::optional<T> TakeFrontLocked() {
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;  // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

}  // namespace bunker
