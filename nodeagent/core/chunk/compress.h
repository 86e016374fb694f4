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
// first and gives up early when no sample shrinks (inputs of 256 KiB or more:
// one of two 8 KiB samples, a quarter and three quarters in, must compress
// below 97%).
// `src` must not point into *dst.
bool Lz4Compress(ByteSpan src, Bytes* dst);

// The same into caller memory of at least src.size() bytes (nothing is
// allocated or zero-filled): returns the compressed length, or 0 when the
// chunk should be stored raw. `dst` must not overlap `src`.
size_t Lz4CompressTo(ByteSpan src, MutableByteSpan dst);

// Decompresses an LZ4 block that must expand to exactly `raw_size` bytes into
// *dst (resized). Corruption on malformed input or a size mismatch, and before
// allocating anything when `raw_size` is more than LZ4 can expand `src` to
// (255 bytes per input byte) or beyond the LZ4 block limit; *dst is then
// empty. `raw_size` is bounded by the caller before allocation; *dst never
// grows beyond it. `src` must not point into *dst.
Status Lz4Decompress(ByteSpan src, size_t raw_size, Bytes* dst);

// The same into caller memory: `dst` is exactly the expected raw size. On
// failure `dst` holds no meaningful bytes (the caller discards it).
Status Lz4DecompressTo(ByteSpan src, MutableByteSpan dst);

}  // namespace bunker::chunk
