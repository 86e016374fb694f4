#include "nodeagent/core/chunk/compress.h"

#include <lz4.h>

#include <string>

namespace bunker::chunk {
namespace {

// Inputs at least this large are sampled before being compressed whole.
constexpr size_t kSampleFrom = 256 * 1024;
constexpr size_t kSampleSize = 64 * 1024;
// The sample must compress to less than this share of its size (in percent).
constexpr size_t kSampleMaxPercent = 97;
// Each byte of an LZ4 block expands to at most 255 bytes (a 255 length byte).
constexpr size_t kMaxExpansion = 255;

}  // namespace

bool Lz4Compress(ByteSpan src, Bytes* dst) {
  const size_t n = src.size();
  if (n < 2 || n > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
    return false;  // nothing to gain, or more than one LZ4 block can hold
  }
  const char* in = reinterpret_cast<const char*>(src.data());

  if (n >= kSampleFrom) {
    // Random or already compressed data: a sample from the middle that does
    // not fit in 97% of its size costs 1/16 of a full attempt on a 1 MiB chunk.
    // *dst only grows to the sample's capacity here, so a rejected chunk does
    // not pay for zero-filling a full-size buffer either.
    constexpr size_t kSampleCapacity = kSampleSize * kSampleMaxPercent / 100;
    if (dst->size() < kSampleCapacity) {
      dst->resize(kSampleCapacity);
    }
    const size_t offset = (n - kSampleSize) / 2;
    if (LZ4_compress_default(in + offset, reinterpret_cast<char*>(dst->data()),
                             static_cast<int>(kSampleSize),
                             static_cast<int>(kSampleCapacity)) <= 0) {
      return false;
    }
  }

  // Only output smaller than the input is any use, so the output capacity is
  // n - 1: LZ4 gives up (returns 0) as soon as it would exceed it.
  dst->resize(n - 1);
  const int written = LZ4_compress_default(in, reinterpret_cast<char*>(dst->data()),
                                           static_cast<int>(n), static_cast<int>(n - 1));
  if (written <= 0) {
    return false;
  }
  dst->resize(static_cast<size_t>(written));
  return true;
}

Status Lz4Decompress(ByteSpan src, size_t raw_size, Bytes* dst) {
  // Both checks come before any allocation: `raw_size` may come from a forged
  // header.
  if (raw_size > static_cast<size_t>(LZ4_MAX_INPUT_SIZE) ||
      src.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
    dst->clear();
    return Corruption("lz4: sizes beyond the LZ4 block limit (raw " + std::to_string(raw_size) +
                      ", compressed " + std::to_string(src.size()) + ")");
  }
  if (src.empty()) {  // even an empty input compresses to one token byte
    dst->clear();
    return Corruption("lz4: empty block");
  }
  if (raw_size > src.size() * kMaxExpansion) {
    dst->clear();
    return Corruption("lz4: " + std::to_string(src.size()) + " compressed bytes cannot expand to " +
                      std::to_string(raw_size));
  }
  dst->resize(raw_size);
  const int got = LZ4_decompress_safe(reinterpret_cast<const char*>(src.data()),
                                      reinterpret_cast<char*>(dst->data()),
                                      static_cast<int>(src.size()), static_cast<int>(raw_size));
  if (got < 0) {
    dst->clear();
    return Corruption("lz4: malformed block of " + std::to_string(src.size()) + " bytes");
  }
  if (static_cast<size_t>(got) != raw_size) {
    dst->clear();
    return Corruption("lz4: block expands to " + std::to_string(got) + " bytes, expected " +
                      std::to_string(raw_size));
  }
  return Status::Ok();
}

}  // namespace bunker::chunk
