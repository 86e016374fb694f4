#include "nodeagent/core/chunk/compress.h"

#include <lz4.h>

#include <string>

namespace bunker::chunk {
namespace {

// Inputs at least this large are sampled before being compressed whole: two
// samples, a quarter and three quarters of the way in.
constexpr size_t kSampleFrom = 256 * 1024;
constexpr size_t kSampleSize = 8 * 1024;
// The sample must compress to less than this share of its size (in percent).
constexpr size_t kSampleMaxPercent = 97;
// Each byte of an LZ4 block expands to at most 255 bytes (a 255 length byte).
constexpr size_t kMaxExpansion = 255;

}  // namespace

size_t Lz4CompressTo(ByteSpan src, MutableByteSpan dst) {
  const size_t n = src.size();
  if (n < 2 || n > static_cast<size_t>(LZ4_MAX_INPUT_SIZE) || dst.size() < n - 1) {
    return 0;  // nothing to gain, or more than one LZ4 block can hold
  }
  const char* in = reinterpret_cast<const char*>(src.data());
  char* out = reinterpret_cast<char*>(dst.data());

  if (n >= kSampleFrom) {
    // Random or already compressed data: when neither sample fits in 97% of
    // its size, the chunk is stored raw. Both samples together cost 1/64 of
    // a full attempt on a 1 MiB chunk; compressible data usually passes the
    // first, and a chunk that is compressible in only one half still gets
    // compressed. (One 64 KiB sample from the middle cost 7% of the text's
    // compression time.)
    constexpr size_t kSampleCapacity = kSampleSize * kSampleMaxPercent / 100;
    auto shrinks = [&](size_t offset) {
      return LZ4_compress_default(in + offset, out, static_cast<int>(kSampleSize),
                                  static_cast<int>(kSampleCapacity)) > 0;
    };
    if (!shrinks(n / 4 - kSampleSize / 2) && !shrinks(3 * n / 4 - kSampleSize / 2)) return 0;
  }

  // Only output smaller than the input is any use, so the output capacity is
  // n - 1: LZ4 gives up (returns 0) as soon as it would exceed it.
  const int written = LZ4_compress_default(in, out, static_cast<int>(n), static_cast<int>(n - 1));
  return written <= 0 ? 0 : static_cast<size_t>(written);
}

bool Lz4Compress(ByteSpan src, Bytes* dst) {
  const size_t n = src.size();
  if (n < 2 || n > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) return false;
  // A rejected sample never needs more than the sample's capacity, but the
  // vector is sized once for the whole attempt: simpler, and callers that
  // care about the zero-fill use Lz4CompressTo.
  if (dst->size() < n - 1) dst->resize(n - 1);
  const size_t written = Lz4CompressTo(src, *dst);
  if (written == 0) return false;
  dst->resize(written);
  return true;
}

namespace {

// Checks that come before any allocation: `raw_size` may come from a forged
// header.
Status CheckDecompressSizes(size_t src_size, size_t raw_size) {
  if (raw_size > static_cast<size_t>(LZ4_MAX_INPUT_SIZE) ||
      src_size > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
    return Corruption("lz4: sizes beyond the LZ4 block limit (raw " + std::to_string(raw_size) +
                      ", compressed " + std::to_string(src_size) + ")");
  }
  if (src_size == 0) {  // even an empty input compresses to one token byte
    return Corruption("lz4: empty block");
  }
  if (raw_size > src_size * kMaxExpansion) {
    return Corruption("lz4: " + std::to_string(src_size) + " compressed bytes cannot expand to " +
                      std::to_string(raw_size));
  }
  return Status::Ok();
}

}  // namespace

Status Lz4DecompressTo(ByteSpan src, MutableByteSpan dst) {
  const size_t raw_size = dst.size();
  RETURN_IF_ERROR(CheckDecompressSizes(src.size(), raw_size));
  const int got = LZ4_decompress_safe(reinterpret_cast<const char*>(src.data()),
                                      reinterpret_cast<char*>(dst.data()),
                                      static_cast<int>(src.size()), static_cast<int>(raw_size));
  if (got < 0) {
    return Corruption("lz4: malformed block of " + std::to_string(src.size()) + " bytes");
  }
  if (static_cast<size_t>(got) != raw_size) {
    return Corruption("lz4: block expands to " + std::to_string(got) + " bytes, expected " +
                      std::to_string(raw_size));
  }
  return Status::Ok();
}

Status Lz4Decompress(ByteSpan src, size_t raw_size, Bytes* dst) {
  Status st = CheckDecompressSizes(src.size(), raw_size);
  if (st.ok()) {
    dst->resize(raw_size);
    st = Lz4DecompressTo(src, *dst);
  }
  if (!st.ok()) dst->clear();
  return st;
}

}  // namespace bunker::chunk
