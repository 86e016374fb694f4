// Pack footers and trailers: DecodePackFooter and ReadPackTrailer
// (FORMAT.md, "Packs").
//
// Input: mode(u8) || rest, by mode % 3:
//  0: rest is a whole stored pack; ReadPackTrailer with the test key (footer
//     checks, then the AEAD failure path for anything but a real pack);
//  1: rest is footer(8) || pack_size(u64 LE); DecodePackFooter alone;
//  2: rest is blobs_size(u16 LE) || trailer plaintext; the harness builds
//     blobs_size zero bytes || trailer sealed with the test key || footer, so
//     ReadPackTrailer opens it and decodes hostile-but-authentic plaintext.
//
// Properties: rejections are Corruption; an accepted footer's length fits the
// pack; mode 2 agrees exactly with DecodeTrailer on the same plaintext.

#include "nodeagent/core/repo/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

repo::BlobCodec& Codec() {
  static repo::BlobCodec codec(TestMasterKey());
  return codec;
}

bool Same(const std::vector<repo::BlobEntry>& a, const std::vector<repo::BlobEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].type != b[i].type || a[i].flags != b[i].flags ||
        a[i].offset != b[i].offset || a[i].length != b[i].length ||
        a[i].raw_length != b[i].raw_length) {
      return false;
    }
  }
  return true;
}

}  // namespace

BUNKER_FUZZ_TARGET(pack) {
  InputReader in(data);
  uint8_t mode = 0;
  if (!in.U8(&mode)) return false;
  switch (mode % 3) {
    case 0: {
      ByteSpan pack = in.Rest();
      Result<std::vector<repo::BlobEntry>> r = repo::ReadPackTrailer(&Codec(), pack, "fuzz pack");
      if (!r.ok()) {
        FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
        return false;
      }
      uint64_t end = 0;
      for (const repo::BlobEntry& e : *r) end = uint64_t{e.offset} + e.length;
      FUZZ_CHECK(end + crypto::kSealOverhead + repo::kPackFooterSize <= pack.size(),
                 "blobs overlap the trailer");
      return true;
    }
    case 1: {
      ByteSpan footer;
      uint64_t pack_size = 0;
      if (!in.Take(repo::kPackFooterSize, &footer) || !in.U64(&pack_size)) return false;
      Result<uint32_t> r = repo::DecodePackFooter(footer, pack_size, "fuzz pack");
      if (!r.ok()) {
        FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
        return false;
      }
      FUZZ_CHECK(*r >= crypto::kSealOverhead && uint64_t{*r} + repo::kPackFooterSize <= pack_size,
                 "accepted trailer length does not fit the pack");
      return true;
    }
    default: {
      uint16_t blobs_size = 0;
      if (!in.U16(&blobs_size)) return false;
      ByteSpan plain = in.Rest();
      Bytes pack(blobs_size, 0);
      Status sealed = Codec().Seal(repo::kAadTrailer, plain, &pack);
      FUZZ_CHECK(sealed.ok(), Describe(sealed));
      PutU32(&pack, static_cast<uint32_t>(pack.size() - blobs_size));
      PutBytes(&pack, AsBytes(std::string_view(repo::kPackMagic, 4)));
      Result<std::vector<repo::BlobEntry>> r = repo::ReadPackTrailer(&Codec(), pack, "fuzz pack");
      Result<std::vector<repo::BlobEntry>> direct =
          repo::DecodeTrailer(plain, blobs_size, "fuzz pack");
      FUZZ_CHECK(r.ok() == direct.ok(),
                 "ReadPackTrailer and DecodeTrailer disagree: " + Describe(r.status()) + " / " +
                     Describe(direct.status()));
      if (!r.ok()) {
        FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
        return false;
      }
      FUZZ_CHECK(direct.ok() && Same(*r, *direct), "ReadPackTrailer and DecodeTrailer differ");
      return true;
    }
  }
}

}  // namespace bunker::fuzz
