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

// Expands a 32-byte seed into a gear table deterministically.
GearTable MakeGearTable(ByteSpan seed32);

class FastCdc {
 public:
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

// True when every byte of `data` is zero (vectorised scan).
bool IsAllZero(ByteSpan data);

}  // namespace bunker::chunk
