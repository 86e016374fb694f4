#include "nodeagent/core/chunk/compress.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace bunker::chunk {
namespace {

Bytes PseudoRandom(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (auto& b : out) {
    b = static_cast<uint8_t>(rng());
  }
  return out;
}

// Log-file-like text: words from a small vocabulary, numbers, line breaks.
Bytes TextLike(size_t n, uint64_t seed) {
  static const char* const kWords[] = {
      "the",     "backup",   "volume",  "chunk",  "snapshot", "INFO",    "WARN",      "pod",
      "node",    "restore",  "pack",    "index",  "kube",     "system",  "error",     "request",
      "handled", "duration", "ms",      "bytes",  "agent",    "cluster", "namespace", "storage",
      "class",   "token",    "session", "closed", "opened",   "user"};
  std::mt19937_64 rng(seed);
  std::string text;
  text.reserve(n + 64);
  while (text.size() < n) {
    const uint64_t r = rng();
    text += kWords[r % std::size(kWords)];
    if (r % 7 == 0) {
      text += ' ';
      text += std::to_string((r >> 8) % 100000);
    }
    text += (r >> 40) % 12 == 0 ? '\n' : ' ';
  }
  text.resize(n);
  return Bytes(text.begin(), text.end());
}

TEST(Lz4Test, TextLikeDataShrinksAndRoundTrips) {
  for (size_t n : {size_t{100}, size_t{4096}, size_t{200000}, size_t{1} << 20, size_t{3} << 20}) {
    SCOPED_TRACE(n);
    const Bytes src = TextLike(n, n);
    Bytes compressed;
    ASSERT_TRUE(Lz4Compress(src, &compressed));
    EXPECT_LT(compressed.size(), src.size());
    if (n >= 4096) {
      EXPECT_LT(compressed.size(), src.size() * 3 / 4);
    }
    Bytes back = {42};
    ASSERT_TRUE(Lz4Decompress(compressed, src.size(), &back).ok());
    EXPECT_EQ(back, src);
  }
}

TEST(Lz4Test, RandomDataIsReportedIncompressible) {
  // Below the sampling threshold (full attempt) and above it (sample only).
  for (size_t n : {size_t{1000}, size_t{100000}, size_t{256} << 10, size_t{1} << 20}) {
    Bytes dst;
    EXPECT_FALSE(Lz4Compress(PseudoRandom(n, n), &dst)) << n;
  }
}

TEST(Lz4Test, TinyInputsAreStoredRaw) {
  Bytes dst;
  EXPECT_FALSE(Lz4Compress({}, &dst));
  const Bytes one = {7};
  EXPECT_FALSE(Lz4Compress(one, &dst));
}

TEST(Lz4Test, ExtremelyCompressibleDataRoundTrips) {
  // All zeros reach LZ4's largest expansion (close to 255:1); the decoder's
  // up-front expansion bound must still accept it.
  const Bytes zeros(8 << 20, 0);
  Bytes compressed;
  ASSERT_TRUE(Lz4Compress(zeros, &compressed));
  EXPECT_LT(compressed.size(), zeros.size() / 200);
  Bytes back;
  ASSERT_TRUE(Lz4Decompress(compressed, zeros.size(), &back).ok());
  EXPECT_EQ(back, zeros);
}

TEST(Lz4Test, CompressibleMiddleButRandomEdgesStillCompresses) {
  // The sample is taken from the middle; when it shrinks, the whole chunk is
  // compressed and must still round-trip.
  Bytes src = PseudoRandom(1 << 20, 9);
  const Bytes text = TextLike(600 << 10, 10);
  std::copy(text.begin(), text.end(), src.begin() + (212 << 10));
  Bytes compressed;
  ASSERT_TRUE(Lz4Compress(src, &compressed));
  Bytes back;
  ASSERT_TRUE(Lz4Decompress(compressed, src.size(), &back).ok());
  EXPECT_EQ(back, src);
}

TEST(Lz4Test, ChunkCompressibleInOneHalfOnlyStillCompresses) {
  // Text in one half, random bytes in the other, either way round: one of
  // the two samples (a quarter and three quarters in) finds the text.
  for (bool text_first : {true, false}) {
    Bytes src = PseudoRandom(1 << 20, 12);
    const Bytes text = TextLike(512 << 10, 13);
    std::copy(text.begin(), text.end(), src.begin() + (text_first ? 0 : (512 << 10)));
    Bytes compressed;
    ASSERT_TRUE(Lz4Compress(src, &compressed)) << text_first;
    EXPECT_LT(compressed.size(), src.size() * 3 / 4) << text_first;
    Bytes back;
    ASSERT_TRUE(Lz4Decompress(compressed, src.size(), &back).ok());
    EXPECT_EQ(back, src);
  }
}

class Lz4DecompressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = TextLike(300000, 11);
    ASSERT_TRUE(Lz4Compress(src_, &compressed_));
  }
  Bytes src_;
  Bytes compressed_;
};

TEST_F(Lz4DecompressTest, WrongRawSizeIsCorruption) {
  for (size_t raw :
       {src_.size() - 1, src_.size() + 1, size_t{0}, src_.size() / 2, src_.size() * 2}) {
    Bytes out = {1, 2, 3};
    Status s = Lz4Decompress(compressed_, raw, &out);
    EXPECT_EQ(s.code(), Code::kCorruption) << raw;
    EXPECT_TRUE(out.empty());
  }
}

TEST_F(Lz4DecompressTest, TruncatedInputIsCorruption) {
  for (size_t n = 0; n < compressed_.size(); n += 1 + n / 3) {
    Bytes out;
    EXPECT_EQ(Lz4Decompress(ByteSpan(compressed_).first(n), src_.size(), &out).code(),
              Code::kCorruption)
        << n;
  }
  Bytes out;
  EXPECT_EQ(
      Lz4Decompress(ByteSpan(compressed_).first(compressed_.size() - 1), src_.size(), &out).code(),
      Code::kCorruption);
}

TEST_F(Lz4DecompressTest, DamagedInputNeverCrashes) {
  // A flipped byte may still decode (inside a literal run) but must never
  // read or write out of bounds (run under ASan) or yield the wrong size.
  std::mt19937_64 rng(12);
  for (int i = 0; i < 2000; ++i) {
    Bytes bad = compressed_;
    bad[rng() % bad.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    Bytes out;
    Status s = Lz4Decompress(bad, src_.size(), &out);
    if (s.ok()) {
      EXPECT_EQ(out.size(), src_.size());
    } else {
      EXPECT_EQ(s.code(), Code::kCorruption);
      EXPECT_TRUE(out.empty());
    }
  }
}

TEST(Lz4Test, IntoCallerMemoryMatchesTheVectorForm) {
  Bytes src = TextLike(1 << 20, 5);
  Bytes dst(src.size() - 1);
  const size_t n = Lz4CompressTo(src, dst);
  ASSERT_GT(n, 0u);
  Bytes viaVector;
  ASSERT_TRUE(Lz4Compress(src, &viaVector));
  EXPECT_EQ(viaVector, Bytes(dst.begin(), dst.begin() + static_cast<std::ptrdiff_t>(n)));
  Bytes back(src.size());
  ASSERT_TRUE(Lz4DecompressTo(ByteSpan(dst).first(n), back).ok());
  EXPECT_EQ(back, src);
  Bytes short_out(src.size() - 1);
  EXPECT_EQ(Lz4DecompressTo(ByteSpan(dst).first(n), short_out).code(), Code::kCorruption);
  // Too little room for a useful result, or random data: 0 (store raw).
  Bytes tiny(16);
  EXPECT_EQ(Lz4CompressTo(src, tiny), 0u);
  Bytes random = PseudoRandom(1 << 20, 99);
  EXPECT_EQ(Lz4CompressTo(random, dst), 0u);
}

TEST(Lz4Test, GarbageIsCorruption) {
  // Random bytes are occasionally a valid block of exactly the claimed size
  // (a token announcing n literals followed by n bytes); anything else must be
  // Corruption with an empty output, and nothing may crash.
  std::mt19937_64 rng(13);
  int rejected = 0;
  for (int i = 0; i < 1000; ++i) {
    const size_t n = 1 + rng() % 5000;
    const Bytes garbage = PseudoRandom(n, rng());
    const size_t raw = 1 + rng() % (4 * n);
    Bytes out;
    Status s = Lz4Decompress(garbage, raw, &out);
    if (s.ok()) {
      EXPECT_EQ(out.size(), raw);
    } else {
      ++rejected;
      EXPECT_EQ(s.code(), Code::kCorruption) << i;
      EXPECT_TRUE(out.empty());
    }
  }
  EXPECT_GE(rejected, 990);
  // Text is not LZ4 either.
  Bytes out;
  EXPECT_EQ(Lz4Decompress(AsBytes("this is not an lz4 block at all"), 100, &out).code(),
            Code::kCorruption);
  EXPECT_EQ(Lz4Decompress({}, 0, &out).code(), Code::kCorruption);
  EXPECT_EQ(Lz4Decompress({}, 100, &out).code(), Code::kCorruption);
}

TEST(Lz4Test, ImpossibleRawSizeIsRefusedBeforeAllocating) {
  const Bytes small = {0x10, 'a'};  // a valid block: one literal, "a"
  Bytes out;
  ASSERT_TRUE(Lz4Decompress(small, 1, &out).ok());
  EXPECT_EQ(out, Bytes{'a'});

  Bytes fresh;
  EXPECT_EQ(Lz4Decompress(small, size_t{1} << 30, &fresh).code(), Code::kCorruption);
  EXPECT_EQ(fresh.capacity(), 0u);
  EXPECT_EQ(Lz4Decompress(small, size_t{1} << 40, &fresh).code(), Code::kCorruption);
  EXPECT_EQ(fresh.capacity(), 0u);
}

}  // namespace
}  // namespace bunker::chunk
