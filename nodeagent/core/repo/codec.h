#pragma once

// Encoders and decoders of the repository's binary objects (FORMAT.md):
// blobs, pack trailers, index files, block content lists. Decoders treat
// their input as hostile: every count and length is bounded by the bytes
// actually present before anything is allocated, and failures are Corruption
// naming the object.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/crypto/hmac_pair.h"
#include "nodeagent/core/repo/ids.h"
#include "nodeagent/core/util/aligned_bytes.h"
#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::repo {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kMaxBlobSize = 16u << 20;  // raw_length bound
inline constexpr uint8_t kFlagLz4 = 1;
inline constexpr size_t kTrailerEntrySize = 44;
inline constexpr size_t kIndexEntrySize = 48;
inline constexpr size_t kPackFooterSize = 8;
inline constexpr char kPackMagic[4] = {'B', 'K', 'P', '1'};
inline constexpr uint32_t kContentIdsPerMeta = 4096;

// AADs of the sealed object kinds.
inline constexpr std::string_view kAadIndex = "bunker-index-v1";
inline constexpr std::string_view kAadSnapshot = "bunker-snapshot-v1";
inline constexpr std::string_view kAadTrailer = "bunker-pack-trailer-v1";
inline constexpr std::string_view kAadLease = "bunker-lease-v1";

struct MasterKey {
  crypto::Key enc{};
  crypto::Key mac{};
};

// Where a blob lives inside a pack.
struct BlobEntry {
  BlobId id{};
  BlobType type = BlobType::kData;
  uint8_t flags = 0;
  uint32_t offset = 0;      // within the pack
  uint32_t length = 0;      // stored (sealed) bytes
  uint32_t raw_length = 0;  // plaintext bytes
};

struct PackEntries {
  ObjectId pack{};
  std::vector<BlobEntry> blobs;
  // Bytes of the pack object as uploaded, when the one who wrote it says so
  // (PackWriter); 0 when unknown (entries read back from index files).
  uint64_t stored_size = 0;
};

// Seals, opens and identifies blobs and sealed objects with the repository
// keys. Holds reusable OpenSSL contexts and scratch buffers: one per thread.
class BlobCodec {
 public:
  explicit BlobCodec(const MasterKey& key);

  BlobId ComputeId(ByteSpan plaintext);
  // The ids of two chunks at once (as ComputeId each): on CPUs with SHA
  // extensions two interleaved hashes cost little more than one
  // (crypto/hmac_pair.h).
  void ComputeIds(ByteSpan a, ByteSpan b, BlobId* id_a, BlobId* id_b) const {
    hmac_pair_.Compute(a, b, id_a, id_b);
  }
  // Keyed fingerprint (GMAC under a key derived from the mac key) of a chunk.
  crypto::Fingerprint Fingerprint(ByteSpan plaintext) { return gmac_.Compute(plaintext); }

  // Compresses `plaintext` when that shrinks it, seals it and appends the
  // stored form to *out; sets *flags. With `verify`, opens the result again,
  // decompresses it and compares it with `plaintext` (Internal on mismatch: a
  // codec or cipher fault, or damaged memory).
  Status Encode(BlobType type, const BlobId& id, ByteSpan plaintext, bool verify, Bytes* out,
                uint8_t* flags);
  // The same, appending to an AlignedBytes (grows without zero-filling: the
  // backup's hot path).
  Status Encode(BlobType type, const BlobId& id, ByteSpan plaintext, bool verify, AlignedBytes* out,
                uint8_t* flags);

  // Encode in two steps, for a caller that seals straight into memory of
  // its own (a pack buffer: PackWriter::Reserve), which saves Encode's copy
  // of the stored form. PrepareBlob compresses `plaintext` when that shrinks
  // it, sets *flags and returns the stored size; SealPreparedBlob then seals
  // into `dst` of exactly that size, checking with `verify` as Encode does.
  // `plaintext` must not change in between, and no other call on this codec
  // may come between the two.
  Result<size_t> PrepareBlob(BlobType type, const BlobId& id, ByteSpan plaintext, uint8_t* flags);
  Status SealPreparedBlob(ByteSpan plaintext, bool verify, MutableByteSpan dst);

  // Opens a stored blob described by `entry` (its length must equal
  // sealed.size()), decompresses into *out and checks that its HMAC equals
  // entry.id. Corruption naming `what` on any failure.
  Status Decode(const BlobEntry& entry, ByteSpan sealed, std::string_view what, Bytes* out);

  // Decodes into caller memory of exactly entry.raw_length bytes (a
  // restore's aligned write buffer; no zero-fill). The blob is decoded into
  // the codec's own scratch, checked there, and only then copied out, so
  // `out` never holds bytes that failed a check. With
  // `fingerprint`, the plaintext is checked against it instead of against
  // the HMAC id: a block chunk's fingerprint was computed at backup time from
  // the same source bytes as its id, so content that differs from what was
  // read is caught either way, and the GMAC costs a fraction of the HMAC.
  // (Forgery is GCM's job: the id is in the blob's additional data.) Without
  // it, the id is checked as Decode does. Corruption naming `what` on any
  // failure; `out` is then zeroed.
  Status DecodeInto(const BlobEntry& entry, ByteSpan sealed, std::string_view what,
                    MutableByteSpan out, const crypto::Fingerprint* fingerprint);

  // Sealed objects (index, snapshot, trailer, lease).
  Status Seal(std::string_view aad, ByteSpan plaintext, Bytes* out);
  Status Open(std::string_view aad, ByteSpan sealed, std::string_view what, Bytes* out);

 private:
  // Both Encode overloads: appends the stored form to *out (Bytes or
  // AlignedBytes), leaving it unchanged on failure.
  template <typename Buffer>
  Status EncodeAppend(BlobType type, const BlobId& id, ByteSpan plaintext, bool verify, Buffer* out,
                      uint8_t* flags);
  // Decode without the id check, into plain_; returns a view of it (valid
  // until the next call).
  Result<ByteSpan> OpenPayload(const BlobEntry& entry, ByteSpan sealed, std::string_view what);
  // Compresses `plaintext` when that shrinks it; sets *flags and the AAD;
  // returns the payload to seal (compressed_ or `plaintext`).
  ByteSpan Prepare(BlobType type, const BlobId& id, ByteSpan plaintext, uint8_t* flags);
  // Seals `payload` into `dst` (payload + overhead bytes) and, with
  // `verify`, decodes it again and compares it with `plaintext`.
  Status SealChecked(BlobType type, const BlobId& id, ByteSpan plaintext, ByteSpan payload,
                     uint8_t flags, bool verify, MutableByteSpan dst);
  void BlobAad(BlobType type, uint8_t flags, uint32_t raw_length, const BlobId& id);

  crypto::Aead aead_;
  crypto::Hmac hmac_;
  crypto::HmacPair hmac_pair_;  // the same key
  crypto::Gmac gmac_;
  Bytes aad_;
  // Between PrepareBlob and SealPreparedBlob.
  struct Prepared {
    BlobType type = BlobType::kData;
    BlobId id{};
    uint8_t flags = 0;
    ByteSpan payload;  // compressed_ or the caller's plaintext
    bool pending = false;
  } prepared_;
  // Scratch, reused across blobs; AlignedBytes grows without zero-filling.
  AlignedBytes compressed_;  // LZ4 output of Encode
  AlignedBytes opened_;      // decrypted LZ4 payload of a decode
  AlignedBytes plain_;       // decoded plaintext (decode and self-check)
};

// Pack trailer plaintext.
Bytes EncodeTrailer(const std::vector<BlobEntry>& entries);
// Parses a trailer plaintext for a pack whose blobs occupy [0, blobs_size);
// fills offsets.
Result<std::vector<BlobEntry>> DecodeTrailer(ByteSpan plain, uint64_t blobs_size,
                                             std::string_view what);
// Reads the footer of a whole pack (or its tail): returns the sealed trailer's
// length. `pack_size` is the size of the whole object.
Result<uint32_t> DecodePackFooter(ByteSpan footer8, uint64_t pack_size, std::string_view what);
// Opens and decodes the trailer of a whole pack held in memory.
Result<std::vector<BlobEntry>> ReadPackTrailer(BlobCodec* codec, ByteSpan pack,
                                               std::string_view what);

// Index file plaintext.
Bytes EncodeIndex(const std::vector<PackEntries>& packs);
Result<std::vector<PackEntries>> DecodeIndex(ByteSpan plain, std::string_view what);

// One chunk of a block-mode volume: its blob id (kHoleId for a hole) and its
// keyed fingerprint (BlobCodec::Fingerprint; zero for a hole), which lets an
// incremental backup recognise an unchanged chunk without the HMAC.
struct ChunkRef {
  Id id{};
  crypto::Fingerprint fp{};
};
inline constexpr size_t kChunkRefSize = 48;

// Block-mode content list (meta blob plaintext).
Bytes EncodeContentList(std::span<const ChunkRef> chunks);
Result<std::vector<ChunkRef>> DecodeContentList(ByteSpan plain, std::string_view what);

}  // namespace bunker::repo
