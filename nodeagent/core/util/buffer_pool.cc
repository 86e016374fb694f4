#include "nodeagent/core/util/buffer_pool.h"

#include <cstdint>
#include <cstdlib>
#include <new>

#include "nodeagent/core/util/io_alloc.h"

namespace bunker {

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = other.pool_;
    data_ = other.data_;
    capacity_ = other.capacity_;
    size_ = other.size_;
    other.pool_ = nullptr;
    other.data_ = nullptr;
    other.capacity_ = 0;
    other.size_ = 0;
  }
  return *this;
}

void Buffer::Release() {
  if (pool_ != nullptr && data_ != nullptr) {
    pool_->Return(data_);
  }
  pool_ = nullptr;
  data_ = nullptr;
  capacity_ = 0;
  size_ = 0;
}

BufferPool::BufferPool(size_t buffer_size, size_t count)
    : buffer_size_((buffer_size + kAlignment - 1) / kAlignment * kAlignment), count_(count) {
  if (count_ != 0 && buffer_size_ > SIZE_MAX / count_) throw std::bad_alloc();
  arena_ = AllocateIoBuffer(buffer_size_ * count_, &arena_bytes_);
  free_.reserve(count_);
  for (size_t i = 0; i < count_; ++i) {
    free_.push_back(arena_ + i * buffer_size_);
  }
}

BufferPool::~BufferPool() { FreeIoBuffer(arena_, arena_bytes_); }

void BufferPool::FaultInSmallPages() { PopulateSmallPages(arena_, arena_bytes_); }

Buffer BufferPool::Acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !free_.empty(); });
  uint8_t* p = free_.back();
  free_.pop_back();
  return Buffer(this, p, buffer_size_);
}

Buffer BufferPool::TryAcquire() {
  std::lock_guard lock(mu_);
  if (free_.empty()) {
    return Buffer();
  }
  uint8_t* p = free_.back();
  free_.pop_back();
  return Buffer(this, p, buffer_size_);
}

void BufferPool::Return(uint8_t* data) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(data);
  }
  cv_.notify_one();
}

}  // namespace bunker
