#include "nodeagent/core/repo/codec.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "nodeagent/core/chunk/compress.h"
#include "nodeagent/core/util/failpoint.h"

namespace bunker::repo {

namespace {

constexpr std::string_view kAadBlob = "bunker-blob-v1";

Status CheckVersion(uint32_t version, std::string_view what) {
  if (version != kFormatVersion) {
    return Corruption(std::string(what) + ": format version " + std::to_string(version) +
                      " is not supported (this build reads version " +
                      std::to_string(kFormatVersion) + ")");
  }
  return Status::Ok();
}

Status ReadEntryCommon(ByteReader* r, BlobEntry* e, std::string_view what) {
  RETURN_IF_ERROR(r->Array(&e->id));
  uint8_t type = 0;
  RETURN_IF_ERROR(r->U8(&type));
  if (type != static_cast<uint8_t>(BlobType::kData) &&
      type != static_cast<uint8_t>(BlobType::kMeta)) {
    return Corruption(std::string(what) + ": blob " + ShortHex(e->id) + " has unknown type " +
                      std::to_string(type));
  }
  e->type = static_cast<BlobType>(type);
  RETURN_IF_ERROR(r->U8(&e->flags));
  if (e->flags & ~kFlagLz4) {
    return Corruption(std::string(what) + ": blob " + ShortHex(e->id) + " has unknown flags");
  }
  uint16_t reserved = 0;
  return r->U16(&reserved);
}

Status CheckLengths(const BlobEntry& e, std::string_view what) {
  if (e.length < crypto::kSealOverhead || e.length > kMaxBlobSize + 4096 ||
      e.raw_length > kMaxBlobSize) {
    return Corruption(std::string(what) + ": blob " + ShortHex(e.id) + " has impossible length " +
                      std::to_string(e.length) + "/" + std::to_string(e.raw_length));
  }
  if (!(e.flags & kFlagLz4) && e.length != e.raw_length + crypto::kSealOverhead) {
    return Corruption(std::string(what) + ": uncompressed blob " + ShortHex(e.id) +
                      " length does not match its raw length");
  }
  return Status::Ok();
}

}  // namespace

BlobCodec::BlobCodec(const MasterKey& key)
    : aead_(key.enc),
      hmac_(key.mac),
      hmac_pair_(key.mac),
      gmac_(crypto::HkdfSha256(key.mac, {}, "bunker block fingerprint v1")) {}

BlobId BlobCodec::ComputeId(ByteSpan plaintext) { return hmac_.Compute(plaintext); }

void BlobCodec::BlobAad(BlobType type, uint8_t flags, uint32_t raw_length, const BlobId& id) {
  aad_.clear();
  PutBytes(&aad_, AsBytes(kAadBlob));
  PutU8(&aad_, static_cast<uint8_t>(type));
  PutU8(&aad_, flags);
  PutU32(&aad_, raw_length);
  PutBytes(&aad_, id);
}

ByteSpan BlobCodec::Prepare(BlobType type, const BlobId& id, ByteSpan plaintext, uint8_t* flags) {
  ByteSpan payload = plaintext;
  *flags = 0;
  if (plaintext.size() >= 2) {
    compressed_.resize(plaintext.size() - 1);
    const size_t n = chunk::Lz4CompressTo(plaintext, {compressed_.data(), compressed_.size()});
    if (n > 0) {
      // Armed with `error`, damages the compressor's output, as a compressor
      // bug or a bit flip in RAM would.
      if (!Failpoint("codec.damage_compressed").ok()) compressed_.data()[n / 2] ^= 0x5a;
      payload = ByteSpan(compressed_.data(), n);
      *flags = kFlagLz4;
    }
  }
  BlobAad(type, *flags, static_cast<uint32_t>(plaintext.size()), id);
  return payload;
}

Status BlobCodec::SealChecked(BlobType type, const BlobId& id, ByteSpan plaintext, ByteSpan payload,
                              uint8_t flags, bool verify, MutableByteSpan dst) {
  RETURN_IF_ERROR(aead_.SealInto(payload, aad_, dst));
  // Armed with `error`, damages the sealed form, as a cipher fault or a bit
  // flip during the seal would.
  if (!Failpoint("codec.damage_sealed").ok()) dst[dst.size() / 2] ^= 0x5a;
  if (verify) {
    // Opened, decompressed and compared, exactly as a restore will: neither a
    // compressor nor a cipher fault reaches storage.
    const uint32_t raw_length = static_cast<uint32_t>(plaintext.size());
    BlobEntry e{id, type, flags, 0, static_cast<uint32_t>(dst.size()), raw_length};
    Result<ByteSpan> back = OpenPayload(e, dst, "self-check");
    if (!back.ok() || std::memcmp(back->data(), plaintext.data(), plaintext.size()) != 0) {
      return Internal("blob " + ShortHex(id) +
                      " did not decode back to its plaintext before upload (codec self-check)" +
                      (back.ok() ? std::string() : ": " + back.status().message()));
    }
  }
  return Status::Ok();
}

template <typename Buffer>
Status BlobCodec::EncodeAppend(BlobType type, const BlobId& id, ByteSpan plaintext, bool verify,
                               Buffer* out, uint8_t* flags) {
  // The two steps a caller sealing into its own memory takes, into *out.
  ASSIGN_OR_RETURN(const size_t length, PrepareBlob(type, id, plaintext, flags));
  const size_t start = out->size();
  out->resize(start + length);
  Status st = SealPreparedBlob(plaintext, verify, MutableByteSpan(out->data() + start, length));
  if (!st.ok()) out->resize(start);
  return st;
}

Result<size_t> BlobCodec::PrepareBlob(BlobType type, const BlobId& id, ByteSpan plaintext,
                                      uint8_t* flags) {
  prepared_.pending = false;
  if (plaintext.size() > kMaxBlobSize) {
    return InvalidArgument("blob of " + std::to_string(plaintext.size()) + " bytes is too large");
  }
  prepared_.payload = Prepare(type, id, plaintext, flags);
  prepared_.type = type;
  prepared_.id = id;
  prepared_.flags = *flags;
  prepared_.pending = true;
  return prepared_.payload.size() + crypto::kSealOverhead;
}

Status BlobCodec::SealPreparedBlob(ByteSpan plaintext, bool verify, MutableByteSpan dst) {
  if (!prepared_.pending) return Internal("SealPreparedBlob without PrepareBlob");
  prepared_.pending = false;
  if (dst.size() != prepared_.payload.size() + crypto::kSealOverhead) {
    return Internal("blob " + ShortHex(prepared_.id) + ": room of " + std::to_string(dst.size()) +
                    " bytes for a stored size of " +
                    std::to_string(prepared_.payload.size() + crypto::kSealOverhead));
  }
  return SealChecked(prepared_.type, prepared_.id, plaintext, prepared_.payload, prepared_.flags,
                     verify, dst);
}

Status BlobCodec::Encode(BlobType type, const BlobId& id, ByteSpan plaintext, bool verify,
                         Bytes* out, uint8_t* flags) {
  return EncodeAppend(type, id, plaintext, verify, out, flags);
}

Status BlobCodec::Encode(BlobType type, const BlobId& id, ByteSpan plaintext, bool verify,
                         AlignedBytes* out, uint8_t* flags) {
  return EncodeAppend(type, id, plaintext, verify, out, flags);
}

Status BlobCodec::Decode(const BlobEntry& entry, ByteSpan sealed, std::string_view what,
                         Bytes* out) {
  // Bounded before the allocation: the entry comes from an untrusted index.
  Status st = CheckLengths(entry, what);
  if (st.ok()) {
    out->resize(entry.raw_length);
    st = DecodeInto(entry, sealed, what, *out, nullptr);
  }
  if (!st.ok()) out->clear();
  return st;
}

Status BlobCodec::DecodeInto(const BlobEntry& entry, ByteSpan sealed, std::string_view what,
                             MutableByteSpan out, const crypto::Fingerprint* fingerprint) {
  auto failed = [&](Status st) {
    std::fill(out.begin(), out.end(), uint8_t{0});
    return st;
  };
  if (out.size() != entry.raw_length) {
    return failed(Corruption(std::string(what) + ": blob " + ShortHex(entry.id) +
                             ": plaintext length differs from the index"));
  }
  Result<ByteSpan> plain = OpenPayload(entry, sealed, what);
  if (!plain.ok()) return failed(plain.status());
  // Checked while the plaintext is still in cache, then copied out: a copy
  // into cold memory (a write buffer) is cheaper than decrypting or
  // decompressing into it.
  if (fingerprint != nullptr) {
    if (!crypto::ConstantTimeEqual(gmac_.Compute(*plain), *fingerprint)) {
      return failed(Corruption(std::string(what) + ": blob " + ShortHex(entry.id) +
                               ": content does not match the fingerprint recorded at backup"));
    }
  } else if (!crypto::ConstantTimeEqual(hmac_.Compute(*plain), entry.id)) {
    return failed(Corruption(std::string(what) + ": blob " + ShortHex(entry.id) +
                             ": content does not match its id"));
  }
  std::memcpy(out.data(), plain->data(), plain->size());
  return Status::Ok();
}

Result<ByteSpan> BlobCodec::OpenPayload(const BlobEntry& entry, ByteSpan sealed,
                                        std::string_view what) {
  auto fail = [&](std::string_view why) {
    return Corruption(std::string(what) + ": blob " + ShortHex(entry.id) + ": " + std::string(why));
  };
  if (sealed.size() != entry.length) return fail("stored length differs from the index");
  RETURN_IF_ERROR(CheckLengths(entry, what));
  BlobAad(entry.type, entry.flags, entry.raw_length, entry.id);
  plain_.resize(entry.raw_length);
  MutableByteSpan plain(plain_.data(), plain_.size());
  if (entry.flags & kFlagLz4) {
    opened_.resize(entry.length - crypto::kSealOverhead);
    MutableByteSpan payload(opened_.data(), opened_.size());
    if (!aead_.OpenInto(sealed, aad_, payload).ok()) {
      return fail("authentication failed (damaged, or not the blob the index names)");
    }
    Status st = chunk::Lz4DecompressTo(payload, plain);
    if (!st.ok()) return fail("LZ4 data does not decompress: " + st.message());
  } else if (!aead_.OpenInto(sealed, aad_, plain).ok()) {
    // (CheckLengths made length == raw_length + overhead for a raw blob.)
    return fail("authentication failed (damaged, or not the blob the index names)");
  }
  return ByteSpan(plain);
}

Status BlobCodec::Seal(std::string_view aad, ByteSpan plaintext, Bytes* out) {
  return aead_.Seal(plaintext, AsBytes(aad), out);
}

Status BlobCodec::Open(std::string_view aad, ByteSpan sealed, std::string_view what, Bytes* out) {
  Status st = aead_.Open(sealed, AsBytes(aad), out);
  if (!st.ok()) {
    return Corruption(std::string(what) +
                      ": authentication failed (damaged, truncated, or sealed with another key)");
  }
  return Status::Ok();
}

Bytes EncodeTrailer(const std::vector<BlobEntry>& entries) {
  Bytes out;
  out.reserve(8 + entries.size() * kTrailerEntrySize);
  PutU32(&out, kFormatVersion);
  PutU32(&out, static_cast<uint32_t>(entries.size()));
  for (const BlobEntry& e : entries) {
    PutBytes(&out, e.id);
    PutU8(&out, static_cast<uint8_t>(e.type));
    PutU8(&out, e.flags);
    PutU16(&out, 0);
    PutU32(&out, e.length);
    PutU32(&out, e.raw_length);
  }
  return out;
}

Result<std::vector<BlobEntry>> DecodeTrailer(ByteSpan plain, uint64_t blobs_size,
                                             std::string_view what) {
  ByteReader r(plain, std::string(what) + " trailer");
  uint32_t version = 0, count = 0;
  RETURN_IF_ERROR(r.U32(&version));
  RETURN_IF_ERROR(CheckVersion(version, what));
  RETURN_IF_ERROR(r.U32(&count));
  RETURN_IF_ERROR(r.CheckCount(count, kTrailerEntrySize, "blob"));
  std::vector<BlobEntry> entries(count);
  uint64_t offset = 0;
  for (BlobEntry& e : entries) {
    RETURN_IF_ERROR(ReadEntryCommon(&r, &e, what));
    RETURN_IF_ERROR(r.U32(&e.length));
    RETURN_IF_ERROR(r.U32(&e.raw_length));
    RETURN_IF_ERROR(CheckLengths(e, what));
    e.offset = static_cast<uint32_t>(offset);
    offset += e.length;
    if (offset > blobs_size) {
      return Corruption(std::string(what) + ": trailer describes more bytes than the pack holds");
    }
  }
  if (!r.done()) return Corruption(std::string(what) + ": trailer has trailing bytes");
  if (offset != blobs_size) {
    return Corruption(std::string(what) + ": trailer blobs end at byte " + std::to_string(offset) +
                      " but the trailer starts at " + std::to_string(blobs_size));
  }
  return entries;
}

Result<uint32_t> DecodePackFooter(ByteSpan footer8, uint64_t pack_size, std::string_view what) {
  if (footer8.size() != kPackFooterSize || pack_size < kPackFooterSize) {
    return Corruption(std::string(what) + ": too short to be a pack");
  }
  if (std::memcmp(footer8.data() + 4, kPackMagic, 4) != 0) {
    return Corruption(std::string(what) + ": pack footer magic is missing");
  }
  uint32_t len = LoadU32(footer8.data());
  if (len < crypto::kSealOverhead || uint64_t{len} + kPackFooterSize > pack_size) {
    return Corruption(std::string(what) + ": pack trailer length " + std::to_string(len) +
                      " does not fit the pack of " + std::to_string(pack_size) + " bytes");
  }
  return len;
}

Result<std::vector<BlobEntry>> ReadPackTrailer(BlobCodec* codec, ByteSpan pack,
                                               std::string_view what) {
  if (pack.size() < kPackFooterSize) return Corruption(std::string(what) + ": too short");
  ASSIGN_OR_RETURN(uint32_t len, DecodePackFooter(pack.subspan(pack.size() - kPackFooterSize),
                                                  pack.size(), what));
  uint64_t trailer_start = pack.size() - kPackFooterSize - len;
  Bytes plain;
  RETURN_IF_ERROR(codec->Open(kAadTrailer, pack.subspan(trailer_start, len),
                              std::string(what) + " trailer", &plain));
  return DecodeTrailer(plain, trailer_start, what);
}

Bytes EncodeIndex(const std::vector<PackEntries>& packs) {
  Bytes out;
  size_t n = 8;
  for (const auto& p : packs) n += 36 + p.blobs.size() * kIndexEntrySize;
  out.reserve(n);
  PutU32(&out, kFormatVersion);
  PutU32(&out, static_cast<uint32_t>(packs.size()));
  for (const PackEntries& p : packs) {
    PutBytes(&out, p.pack);
    PutU32(&out, static_cast<uint32_t>(p.blobs.size()));
    for (const BlobEntry& e : p.blobs) {
      PutBytes(&out, e.id);
      PutU8(&out, static_cast<uint8_t>(e.type));
      PutU8(&out, e.flags);
      PutU16(&out, 0);
      PutU32(&out, e.offset);
      PutU32(&out, e.length);
      PutU32(&out, e.raw_length);
    }
  }
  return out;
}

Result<std::vector<PackEntries>> DecodeIndex(ByteSpan plain, std::string_view what) {
  ByteReader r(plain, std::string(what));
  uint32_t version = 0, count = 0;
  RETURN_IF_ERROR(r.U32(&version));
  RETURN_IF_ERROR(CheckVersion(version, what));
  RETURN_IF_ERROR(r.U32(&count));
  RETURN_IF_ERROR(r.CheckCount(count, 36, "pack"));
  std::vector<PackEntries> packs(count);
  for (PackEntries& p : packs) {
    RETURN_IF_ERROR(r.Array(&p.pack));
    uint32_t blobs = 0;
    RETURN_IF_ERROR(r.U32(&blobs));
    RETURN_IF_ERROR(r.CheckCount(blobs, kIndexEntrySize, "blob"));
    p.blobs.resize(blobs);
    for (BlobEntry& e : p.blobs) {
      RETURN_IF_ERROR(ReadEntryCommon(&r, &e, what));
      RETURN_IF_ERROR(r.U32(&e.offset));
      RETURN_IF_ERROR(r.U32(&e.length));
      RETURN_IF_ERROR(r.U32(&e.raw_length));
      RETURN_IF_ERROR(CheckLengths(e, what));
    }
  }
  if (!r.done()) return Corruption(std::string(what) + ": trailing bytes");
  return packs;
}

Bytes EncodeContentList(std::span<const ChunkRef> chunks) {
  Bytes out;
  out.reserve(8 + chunks.size() * kChunkRefSize);
  PutU32(&out, kFormatVersion);
  PutU32(&out, static_cast<uint32_t>(chunks.size()));
  for (const ChunkRef& c : chunks) {
    PutBytes(&out, c.id);
    PutBytes(&out, c.fp);
  }
  return out;
}

Result<std::vector<ChunkRef>> DecodeContentList(ByteSpan plain, std::string_view what) {
  ByteReader r(plain, std::string(what));
  uint32_t version = 0, count = 0;
  RETURN_IF_ERROR(r.U32(&version));
  RETURN_IF_ERROR(CheckVersion(version, what));
  RETURN_IF_ERROR(r.U32(&count));
  RETURN_IF_ERROR(r.CheckCount(count, kChunkRefSize, "chunk"));
  std::vector<ChunkRef> chunks(count);
  for (ChunkRef& c : chunks) {
    RETURN_IF_ERROR(r.Array(&c.id));
    RETURN_IF_ERROR(r.Array(&c.fp));
  }
  if (!r.done()) return Corruption(std::string(what) + ": trailing bytes");
  return chunks;
}

}  // namespace bunker::repo
