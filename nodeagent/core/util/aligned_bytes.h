#pragma once

// AlignedBytes: a growable byte buffer whose storage starts on a 4 KiB
// boundary and whose growth never zero-fills. Pack buffers use it so that a
// backend can hand the bytes to the kernel with O_DIRECT (no copy into the
// page cache), and so that a buffer kept for reuse costs no page faults.
//
// Move-only. Not thread-safe; one owner at a time.

#include <cstddef>
#include <cstdint>
#include <span>

namespace bunker {

class AlignedBytes {
 public:
  static constexpr size_t kAlignment = 4096;

  AlignedBytes() = default;
  explicit AlignedBytes(size_t capacity) { reserve(capacity); }
  AlignedBytes(AlignedBytes&& other) noexcept { *this = static_cast<AlignedBytes&&>(other); }
  AlignedBytes& operator=(AlignedBytes&& other) noexcept;
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  ~AlignedBytes();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }

  // Keeps the storage (the point of reusing a buffer).
  void clear() { size_ = 0; }
  // Grows the storage to at least n bytes (rounded up to the alignment),
  // keeping the contents. Throws std::bad_alloc like std::vector.
  void reserve(size_t n);
  // Sets the size to n, growing the storage if needed (geometrically); bytes
  // beyond the old size are not initialised.
  void resize(size_t n);
  // Appends bytes, growing geometrically when full.
  void Append(std::span<const uint8_t> bytes);

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace bunker
