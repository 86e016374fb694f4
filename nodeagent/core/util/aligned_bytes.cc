#include "nodeagent/core/util/aligned_bytes.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "nodeagent/core/util/io_alloc.h"

namespace bunker {

AlignedBytes& AlignedBytes::operator=(AlignedBytes&& other) noexcept {
  if (this != &other) {
    FreeIoBuffer(data_, capacity_);
    data_ = other.data_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.capacity_ = 0;
  }
  return *this;
}

AlignedBytes::~AlignedBytes() { FreeIoBuffer(data_, capacity_); }

void AlignedBytes::reserve(size_t n) {
  if (n <= capacity_) return;
  size_t cap = 0;
  uint8_t* p = AllocateIoBuffer(n, &cap);
  if (size_ > 0) std::memcpy(p, data_, size_);
  FreeIoBuffer(data_, capacity_);
  data_ = p;
  capacity_ = cap;
}

void AlignedBytes::resize(size_t n) {
  if (n > capacity_) reserve(std::max(n, capacity_ + capacity_ / 2));
  size_ = n;
}

void AlignedBytes::Append(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  if (size_ + bytes.size() > capacity_) {
    reserve(std::max(size_ + bytes.size(), capacity_ + capacity_ / 2));
  }
  std::memcpy(data_ + size_, bytes.data(), bytes.size());
  size_ += bytes.size();
}

}  // namespace bunker
