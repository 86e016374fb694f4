#include "nodeagent/core/repo/codec.h"

#include <algorithm>
#include <random>

#include <gtest/gtest.h>

namespace bunker::repo {
namespace {

MasterKey TestKey(uint8_t seed) {
  MasterKey k;
  for (size_t i = 0; i < 32; ++i) {
    k.enc[i] = static_cast<uint8_t>(seed + i);
    k.mac[i] = static_cast<uint8_t>(seed * 3 + i);
  }
  return k;
}

Bytes Text(size_t n) {
  Bytes b;
  std::string line = "the quick brown fox jumps over the lazy dog 0123456789\n";
  while (b.size() < n) b.insert(b.end(), line.begin(), line.end());
  b.resize(n);
  return b;
}

Bytes Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

class CodecTest : public ::testing::Test {
 protected:
  BlobCodec codec_{TestKey(1)};
};

TEST_F(CodecTest, BlobRoundTripCompressesText) {
  Bytes plain = Text(1 << 20);
  BlobId id = codec_.ComputeId(plain);
  Bytes stored;
  uint8_t flags = 0;
  ASSERT_TRUE(codec_.Encode(BlobType::kData, id, plain, true, &stored, &flags).ok());
  EXPECT_EQ(flags, kFlagLz4);
  EXPECT_LT(stored.size(), plain.size() / 2);
  BlobEntry e{id,
              BlobType::kData,
              flags,
              0,
              static_cast<uint32_t>(stored.size()),
              static_cast<uint32_t>(plain.size())};
  Bytes back;
  ASSERT_TRUE(codec_.Decode(e, stored, "test", &back).ok());
  EXPECT_EQ(back, plain);
}

TEST_F(CodecTest, BlobRoundTripStoresRandomRaw) {
  Bytes plain = Random(300000, 7);
  BlobId id = codec_.ComputeId(plain);
  Bytes stored;
  uint8_t flags = 0;
  ASSERT_TRUE(codec_.Encode(BlobType::kData, id, plain, true, &stored, &flags).ok());
  EXPECT_EQ(flags, 0);
  EXPECT_EQ(stored.size(), plain.size() + crypto::kSealOverhead);
  BlobEntry e{id,
              BlobType::kData,
              0,
              0,
              static_cast<uint32_t>(stored.size()),
              static_cast<uint32_t>(plain.size())};
  Bytes back;
  ASSERT_TRUE(codec_.Decode(e, stored, "test", &back).ok());
  EXPECT_EQ(back, plain);
}

TEST_F(CodecTest, BlobIdIsKeyedHmac) {
  Bytes plain = Text(1000);
  BlobCodec other(TestKey(2));
  EXPECT_NE(codec_.ComputeId(plain), other.ComputeId(plain));
  EXPECT_EQ(codec_.ComputeId(plain), codec_.ComputeId(plain));
}

TEST_F(CodecTest, EveryFlippedByteIsDetected) {
  Bytes plain = Text(4096);
  BlobId id = codec_.ComputeId(plain);
  Bytes stored;
  uint8_t flags = 0;
  ASSERT_TRUE(codec_.Encode(BlobType::kData, id, plain, false, &stored, &flags).ok());
  BlobEntry e{id, BlobType::kData, flags, 0, static_cast<uint32_t>(stored.size()), 4096};
  for (size_t i = 0; i < stored.size(); ++i) {
    Bytes bad = stored;
    bad[i] ^= 0x01;
    Bytes out;
    Status st = codec_.Decode(e, bad, "pack X", &out);
    ASSERT_EQ(st.code(), Code::kCorruption) << "byte " << i;
    EXPECT_NE(st.message().find("pack X"), std::string::npos);
  }
}

TEST_F(CodecTest, TypeLengthAndIdAreAuthenticated) {
  Bytes plain = Text(4096);
  BlobId id = codec_.ComputeId(plain);
  Bytes stored;
  uint8_t flags = 0;
  ASSERT_TRUE(codec_.Encode(BlobType::kData, id, plain, false, &stored, &flags).ok());
  BlobEntry good{id, BlobType::kData, flags, 0, static_cast<uint32_t>(stored.size()), 4096};
  Bytes out;
  BlobEntry wrong_type = good;
  wrong_type.type = BlobType::kMeta;
  EXPECT_EQ(codec_.Decode(wrong_type, stored, "t", &out).code(), Code::kCorruption);
  BlobEntry wrong_len = good;
  wrong_len.raw_length = 4095;
  EXPECT_EQ(codec_.Decode(wrong_len, stored, "t", &out).code(), Code::kCorruption);
  BlobEntry wrong_id = good;
  wrong_id.id[0] ^= 1;
  EXPECT_EQ(codec_.Decode(wrong_id, stored, "t", &out).code(), Code::kCorruption);
  BlobEntry wrong_flags = good;
  wrong_flags.flags = 0;
  EXPECT_EQ(codec_.Decode(wrong_flags, stored, "t", &out).code(), Code::kCorruption);
  BlobCodec other(TestKey(9));
  EXPECT_EQ(other.Decode(good, stored, "t", &out).code(), Code::kCorruption);
}

TEST_F(CodecTest, DecodeIntoChecksTheRecordedFingerprint) {
  for (Bytes plain : {Text(1 << 20), Random(1 << 20, 3)}) {  // LZ4 and raw blobs
    BlobId id = codec_.ComputeId(plain);
    crypto::Fingerprint fp = codec_.Fingerprint(plain);
    AlignedBytes stored;
    uint8_t flags = 0;
    ASSERT_TRUE(codec_.Encode(BlobType::kData, id, plain, true, &stored, &flags).ok());
    BlobEntry e{id,
                BlobType::kData,
                flags,
                0,
                static_cast<uint32_t>(stored.size()),
                static_cast<uint32_t>(plain.size())};
    Bytes out(plain.size(), 0xee);
    ASSERT_TRUE(codec_.DecodeInto(e, stored.span(), "p", out, &fp).ok());
    EXPECT_EQ(out, plain);
    std::fill(out.begin(), out.end(), 0xee);
    ASSERT_TRUE(codec_.DecodeInto(e, stored.span(), "p", out, nullptr).ok());  // by HMAC id
    EXPECT_EQ(out, plain);

    crypto::Fingerprint other = fp;
    other[5] ^= 0x40;
    Status st = codec_.DecodeInto(e, stored.span(), "pack P", out, &other);
    ASSERT_EQ(st.code(), Code::kCorruption);
    EXPECT_NE(st.message().find("fingerprint"), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find("pack P"), std::string::npos);
    EXPECT_EQ(std::count(out.begin(), out.end(), 0), static_cast<std::ptrdiff_t>(out.size()))
        << "no plaintext is handed out after a failed check";
    Bytes wrong_size(plain.size() - 1);
    EXPECT_EQ(codec_.DecodeInto(e, stored.span(), "p", wrong_size, &fp).code(), Code::kCorruption);
  }
}

TEST_F(CodecTest, ContentSealedUnderAnotherIdIsCaughtByIdOrFingerprint) {
  // A writer bug: the bytes sealed are not the bytes the id (and fingerprint)
  // were computed from. GCM authenticates them (they were sealed with the
  // key); the id check and the fingerprint check must each refuse them.
  Bytes meant = Text(1 << 20);
  Bytes sealed_bytes = meant;
  sealed_bytes[12345] ^= 0x01;
  BlobId id = codec_.ComputeId(meant);
  crypto::Fingerprint fp = codec_.Fingerprint(meant);
  Bytes stored;
  uint8_t flags = 0;
  ASSERT_TRUE(codec_.Encode(BlobType::kData, id, sealed_bytes, true, &stored, &flags).ok());
  BlobEntry e{id,
              BlobType::kData,
              flags,
              0,
              static_cast<uint32_t>(stored.size()),
              static_cast<uint32_t>(meant.size())};
  Bytes out;
  EXPECT_EQ(codec_.Decode(e, stored, "p", &out).code(), Code::kCorruption);
  Bytes into(meant.size());
  EXPECT_EQ(codec_.DecodeInto(e, stored, "p", into, &fp).code(), Code::kCorruption);
  EXPECT_EQ(codec_.DecodeInto(e, stored, "p", into, nullptr).code(), Code::kCorruption);
}

TEST_F(CodecTest, AlignedAndVectorEncodingsDecodeAlike) {
  Bytes plain = Text(300000);
  BlobId id = codec_.ComputeId(plain);
  AlignedBytes a;
  a.Append(AsBytes("prefix"));  // Encode appends
  uint8_t flags = 0;
  ASSERT_TRUE(codec_.Encode(BlobType::kMeta, id, plain, true, &a, &flags).ok());
  ASSERT_GT(a.size(), 6u);
  BlobEntry e{id,
              BlobType::kMeta,
              flags,
              0,
              static_cast<uint32_t>(a.size() - 6),
              static_cast<uint32_t>(plain.size())};
  Bytes back;
  ASSERT_TRUE(codec_.Decode(e, a.span().subspan(6), "p", &back).ok());
  EXPECT_EQ(back, plain);
}

TEST_F(CodecTest, SealedObjectsAreBoundToTheirKind) {
  Bytes sealed;
  ASSERT_TRUE(codec_.Seal(kAadIndex, AsBytes("hello"), &sealed).ok());
  Bytes out;
  ASSERT_TRUE(codec_.Open(kAadIndex, sealed, "index/x", &out).ok());
  EXPECT_EQ(std::string(AsChars(out)), "hello");
  Status st = codec_.Open(kAadSnapshot, sealed, "snapshots/x", &out);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("snapshots/x"), std::string::npos);
}

std::vector<BlobEntry> SomeEntries() {
  std::vector<BlobEntry> v;
  uint32_t off = 0;
  for (int i = 0; i < 5; ++i) {
    BlobEntry e;
    e.id.fill(static_cast<uint8_t>(i + 1));
    e.type = i == 4 ? BlobType::kMeta : BlobType::kData;
    e.flags = i % 2 ? kFlagLz4 : 0;
    e.raw_length = 1000 + i;
    e.length = e.flags ? 500 + i : e.raw_length + 28;
    e.offset = off;
    off += e.length;
    v.push_back(e);
  }
  return v;
}

TEST(TrailerTest, RoundTrip) {
  std::vector<BlobEntry> in = SomeEntries();
  uint64_t total = 0;
  for (auto& e : in) total += e.length;
  Bytes plain = EncodeTrailer(in);
  Result<std::vector<BlobEntry>> out = DecodeTrailer(plain, total, "pack");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ((*out)[i].id, in[i].id);
    EXPECT_EQ((*out)[i].offset, in[i].offset);
    EXPECT_EQ((*out)[i].length, in[i].length);
    EXPECT_EQ((*out)[i].raw_length, in[i].raw_length);
    EXPECT_EQ((*out)[i].type, in[i].type);
  }
  // Lengths must add up to where the trailer starts.
  EXPECT_FALSE(DecodeTrailer(plain, total + 1, "pack").ok());
  EXPECT_FALSE(DecodeTrailer(plain, total - 1, "pack").ok());
}

TEST(TrailerTest, EveryTruncationIsCorruption) {
  std::vector<BlobEntry> in = SomeEntries();
  uint64_t total = 0;
  for (auto& e : in) total += e.length;
  Bytes plain = EncodeTrailer(in);
  for (size_t n = 0; n < plain.size(); ++n) {
    Result<std::vector<BlobEntry>> r = DecodeTrailer(ByteSpan(plain.data(), n), total, "pack");
    EXPECT_EQ(r.status().code(), Code::kCorruption) << n;
  }
}

TEST(TrailerTest, HugeCountIsRefusedBeforeAllocating) {
  Bytes plain;
  PutU32(&plain, 1);
  PutU32(&plain, 0xffffffff);
  Result<std::vector<BlobEntry>> r = DecodeTrailer(plain, 0, "pack");
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("count"), std::string::npos);
}

TEST(TrailerTest, WholePackRoundTripThroughSealing) {
  BlobCodec codec(TestKey(3));
  Bytes pack;
  std::vector<BlobEntry> entries;
  for (int i = 0; i < 3; ++i) {
    Bytes plain = Text(10000 + i);
    BlobEntry e;
    e.id = codec.ComputeId(plain);
    e.type = BlobType::kData;
    e.raw_length = static_cast<uint32_t>(plain.size());
    e.offset = static_cast<uint32_t>(pack.size());
    ASSERT_TRUE(codec.Encode(e.type, e.id, plain, true, &pack, &e.flags).ok());
    e.length = static_cast<uint32_t>(pack.size() - e.offset);
    entries.push_back(e);
  }
  Bytes trailer;
  ASSERT_TRUE(codec.Seal(kAadTrailer, EncodeTrailer(entries), &trailer).ok());
  PutBytes(&pack, trailer);
  PutU32(&pack, static_cast<uint32_t>(trailer.size()));
  pack.insert(pack.end(), kPackMagic, kPackMagic + 4);
  Result<std::vector<BlobEntry>> got = ReadPackTrailer(&codec, pack, "data/ab/abc");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 3u);
  Bytes out;
  for (const BlobEntry& e : *got) {
    ASSERT_TRUE(codec.Decode(e, ByteSpan(pack.data() + e.offset, e.length), "p", &out).ok());
  }
  // Damaged footer, trailer length and trailer bytes.
  Bytes bad = pack;
  bad.back() ^= 1;
  EXPECT_EQ(ReadPackTrailer(&codec, bad, "p").status().code(), Code::kCorruption);
  bad = pack;
  bad[bad.size() - 6] ^= 0x40;  // trailer length
  EXPECT_EQ(ReadPackTrailer(&codec, bad, "p").status().code(), Code::kCorruption);
  bad = pack;
  bad[bad.size() - 20] ^= 1;  // inside the sealed trailer
  EXPECT_EQ(ReadPackTrailer(&codec, bad, "p").status().code(), Code::kCorruption);
  EXPECT_EQ(ReadPackTrailer(&codec, ByteSpan(pack.data(), 3), "p").status().code(),
            Code::kCorruption);
}

TEST(IndexTest, RoundTripAndTruncation) {
  std::vector<PackEntries> in(2);
  in[0].pack.fill(0xaa);
  in[0].blobs = SomeEntries();
  in[1].pack.fill(0xbb);
  Bytes plain = EncodeIndex(in);
  Result<std::vector<PackEntries>> out = DecodeIndex(plain, "index/x");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].pack, in[0].pack);
  ASSERT_EQ((*out)[0].blobs.size(), 5u);
  EXPECT_EQ((*out)[0].blobs[3].offset, in[0].blobs[3].offset);
  EXPECT_TRUE((*out)[1].blobs.empty());
  for (size_t n = 0; n < plain.size(); ++n) {
    EXPECT_EQ(DecodeIndex(ByteSpan(plain.data(), n), "index/x").status().code(), Code::kCorruption)
        << n;
  }
  Bytes extra = plain;
  extra.push_back(0);
  EXPECT_FALSE(DecodeIndex(extra, "index/x").ok());
}

TEST(IndexTest, UnknownVersionTypeAndFlagsAreRefused) {
  std::vector<PackEntries> in(1);
  in[0].blobs = SomeEntries();
  Bytes plain = EncodeIndex(in);
  Bytes v2 = plain;
  v2[0] = 2;
  Result<std::vector<PackEntries>> r = DecodeIndex(v2, "index/x");
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("version 2"), std::string::npos);
  Bytes bad_type = plain;
  bad_type[8 + 32 + 4 + 32] = 7;  // first blob's type
  EXPECT_FALSE(DecodeIndex(bad_type, "index/x").ok());
  Bytes bad_flags = plain;
  bad_flags[8 + 32 + 4 + 33] = 0x80;
  EXPECT_FALSE(DecodeIndex(bad_flags, "index/x").ok());
}

TEST(IndexTest, GarbageNeverCrashes) {
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    Bytes junk(rng() % 200);
    for (auto& c : junk) c = static_cast<uint8_t>(rng());
    if (junk.size() >= 4 && rng() % 2) {
      junk[0] = 1;
      junk[1] = junk[2] = junk[3] = 0;
    }
    (void)DecodeIndex(junk, "junk");
    (void)DecodeTrailer(junk, rng() % 1000, "junk");
    (void)DecodeContentList(junk, "junk");
  }
}

TEST(ContentListTest, RoundTrip) {
  std::vector<ChunkRef> chunks(100);
  for (size_t i = 0; i < chunks.size(); ++i) {
    chunks[i].id.fill(static_cast<uint8_t>(i));
    chunks[i].fp.fill(static_cast<uint8_t>(i * 3));
  }
  Bytes plain = EncodeContentList(chunks);
  Result<std::vector<ChunkRef>> out = DecodeContentList(plain, "content");
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ((*out)[i].id, chunks[i].id);
    EXPECT_EQ((*out)[i].fp, chunks[i].fp);
  }
  EXPECT_TRUE(IsHole((*out)[0].id));
  EXPECT_FALSE(DecodeContentList(ByteSpan(plain.data(), plain.size() - 1), "c").ok());
}

TEST(ContentListTest, FingerprintIsKeyedAndDiscriminates) {
  BlobCodec a(TestKey(1)), b(TestKey(2));
  Bytes x = Text(1 << 20), y = x;
  y[12345] ^= 1;
  EXPECT_EQ(a.Fingerprint(x), a.Fingerprint(x));
  EXPECT_NE(a.Fingerprint(x), a.Fingerprint(y));
  EXPECT_NE(a.Fingerprint(x), b.Fingerprint(x));
}

}  // namespace
}  // namespace bunker::repo
