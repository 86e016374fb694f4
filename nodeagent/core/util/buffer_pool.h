#pragma once

// A fixed set of equally sized, 4 KiB-aligned buffers. Acquire blocks while all
// are in use, which is what bounds the memory of a pipeline: the pool size is
// the most data that can be in flight between reader, workers and writer.
//
// Buffer is a move-only handle; destroying it gives the memory back to the
// pool. The pool must outlive every Buffer taken from it.
// Thread-safety: Acquire/release are safe from any thread.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace bunker {

class BufferPool;

class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { Release(); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  // Bytes in use (set by whoever fills it).
  size_t size() const { return size_; }
  void set_size(size_t n) { size_ = n; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  explicit operator bool() const { return data_ != nullptr; }

  void Release();

 private:
  friend class BufferPool;
  Buffer(BufferPool* pool, uint8_t* data, size_t cap) : pool_(pool), data_(data), capacity_(cap) {}

  BufferPool* pool_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

class BufferPool {
 public:
  static constexpr size_t kAlignment = 4096;

  BufferPool(size_t buffer_size, size_t count);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Blocks until a buffer is free.
  Buffer Acquire();
  // Returns an empty Buffer when none is free.
  Buffer TryAcquire();

  size_t buffer_size() const { return buffer_size_; }
  size_t count() const { return count_; }
  // The one region every buffer lies in (for registering it with a ring).
  uint8_t* arena() const { return arena_; }
  size_t arena_bytes() const { return arena_bytes_; }

  // Backs every buffer with 4 KiB pages faulted in now (io_alloc.h,
  // PopulateSmallPages). Only before the first Acquire: its fallback on old
  // kernels writes to each page.
  void FaultInSmallPages();

 private:
  friend class Buffer;
  void Return(uint8_t* data);

  const size_t buffer_size_;
  const size_t count_;
  uint8_t* arena_ = nullptr;
  size_t arena_bytes_ = 0;  // as AllocateIoBuffer rounded it
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint8_t*> free_;  // guarded by mu_
};

}  // namespace bunker
