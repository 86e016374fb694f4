// DecodeTrailer: the plaintext of a pack trailer (FORMAT.md, "Packs").
//
// Input: blobs_size(u64 LE) || trailer plaintext. `blobs_size` is where the
// trailer starts, i.e. the bytes the blobs must add up to.
//
// Properties of an accepted trailer: blobs are contiguous from offset 0, each
// within the format's length bounds, ending exactly at blobs_size; encoding the
// entries again gives back the input (reserved fields aside). Rejections are
// Corruption.

#include "nodeagent/core/repo/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

// The input with every entry's reserved(u16) zeroed, as the encoder writes it.
Bytes WithoutReserved(ByteSpan plain) {
  Bytes out(plain.begin(), plain.end());
  for (size_t off = 8 + 34; off + 2 <= out.size(); off += repo::kTrailerEntrySize) {
    out[off] = 0;
    out[off + 1] = 0;
  }
  return out;
}

}  // namespace

BUNKER_FUZZ_TARGET(trailer) {
  InputReader in(data);
  uint64_t blobs_size = 0;
  if (!in.U64(&blobs_size)) return false;
  ByteSpan plain = in.Rest();
  Result<std::vector<repo::BlobEntry>> r = repo::DecodeTrailer(plain, blobs_size, "fuzz pack");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
    return false;
  }
  uint64_t offset = 0;
  for (const repo::BlobEntry& e : *r) {
    FUZZ_CHECK(e.offset == offset, "blob offsets are not contiguous");
    FUZZ_CHECK(e.length >= crypto::kSealOverhead && e.raw_length <= repo::kMaxBlobSize,
               "blob length out of bounds");
    offset += e.length;
  }
  FUZZ_CHECK(offset == blobs_size, "blobs do not end where the trailer starts");
  FUZZ_CHECK(repo::EncodeTrailer(*r) == WithoutReserved(plain), "trailer does not round-trip");
  return true;
}

}  // namespace bunker::fuzz
