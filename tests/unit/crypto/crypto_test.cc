#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/crypto/ghash_wide.h"
#include "nodeagent/core/crypto/hmac_pair.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace bunker::crypto {
namespace {

Bytes Hex(std::string_view hex) {
  Result<Bytes> b = HexDecode(hex);
  EXPECT_TRUE(b.ok()) << hex;
  return b.ok() ? *b : Bytes{};
}

Key KeyFromHex(std::string_view hex) {
  Bytes b = Hex(hex);
  Key key{};
  EXPECT_EQ(b.size(), key.size());
  std::copy_n(b.begin(), std::min(b.size(), key.size()), key.begin());
  return key;
}

std::string ToHex(ByteSpan b) { return HexEncode(b); }

Bytes Repeat(uint8_t byte, size_t n) { return Bytes(n, byte); }

Bytes PseudoRandom(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (auto& b : out) {
    b = static_cast<uint8_t>(rng());
  }
  return out;
}

// A key made of PseudoRandom bytes: the same for the same seed.
Key SeededKey(uint64_t seed) {
  Key key{};
  const Bytes kb = PseudoRandom(key.size(), seed);
  std::copy(kb.begin(), kb.end(), key.begin());
  return key;
}

// ---------------------------------------------------------------- SHA-256

TEST(Sha256Test, MatchesFips180Examples) {
  // FIPS 180-2 appendix B and the empty message.
  EXPECT_EQ(ToHex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256(AsBytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(ToHex(Sha256(Repeat('a', 1000000))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, StreamMatchesOneShotAndRestartsAfterFinish) {
  const Bytes data = PseudoRandom(100000, 1);
  Sha256Stream stream;
  for (int round = 0; round < 2; ++round) {  // the second round checks reuse
    size_t pos = 0;
    size_t step = 1;
    while (pos < data.size()) {
      const size_t n = std::min(step, data.size() - pos);
      stream.Update(ByteSpan(data).subspan(pos, n));
      pos += n;
      step = step * 3 + 1;
    }
    EXPECT_EQ(stream.Finish(), Sha256(data));
  }
  stream.Update(AsBytes("abc"));
  EXPECT_EQ(ToHex(stream.Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(stream.Finish(), Sha256({}));
}

// ---------------------------------------------------------------- HMAC

struct HmacVector {
  Bytes key;
  Bytes data;
  std::string mac;  // hex; shorter than 64 digits when the RFC truncates
};

const std::vector<HmacVector>& Rfc4231Cases() {
  static const std::vector<HmacVector> kCases = {
      // 1
      {Repeat(0x0b, 20), Hex("4869205468657265"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      // 2
      {Hex("4a656665"), Hex("7768617420646f2079612077616e7420666f72206e6f7468696e673f"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      // 3
      {Repeat(0xaa, 20), Repeat(0xdd, 50),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      // 4
      {Hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), Repeat(0xcd, 50),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      // 5: the RFC gives only the first 128 bits
      {Repeat(0x0c, 20), Hex("546573742057697468205472756e636174696f6e"),
       "a3b6167473100ee06e0c796c2955552b"},
      // 6
      {Repeat(0xaa, 131),
       Hex("54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d20"
           "48617368204b6579204669727374"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      // 7
      {Repeat(0xaa, 131),
       Hex("5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d"
           "73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174"
           "612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e"
           "6720757365642062792074686520484d414320616c676f726974686d2e"),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  return kCases;
}

TEST(HmacTest, MatchesRfc4231TestCases) {
  int number = 1;
  for (const HmacVector& v : Rfc4231Cases()) {
    const std::string got = ToHex(HmacSha256(v.key, v.data));
    EXPECT_EQ(got.substr(0, v.mac.size()), v.mac) << "RFC 4231 test case " << number;
    ++number;
  }
}

TEST(HmacTest, KeyedObjectMatchesPublishedVectorsForA32ByteKey) {
  // draft-ietf-ipsec-ciph-sha-256-01, test cases 1 and 2 (key 0x01..0x20).
  const Key key = KeyFromHex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
  Hmac hmac(key);
  EXPECT_EQ(ToHex(hmac.Compute(AsBytes("abc"))),
            "a21b1f5d4cf4f73a4dd939750f7a066a7f98cc131cb16a6692759021cfab8181");
  EXPECT_EQ(
      ToHex(hmac.Compute(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
      "104fdc1257328f08184ba73131c53caee698e36119421149ea8c712456697d30");
  // Once more: reusing the context must not carry state from the last call.
  EXPECT_EQ(ToHex(hmac.Compute(AsBytes("abc"))),
            "a21b1f5d4cf4f73a4dd939750f7a066a7f98cc131cb16a6692759021cfab8181");
}

TEST(HmacTest, KeyedObjectAgreesWithOneShotForManySizes) {
  const Key key = KeyFromHex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  Hmac hmac(key);
  const Bytes data = PseudoRandom((1 << 20) + 17, 2);
  for (size_t n : {size_t{0}, size_t{1}, size_t{55}, size_t{56}, size_t{63}, size_t{64}, size_t{65},
                   size_t{4096}, size_t{1} << 20, data.size()}) {
    const ByteSpan part = ByteSpan(data).first(n);
    EXPECT_EQ(hmac.Compute(part), HmacSha256(key, part)) << n;
  }
  EXPECT_NE(hmac.Compute(AsBytes("a")), hmac.Compute(AsBytes("b")));
  Key other = key;
  other[0] ^= 1;
  EXPECT_NE(Hmac(other).Compute(AsBytes("a")), hmac.Compute(AsBytes("a")));
}

// HmacPair: the interleaved SHA-NI path (when this CPU has it) and the
// OpenSSL path give RFC 4231's answers, alone and in pairs.
TEST(HmacPairTest, MatchesRfc4231TestCases) {
  if (!HmacPair::CpuHasShaNi()) {
    std::printf("note: no SHA extensions on this CPU; HmacPair runs its OpenSSL path\n");
  }
  for (bool accelerate : {true, false}) {
    int number = 1;
    for (const HmacVector& v : Rfc4231Cases()) {
      const HmacPair pair(v.key, accelerate);
      EXPECT_EQ(pair.accelerated(), accelerate && HmacPair::CpuHasShaNi());
      Digest a, b;
      const Bytes other = Repeat(0x42, 1000 + number);
      pair.Compute(v.data, other, &a, &b);
      EXPECT_EQ(ToHex(a).substr(0, v.mac.size()), v.mac) << "case " << number << " " << accelerate;
      EXPECT_EQ(b, HmacSha256(v.key, other)) << "case " << number;
      pair.Compute(other, v.data, &b, &a);
      EXPECT_EQ(ToHex(a).substr(0, v.mac.size()), v.mac) << "case " << number << " second";
      EXPECT_EQ(ToHex(pair.Compute(v.data)).substr(0, v.mac.size()), v.mac) << "case " << number;
      ++number;
    }
  }
}

// Every length class of the padding (tails of 0, 55, 56, 63 bytes; one or two
// final blocks) in every pairing, including unequal lengths, the empty
// message and 1 MiB chunks, against OpenSSL.
TEST(HmacPairTest, AgreesWithOpenSslForPairsOfAnyLength) {
  const Key key = KeyFromHex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const HmacPair pair(key);
  const Bytes data = PseudoRandom((2 << 20) + 200, 7);
  const size_t mib = size_t{1} << 20;
  const size_t sizes[] = {0,   1,   55,  56,  57,       63,      64,  65,      119,
                          120, 127, 128, 129, 4096 + 7, mib - 1, mib, mib + 1, mib + 56};
  for (size_t na : sizes) {
    for (size_t nb : sizes) {
      // Different offsets, so the two messages differ even at equal lengths.
      const ByteSpan a = ByteSpan(data).subspan(3, na);
      const ByteSpan b = ByteSpan(data).subspan(mib - 100, nb);
      Digest ma, mb;
      pair.Compute(a, b, &ma, &mb);
      ASSERT_EQ(ma, HmacSha256(key, a)) << na << " with " << nb;
      ASSERT_EQ(mb, HmacSha256(key, b)) << nb << " with " << na;
    }
    ASSERT_EQ(pair.Compute(ByteSpan(data).subspan(5, na)),
              HmacSha256(key, ByteSpan(data).subspan(5, na)))
        << na;
  }
  // The same message twice gives one answer; a one-bit change another.
  Bytes flipped(data.begin(), data.begin() + mib);
  flipped[mib / 2] ^= 1;
  Digest m1, m2;
  pair.Compute(ByteSpan(data).first(mib), flipped, &m1, &m2);
  EXPECT_NE(m1, m2);
  EXPECT_EQ(m2, HmacSha256(key, flipped));
}

// ---------------------------------------------------------------- GMAC

// The fingerprint GMAC: AES-256-GCM with the zero nonce over additional data
// only. Test case 13 of the GCM specification (all-zero key, zero nonce,
// nothing to authenticate) is that case with empty data, for both paths.
TEST(GmacTest, MatchesGcmSpecTestCase13) {
  const Key zero{};
  for (bool accelerate : {false, true}) {
    Gmac gmac(zero, accelerate);
    EXPECT_EQ(ToHex(gmac.Compute({})), "530f8afbc74536b9a963b4f1c4cb738b") << accelerate;
  }
}

// The wide GHASH path (AVX-512 VPCLMULQDQ, where the CPU has it) gives
// OpenSSL's tag for every length class: whole 256-byte batches, leftover
// blocks, a partial last block, empty input, and 1 MiB chunks.
TEST(GmacTest, WidePathAgreesWithOpenSslForAnyLength) {
  if (!GhashWide::Supported()) {
    std::printf("note: no AVX-512 VPCLMULQDQ on this CPU; Gmac runs its OpenSSL path only\n");
  }
  const Bytes data = PseudoRandom((1 << 20) + 600, 11);
  const size_t mib = size_t{1} << 20;
  std::vector<size_t> sizes = {
      0,   1,   15,  16,   17,      31,  32,      255,      256,       257,       271,      272,
      511, 512, 513, 4096, mib - 1, mib, mib + 1, mib + 16, mib + 255, mib + 256, mib + 300};
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) sizes.push_back(rng() % (mib + 600));
  for (uint64_t k = 0; k < 3; ++k) {
    const Key key = SeededKey(100 + k);
    Gmac fast(key, true);
    Gmac reference(key, false);
    for (size_t n : sizes) {
      const ByteSpan in = ByteSpan(data).subspan((n * 7) % 64, std::min(n, data.size() - 64));
      ASSERT_EQ(ToHex(fast.Compute(in)), ToHex(reference.Compute(in))) << "length " << in.size();
    }
  }
  // One flipped bit anywhere changes the tag (first block, a batch, the tail).
  const Key key = KeyFromHex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  Gmac gmac(key);
  Bytes chunk(data.begin(), data.begin() + mib + 5);
  const Fingerprint before = gmac.Compute(chunk);
  for (size_t at : {size_t{0}, size_t{300}, mib - 1, mib + 4}) {
    chunk[at] ^= 0x01;
    EXPECT_NE(gmac.Compute(chunk), before) << at;
    chunk[at] ^= 0x01;
  }
  EXPECT_EQ(gmac.Compute(chunk), before);
}

// ---------------------------------------------------------------- AES-256-GCM

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* pt;
  const char* aad;
  const char* ct;
  const char* tag;
};

// The GCM specification's (McGrew & Viega) AES-256 cases with 96-bit IVs;
// cases 17 and 18 use 64- and 480-bit IVs, which this API does not take.
constexpr GcmVector kGcmSpecVectors[] = {
    {"test case 13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"test case 14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"test case 15", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"test case 16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

// NIST CAVP gcmEncryptExtIV256.rsp, Keylen 256, IVlen 96, Taglen 128.
constexpr GcmVector kCavpVectors[] = {
    {"PTlen=0 AADlen=0 Count=0", "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4",
     "516c33929df5a3284ff463d7", "", "", "", "bdc1ac884d332457a1d2664f168c76f0"},
    {"PTlen=128 AADlen=0 Count=0",
     "31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22", "0d18e06c7c725ac9e362e1ce",
     "2db5168e932556f8089a0622981d017d", "", "fa4362189661d163fcd6a56d8bf0405a",
     "d636ac1bbedd5cc3ee727dc2ab4a9489"},
    {"PTlen=128 AADlen=128 Count=0",
     "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", "ac93a1a6145299bde902f21a",
     "2d71bcfa914e4ac045b2aa60955fad24", "1e0889016f67601c8ebea4943bc23ad6",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
    {"PTlen=128 AADlen=160 Count=0",
     "83688deb4af8007f9b713b47cfa6c73e35ea7a3aa4ecdb414dded03bf7a0fd3a", "0b459724904e010a46901cf3",
     "33d893a2114ce06fc15d55e454cf90c3", "794a14ccd178c8ebfd1379dc704c5e208f9d8424",
     "cc66bee423e3fcd4c0865715e9586696", "0fb291bd3dba94a1dfd8b286cfb97ac5"},
    {"PTlen=104 AADlen=160 Count=1",
     "97431e565e8370a4879de962746a2fd67eca868b1c8e51eece2c1f94f74af407", "17fb63066e2726d282ecc610",
     "e21629cc973fbe40176e621d9d", "78e7374da7c77be5938de8dd76cf0308618306a9",
     "80dbd469de480389ba6c2fca52", "4e284abb8b4f9f13c7497ae56df05fa5"},
    {"PTlen=256 AADlen=384 Count=0",
     "dc776f0156c15d032623854b625c61868e5db84b7b6f9fbd3672f12f0025e0f6", "67130951c4a57f6ae7f13241",
     "9378a727a5119595ad631b12a5a6bc8a91756ef09c8d6eaa2b718fe86876da20",
     "fd0920faeb7b212932280a009bac969145e5c316cf3922622c3705c3457c4e9f"
     "124b2076994323fbcfb523f8ed16d241",
     "6d958c20870d401a3c1f7a0ac092c97774d451c09f7aae992a8841ff0ab9d60d",
     "b876831b4ecd7242963b040aa45c4114"},
};

// Checks one vector on the wide path (where the CPU has it) and on OpenSSL's.
void CheckGcmVector(const GcmVector& v, bool accelerate) {
  SCOPED_TRACE(std::string(v.name) + (accelerate ? " (wide path)" : " (OpenSSL path)"));
  Aead aead(KeyFromHex(v.key), accelerate);
  const Bytes iv = Hex(v.iv), pt = Hex(v.pt), aad = Hex(v.aad), ct = Hex(v.ct), tag = Hex(v.tag);

  // Sealing with the vector's nonce gives nonce || ct || tag, appended.
  Bytes sealed = {0xee};
  ASSERT_TRUE(aead.SealWithNonce(pt, aad, iv, &sealed).ok());
  Bytes expected = {0xee};
  PutBytes(&expected, iv);
  PutBytes(&expected, ct);
  PutBytes(&expected, tag);
  EXPECT_EQ(ToHex(sealed), ToHex(expected));

  // Both ways of opening recover the plaintext.
  Bytes plain = {1, 2, 3};
  ASSERT_TRUE(aead.OpenDetached(iv, ct, tag, aad, &plain).ok());
  EXPECT_EQ(ToHex(plain), ToHex(pt));
  plain = {1, 2, 3};
  ASSERT_TRUE(aead.Open(ByteSpan(sealed).subspan(1), aad, &plain).ok());
  EXPECT_EQ(ToHex(plain), ToHex(pt));

  // A changed tag bit is caught.
  Bytes bad_tag = tag;
  bad_tag[15] ^= 0x80;
  Status s = aead.OpenDetached(iv, ct, bad_tag, aad, &plain);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_TRUE(plain.empty());
}

TEST(AeadTest, MatchesGcmSpecTestCases13To16) {
  for (const GcmVector& v : kGcmSpecVectors) {
    CheckGcmVector(v, true);
    CheckGcmVector(v, false);
  }
}

TEST(AeadTest, MatchesNistCavpVectors) {
  for (const GcmVector& v : kCavpVectors) {
    CheckGcmVector(v, true);
    CheckGcmVector(v, false);
  }
}

// The wide path (libgcrypt CTR + wide GHASH) and OpenSSL's GCM give the same
// bytes for every length class of plaintext and aad -- empty, partial blocks,
// whole 512-byte GHASH batches and what is left after them, 1 MiB chunks --
// and each opens what the other sealed.
TEST(AeadTest, WidePathAgreesWithOpenSslBothWays) {
  if (!GhashWide::Supported()) {
    std::printf("note: no AVX-512 VPCLMULQDQ on this CPU; Aead runs its OpenSSL path only\n");
  }
  const size_t mib = size_t{1} << 20;
  const Bytes data = PseudoRandom(mib + 700, 21);
  std::vector<size_t> sizes = {0,       1,   15,      16,       17,        63,        64,
                               65,      511, 512,     513,      527,       528,       4096,
                               mib - 1, mib, mib + 1, mib + 16, mib + 511, mib + 512, mib + 600};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 120; ++i) sizes.push_back(rng() % (mib + 600));
  const size_t aad_sizes[] = {0, 1, 16, 52, 100, 512, 1000};
  const Bytes nonce = PseudoRandom(kNonceSize, 22);
  for (uint64_t k = 0; k < 2; ++k) {
    const Key key = SeededKey(200 + k);
    Aead fast(key, true);
    Aead reference(key, false);
    size_t round = 0;
    for (size_t n : sizes) {
      const ByteSpan pt = ByteSpan(data).subspan(n % 64, std::min(n, data.size() - 64));
      const size_t a = aad_sizes[round++ % std::size(aad_sizes)];
      const ByteSpan aad = ByteSpan(data).subspan(data.size() - a, a);
      SCOPED_TRACE("plaintext " + std::to_string(pt.size()) + ", aad " + std::to_string(a));
      Bytes by_fast, by_reference;
      ASSERT_TRUE(fast.SealWithNonce(pt, aad, nonce, &by_fast).ok());
      ASSERT_TRUE(reference.SealWithNonce(pt, aad, nonce, &by_reference).ok());
      ASSERT_EQ(by_fast, by_reference);
      // Fresh nonces: each side opens the other's message.
      Bytes sealed, opened;
      ASSERT_TRUE(fast.Seal(pt, aad, &sealed).ok());
      ASSERT_TRUE(reference.Open(sealed, aad, &opened).ok());
      ASSERT_TRUE(std::equal(opened.begin(), opened.end(), pt.begin(), pt.end()));
      sealed.clear();
      ASSERT_TRUE(reference.Seal(pt, aad, &sealed).ok());
      ASSERT_TRUE(fast.Open(sealed, aad, &opened).ok());
      ASSERT_TRUE(std::equal(opened.begin(), opened.end(), pt.begin(), pt.end()));
    }
  }
}

TEST(AeadTest, SealOpenRoundTripsAndAppends) {
  Aead aead(RandomKey());
  const Bytes data = PseudoRandom((1 << 20) + 3, 3);
  const Bytes aad = {'p', 'a', 'c', 'k'};
  for (size_t n :
       {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{4096}, data.size()}) {
    SCOPED_TRACE(n);
    const ByteSpan plaintext = ByteSpan(data).first(n);
    Bytes sealed = {9, 8, 7};
    ASSERT_TRUE(aead.Seal(plaintext, aad, &sealed).ok());
    ASSERT_EQ(sealed.size(), 3 + kSealOverhead + n);
    EXPECT_EQ(sealed[0], 9);
    EXPECT_EQ(sealed[2], 7);
    Bytes opened;
    ASSERT_TRUE(aead.Open(ByteSpan(sealed).subspan(3), aad, &opened).ok());
    EXPECT_TRUE(std::equal(opened.begin(), opened.end(), plaintext.begin(), plaintext.end()));
  }
  // Empty aad is a valid choice too, and differs from a non-empty one.
  Bytes sealed;
  ASSERT_TRUE(aead.Seal(AsBytes("x"), {}, &sealed).ok());
  Bytes opened;
  EXPECT_TRUE(aead.Open(sealed, {}, &opened).ok());
  EXPECT_EQ(aead.Open(sealed, aad, &opened).code(), Code::kCorruption);
}

class AeadPathTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(WideAndOpenSsl, AeadPathTest, ::testing::Bool());

TEST_P(AeadPathTest, TamperingWithAnyPartIsCorruption) {
  Aead aead(RandomKey(), GetParam());
  const Bytes plaintext = PseudoRandom(1000, 4);
  const Bytes aad = {'h', 'e', 'a', 'd', 'e', 'r'};
  Bytes sealed;
  ASSERT_TRUE(aead.Seal(plaintext, aad, &sealed).ok());

  // Every byte of nonce, ciphertext and tag matters.
  for (size_t i = 0; i < sealed.size(); ++i) {
    Bytes bad = sealed;
    bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
    Bytes out = {1};
    Status s = aead.Open(bad, aad, &out);
    ASSERT_EQ(s.code(), Code::kCorruption) << "byte " << i;
    EXPECT_TRUE(out.empty());
  }
  // So does every byte of the aad, and its length.
  for (size_t i = 0; i < aad.size(); ++i) {
    Bytes bad_aad = aad;
    bad_aad[i] ^= 0x01;
    Bytes out;
    EXPECT_EQ(aead.Open(sealed, bad_aad, &out).code(), Code::kCorruption) << "aad byte " << i;
  }
  Bytes out;
  EXPECT_EQ(aead.Open(sealed, ByteSpan(aad).first(aad.size() - 1), &out).code(), Code::kCorruption);
  // A message cut short or extended does not verify either.
  EXPECT_EQ(aead.Open(ByteSpan(sealed).first(sealed.size() - 1), aad, &out).code(),
            Code::kCorruption);
  Bytes longer = sealed;
  longer.push_back(0);
  EXPECT_EQ(aead.Open(longer, aad, &out).code(), Code::kCorruption);
  // The object is still usable after failures.
  ASSERT_TRUE(aead.Open(sealed, aad, &out).ok());
  EXPECT_EQ(out, plaintext);
}

TEST_P(AeadPathTest, IntoCallerMemoryMatchesTheVectorForm) {
  Key key{};
  key[3] = 7;
  Aead aead(key, GetParam());
  Bytes plaintext(5000, 0x5a), aad = {1, 2, 3};
  Bytes sealed(plaintext.size() + kSealOverhead);
  ASSERT_TRUE(aead.SealInto(plaintext, aad, sealed).ok());
  Bytes viaVector;
  ASSERT_TRUE(aead.Open(sealed, aad, &viaVector).ok());
  EXPECT_EQ(viaVector, plaintext);
  Bytes out(plaintext.size());
  ASSERT_TRUE(aead.OpenInto(sealed, aad, out).ok());
  EXPECT_EQ(out, plaintext);
  // Wrong output sizes are refused before anything is written.
  Bytes small(plaintext.size() - 1), big(sealed.size() + 1);
  EXPECT_EQ(aead.SealInto(plaintext, aad, big).code(), Code::kInvalidArgument);
  EXPECT_EQ(aead.OpenInto(sealed, aad, small).code(), Code::kInvalidArgument);
  EXPECT_EQ(aead.OpenInto(Bytes(kSealOverhead - 1), aad, {}).code(), Code::kCorruption);
  // A tampered message leaves zeros, never unauthenticated plaintext.
  sealed[kNonceSize + 10] ^= 1;
  std::fill(out.begin(), out.end(), 0x11);
  EXPECT_EQ(aead.OpenInto(sealed, aad, out).code(), Code::kCorruption);
  EXPECT_EQ(out, Bytes(out.size(), 0));
}

TEST_P(AeadPathTest, WrongKeyIsCorruption) {
  const Key key = RandomKey();
  Key other = key;
  other[31] ^= 0x01;
  Bytes sealed;
  ASSERT_TRUE(Aead(key, GetParam()).Seal(AsBytes("secret"), {}, &sealed).ok());
  Bytes out;
  EXPECT_EQ(Aead(other, GetParam()).Open(sealed, {}, &out).code(), Code::kCorruption);
}

TEST(AeadTest, MessageShorterThanOverheadIsCorruption) {
  Aead aead(RandomKey());
  Bytes sealed;
  ASSERT_TRUE(aead.Seal({}, {}, &sealed).ok());
  ASSERT_EQ(sealed.size(), kSealOverhead);
  for (size_t n = 0; n < kSealOverhead; ++n) {
    Bytes out = {1, 2};
    Status s = aead.Open(ByteSpan(sealed).first(n), {}, &out);
    EXPECT_EQ(s.code(), Code::kCorruption) << n;
    EXPECT_TRUE(out.empty());
  }
  Bytes out;
  EXPECT_TRUE(aead.Open(sealed, {}, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(AeadTest, SealingTwiceUsesFreshNonces) {
  Aead aead(RandomKey());
  const Bytes plaintext = PseudoRandom(64, 5);
  Bytes a, b;
  ASSERT_TRUE(aead.Seal(plaintext, {}, &a).ok());
  ASSERT_TRUE(aead.Seal(plaintext, {}, &b).ok());
  EXPECT_NE(a, b);
  EXPECT_FALSE(std::equal(a.begin(), a.begin() + kNonceSize, b.begin()));
}

TEST(AeadTest, BadNonceOrTagLengthIsInvalidArgument) {
  Aead aead(RandomKey());
  Bytes out;
  EXPECT_EQ(aead.SealWithNonce(AsBytes("x"), {}, Bytes(8), &out).code(), Code::kInvalidArgument);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(aead.OpenDetached(Bytes(16), Bytes(4), Bytes(16), {}, &out).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(aead.OpenDetached(Bytes(12), Bytes(4), Bytes(12), {}, &out).code(),
            Code::kInvalidArgument);
}

// ---------------------------------------------------------------- scrypt

TEST(ScryptTest, MatchesRfc7914Vectors) {
  // RFC 7914 section 12; the key is the first 32 bytes of the 64-byte output.
  Result<Key> k1 = DeriveKeyScrypt("", {}, 16, 1, 1);
  ASSERT_TRUE(k1.ok()) << k1.status().ToString();
  EXPECT_EQ(ToHex(*k1), "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442");

  Result<Key> k2 = DeriveKeyScrypt("password", AsBytes("NaCl"), 1024, 8, 16);
  ASSERT_TRUE(k2.ok()) << k2.status().ToString();
  EXPECT_EQ(ToHex(*k2), "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162");
}

TEST(ScryptTest, RefusesBadOrExcessiveParameters) {
  const auto code = [](uint64_t n, uint32_t r, uint32_t p) {
    return DeriveKeyScrypt("pw", AsBytes("salt"), n, r, p).status().code();
  };
  EXPECT_EQ(code(0, 8, 1), Code::kInvalidArgument);
  EXPECT_EQ(code(1, 8, 1), Code::kInvalidArgument);
  EXPECT_EQ(code(1000, 8, 1), Code::kInvalidArgument);  // not a power of two
  EXPECT_EQ(code(16, 0, 1), Code::kInvalidArgument);
  EXPECT_EQ(code(16, 8, 0), Code::kInvalidArgument);
  EXPECT_EQ(code(uint64_t{1} << 16, 1, 1), Code::kInvalidArgument);  // N >= 2^(16 r)
  EXPECT_EQ(code(16, 1 << 15, 1 << 15), Code::kInvalidArgument);     // r p >= 2^30
  // 128 * 16 * 2^20 = 2 GiB for V alone: over the limit, refused up front.
  EXPECT_EQ(code(uint64_t{1} << 20, 16, 1), Code::kInvalidArgument);
  EXPECT_EQ(code(uint64_t{1} << 21, 8, 1), Code::kInvalidArgument);
  EXPECT_EQ(code(uint64_t{1} << 62, 8, 1), Code::kInvalidArgument);
  EXPECT_EQ(code(16, 1, 1 << 29), Code::kInvalidArgument);  // B too large
  EXPECT_EQ(code(16, 1, 1), Code::kOk);
}

// ---------------------------------------------------------------- HKDF

TEST(HkdfTest, MatchesRfc5869TestCases1To3) {
  // The API returns 32 bytes: the first 32 bytes of each OKM (L = 42, 82, 42).
  EXPECT_EQ(ToHex(HkdfSha256(Repeat(0x0b, 22), Hex("000102030405060708090a0b0c"),
                             AsChars(Hex("f0f1f2f3f4f5f6f7f8f9")))),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");

  Bytes ikm, salt, info;
  for (int i = 0x00; i < 0x50; ++i) ikm.push_back(static_cast<uint8_t>(i));
  for (int i = 0x60; i < 0xb0; ++i) salt.push_back(static_cast<uint8_t>(i));
  for (int i = 0xb0; i < 0x100; ++i) info.push_back(static_cast<uint8_t>(i));
  EXPECT_EQ(ToHex(HkdfSha256(ikm, salt, AsChars(info))),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c");

  EXPECT_EQ(ToHex(HkdfSha256(Repeat(0x0b, 22), {}, "")),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
}

TEST(HkdfTest, EmptyInputKeyMaterialFollowsTheDefinition) {
  // HKDF from its definition: PRK = HMAC(salt, IKM); T(1) = HMAC(PRK, info || 0x01).
  const Bytes salt = Hex("000102030405060708090a0b0c");
  const Digest prk = HmacSha256(salt, {});
  Bytes t1_input = {'c', 't', 'x', 0x01};
  EXPECT_EQ(HkdfSha256({}, salt, "ctx"), HmacSha256(prk, t1_input));
  EXPECT_NE(HkdfSha256(Repeat(1, 32), {}, "a"), HkdfSha256(Repeat(1, 32), {}, "b"));
}

// ---------------------------------------------------------------- misc

TEST(ConstantTimeEqualTest, ComparesContentsAndLengths) {
  const Bytes a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, c));
  EXPECT_FALSE(ConstantTimeEqual(a, d));
  EXPECT_TRUE(ConstantTimeEqual({}, {}));
  EXPECT_FALSE(ConstantTimeEqual({}, a));
}

TEST(RandomTest, FillsBuffersAndKeysDiffer) {
  Bytes buf(100000, 0);
  ASSERT_TRUE(RandomBytes(buf).ok());
  EXPECT_GT(std::count_if(buf.begin(), buf.end(), [](uint8_t v) { return v != 0; }), 99000);
  EXPECT_TRUE(RandomBytes({}).ok());
  EXPECT_NE(RandomKey(), RandomKey());
}

}  // namespace
}  // namespace bunker::crypto
