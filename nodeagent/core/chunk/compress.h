#pragma once

// LZ4 block compression of chunk payloads. Incompressible chunks are stored
// raw: Compress says so by returning false, and the caller records the flag.
// Thread-safe (no shared state).

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::chunk {

// Compresses `src` into *dst (resized to the compressed length). Returns true
// only when the result is smaller than `src`; otherwise *dst is unspecified and
// the chunk should be stored raw. Cheap on incompressible input: it samples
// first and gives up early when the sample does not shrink.
bool Lz4Compress(ByteSpan src, Bytes* dst);

// Decompresses an LZ4 block that must expand to exactly `raw_size` bytes into
// *dst (resized). Corruption on malformed input or a size mismatch. `raw_size`
// is bounded by the caller before allocation.
Status Lz4Decompress(ByteSpan src, size_t raw_size, Bytes* dst);

}  // namespace bunker::chunk
