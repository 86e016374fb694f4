// DecodeIndex: the plaintext of an index file (FORMAT.md, "Index files").
//
// Input: the plaintext (what BlobCodec::Open returns for a stored index).
//
// Properties: rejections are Corruption; every accepted blob is within the
// format's length bounds; encoding an accepted index gives back the input
// (reserved fields aside), so reader and writer agree on the layout.

#include "nodeagent/core/repo/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

// The input with each blob entry's reserved(u16) zeroed, as the encoder
// writes it. Walks the layout without trusting counts beyond the bytes.
Bytes WithoutReserved(ByteSpan plain) {
  Bytes out(plain.begin(), plain.end());
  if (out.size() < 8) return out;
  uint32_t packs = LoadU32(out.data() + 4);
  size_t pos = 8;
  for (uint32_t p = 0; p < packs && pos + 36 <= out.size(); ++p) {
    uint32_t blobs = LoadU32(out.data() + pos + 32);
    pos += 36;
    for (uint32_t b = 0; b < blobs && pos + repo::kIndexEntrySize <= out.size(); ++b) {
      out[pos + 34] = 0;
      out[pos + 35] = 0;
      pos += repo::kIndexEntrySize;
    }
  }
  return out;
}

}  // namespace

BUNKER_FUZZ_TARGET(index) {
  Result<std::vector<repo::PackEntries>> r = repo::DecodeIndex(data, "fuzz index");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
    return false;
  }
  for (const repo::PackEntries& p : *r) {
    for (const repo::BlobEntry& e : p.blobs) {
      FUZZ_CHECK(e.length >= crypto::kSealOverhead && e.raw_length <= repo::kMaxBlobSize,
                 "blob length out of bounds");
    }
  }
  FUZZ_CHECK(repo::EncodeIndex(*r) == WithoutReserved(data), "index does not round-trip");
  return true;
}

}  // namespace bunker::fuzz
