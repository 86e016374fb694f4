#pragma once

// Chunking: where a byte stream is cut into chunks.
//
// Block mode cuts every `size` bytes (FixedChunker). File mode uses FastCDC
// (Xia et al., USENIX ATC '16) with normalized chunking, so an insertion
// changes only the chunks near it. The gear table is derived from a secret
// seed (the repository key), so chunk boundaries do not leak content to
// someone who can see chunk sizes.
//
// Thread-safety: chunkers are immutable after construction; FindBoundary is
// const and may be called from several threads.

#include <array>
#include <cstddef>
#include <cstdint>

#include "nodeagent/core/util/bytes.h"

namespace bunker::chunk {

struct CdcParams {
  uint32_t min_size = 256 * 1024;
  uint32_t avg_size = 1024 * 1024;  // a power of two
  uint32_t max_size = 4 * 1024 * 1024;
};

using GearTable = std::array<uint64_t, 256>;

// Expands a 32-byte seed into a gear table deterministically: the 2048 bytes
// HMAC-SHA256(seed, "bunker/fastcdc-gear/v1" || u8(i)) for i = 0..63,
// concatenated, read as 256 little-endian uint64 values. This derivation is
// part of the repository format: changing it moves every boundary, so new
// backups would no longer deduplicate against old ones. Aborts unless the
// seed is 32 bytes.
GearTable MakeGearTable(ByteSpan seed32);

// Cut rule (FastCDC with normalized chunking level 2, as fastcdc-rs "v2020"):
// nothing is hashed in the first min_size bytes; from there the gear hash
// h = (h << 1) + gear[byte] runs, and a chunk ends after the byte at which
// (h & mask) == 0, with a mask of log2(avg_size) + 2 bits before avg_size and
// log2(avg_size) - 2 bits after it (the FastCDC paper's spread-out masks); a
// chunk with no such byte ends at max_size. So every chunk but the last is in
// (min_size, max_size], and a cut depends only on the chunk's own bytes.
class FastCdc {
 public:
  // Requires 64 <= min_size <= avg_size <= max_size, min_size < max_size, and
  // avg_size a power of two from 128 bytes to 8 MiB; aborts otherwise (callers
  // validate user-supplied sizes first).
  FastCdc(const CdcParams& params, const GearTable& gear);

  // Returns the length of the next chunk at the start of `data`. If `eof` is
  // false and no cut point is found before data.size() < max_size, returns 0:
  // the caller must supply more data (at least max_size bytes or up to EOF).
  // With eof true, returns data.size() when no cut point is found.
  size_t FindBoundary(ByteSpan data, bool eof) const;

  const CdcParams& params() const { return params_; }

 private:
  CdcParams params_;
  GearTable gear_;
  uint64_t mask_small_;  // harder mask before avg_size (normalized chunking)
  uint64_t mask_large_;  // easier mask after avg_size
};

// True when every byte of `data` is zero (true for empty data). Runs at
// memory speed (tens of GB/s) and stops soon after the first nonzero byte.
bool IsAllZero(ByteSpan data);

}  // namespace bunker::chunk
