// BlobCodec::Decode: a stored blob as the index describes it (FORMAT.md,
// "Blobs").
//
// Input: mode(u8) || type(u8) || flags(u8) || raw_length(u32 LE) || id(32) ||
// payload. The entry is {id, type, flags, raw_length, length = stored size}.
//  mode even: payload is the stored (sealed) blob, decoded with the test key;
//             anything but a real blob takes the AEAD failure path.
//  mode odd:  payload is the plaintext payload (an LZ4 block when flags has
//             bit 0, else the data itself) that the harness seals with the
//             test key and the blob AAD, so decompression and the id check
//             see authentic but hostile content.
//
// Properties: rejections are Corruption; an accepted blob has exactly
// raw_length bytes and its HMAC is the id.

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/repo/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

repo::BlobCodec& Codec() {
  static repo::BlobCodec codec(TestMasterKey());
  return codec;
}

crypto::Aead& SealingAead() {
  static crypto::Aead aead(TestMasterKey().enc);
  return aead;
}

}  // namespace

BUNKER_FUZZ_TARGET(blob) {
  InputReader in(data);
  uint8_t mode = 0, type = 0, flags = 0;
  uint32_t raw_length = 0;
  ByteSpan id;
  if (!in.U8(&mode) || !in.U8(&type) || !in.U8(&flags) || !in.U32(&raw_length) ||
      !in.Take(32, &id)) {
    return false;
  }
  repo::BlobEntry entry;
  std::copy(id.begin(), id.end(), entry.id.begin());
  entry.type = static_cast<repo::BlobType>(type);
  entry.flags = flags;
  entry.raw_length = raw_length;
  Bytes sealed;
  if (mode % 2 == 0) {
    ByteSpan rest = in.Rest();
    sealed.assign(rest.begin(), rest.end());
  } else {
    // The blob AAD of FORMAT.md: "bunker-blob-v1" || type || flags || raw_length || id.
    Bytes aad;
    PutBytes(&aad, AsBytes("bunker-blob-v1"));
    PutU8(&aad, type);
    PutU8(&aad, flags);
    PutU32(&aad, raw_length);
    PutBytes(&aad, id);
    Status st = SealingAead().Seal(in.Rest(), aad, &sealed);
    FUZZ_CHECK(st.ok(), Describe(st));
  }
  if (sealed.size() > UINT32_MAX) return false;
  entry.length = static_cast<uint32_t>(sealed.size());
  Bytes out;
  Status st = Codec().Decode(entry, sealed, "fuzz pack", &out);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == Code::kCorruption, Describe(st));
    return false;
  }
  FUZZ_CHECK(out.size() == raw_length, "decoded blob has the wrong length");
  FUZZ_CHECK(Codec().ComputeId(out) == entry.id, "decoded blob does not match its id");
  return true;
}

}  // namespace bunker::fuzz
