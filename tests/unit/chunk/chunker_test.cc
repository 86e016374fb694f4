#include "nodeagent/core/chunk/chunker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <random>
#include <vector>

#include "nodeagent/core/crypto/crypto.h"

namespace bunker::chunk {
namespace {

Bytes PseudoRandom(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; ++i) {
    out[i] = static_cast<uint8_t>(rng());
  }
  return out;
}

Bytes Seed(uint8_t first) {
  Bytes seed(32);
  for (size_t i = 0; i < seed.size(); ++i) {
    seed[i] = static_cast<uint8_t>(first + i);
  }
  return seed;
}

// Small chunks so that a 32 MiB buffer holds hundreds of them.
constexpr CdcParams kSmall{16 * 1024, 64 * 1024, 256 * 1024};
constexpr CdcParams kDefault{};

// Cuts all of `data` with eof = true at the end, the way a reader does it.
std::vector<size_t> ChunkLengths(const FastCdc& cdc, ByteSpan data) {
  std::vector<size_t> lengths;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t n = cdc.FindBoundary(data.subspan(pos), /*eof=*/true);
    EXPECT_GT(n, 0u);
    if (n == 0) {
      break;
    }
    lengths.push_back(n);
    pos += n;
  }
  return lengths;
}

std::vector<crypto::Digest> ChunkHashes(const FastCdc& cdc, ByteSpan data) {
  std::vector<crypto::Digest> hashes;
  size_t pos = 0;
  for (size_t n : ChunkLengths(cdc, data)) {
    hashes.push_back(crypto::Sha256(data.subspan(pos, n)));
    pos += n;
  }
  return hashes;
}

// How many chunks of `b` also occur in `a` (as a multiset).
size_t SharedChunks(const std::vector<crypto::Digest>& a, const std::vector<crypto::Digest>& b) {
  std::map<crypto::Digest, int> count;
  for (const auto& d : a) {
    ++count[d];
  }
  size_t shared = 0;
  for (const auto& d : b) {
    auto it = count.find(d);
    if (it != count.end() && it->second > 0) {
      --it->second;
      ++shared;
    }
  }
  return shared;
}

// --------------------------------------------------------------- gear table

TEST(GearTableTest, DeterministicPerSeedAndDistinctAcrossSeeds) {
  const GearTable a = MakeGearTable(Seed(0));
  EXPECT_EQ(a, MakeGearTable(Seed(0)));
  const GearTable b = MakeGearTable(Seed(1));
  EXPECT_NE(a, b);
  // Entries look random: distinct, about half their bits set overall.
  std::vector<uint64_t> sorted(a.begin(), a.end());
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
  int bits = 0;
  for (uint64_t v : a) {
    bits += std::popcount(v);
  }
  EXPECT_NEAR(bits / 256.0, 32.0, 1.5);
}

TEST(GearTableTest, IsTheDocumentedHmacStream) {
  // Pins the repository-format derivation: word 0 is the first 8 bytes
  // (little endian) of HMAC-SHA256(seed, "bunker/fastcdc-gear/v1" || 0x00),
  // word 255 the last 8 bytes of the block with counter 63.
  const Bytes seed = Seed(7);
  const GearTable table = MakeGearTable(seed);
  std::string message = "bunker/fastcdc-gear/v1";
  message.push_back('\0');
  const crypto::Digest first = crypto::HmacSha256(seed, AsBytes(message));
  EXPECT_EQ(table[0], LoadU64(first.data()));
  EXPECT_EQ(table[3], LoadU64(first.data() + 24));
  message.back() = 63;
  const crypto::Digest last = crypto::HmacSha256(seed, AsBytes(message));
  EXPECT_EQ(table[255], LoadU64(last.data() + 24));
}

// --------------------------------------------------------------- FastCDC

TEST(FastCdcTest, ChunkLengthsStayWithinBounds) {
  const Bytes data = PseudoRandom(32 << 20, 1);
  for (const CdcParams& params : {kSmall, kDefault}) {
    const FastCdc cdc(params, MakeGearTable(Seed(0)));
    const std::vector<size_t> lengths = ChunkLengths(cdc, data);
    ASSERT_FALSE(lengths.empty());
    size_t total = 0;
    for (size_t i = 0; i < lengths.size(); ++i) {
      total += lengths[i];
      EXPECT_LE(lengths[i], params.max_size) << i;
      if (i + 1 < lengths.size()) {
        EXPECT_GT(lengths[i], params.min_size) << i;
      }
    }
    EXPECT_EQ(total, data.size());
  }
}

TEST(FastCdcTest, AverageChunkSizeIsNearTheTargetOnRandomData) {
  const Bytes data = PseudoRandom(64 << 20, 2);
  for (const CdcParams& params : {kSmall, kDefault}) {
    const FastCdc cdc(params, MakeGearTable(Seed(3)));
    const std::vector<size_t> lengths = ChunkLengths(cdc, data);
    // Leave out the last chunk, which is cut by the end of the data.
    const double mean =
        static_cast<double>(data.size() - lengths.back()) / static_cast<double>(lengths.size() - 1);
    EXPECT_GT(mean, params.avg_size * 0.65) << params.avg_size;
    EXPECT_LT(mean, params.avg_size * 1.35) << params.avg_size;
  }
}

TEST(FastCdcTest, BoundariesAreDeterministicPerSeedAndDifferAcrossSeeds) {
  const Bytes data = PseudoRandom(8 << 20, 4);
  const FastCdc a(kSmall, MakeGearTable(Seed(0)));
  const FastCdc a2(kSmall, MakeGearTable(Seed(0)));
  const FastCdc b(kSmall, MakeGearTable(Seed(100)));
  const std::vector<size_t> la = ChunkLengths(a, data);
  EXPECT_EQ(la, ChunkLengths(a, data));
  EXPECT_EQ(la, ChunkLengths(a2, data));
  const std::vector<size_t> lb = ChunkLengths(b, data);
  EXPECT_NE(la, lb);
  // Not merely shifted: almost no boundary positions coincide.
  std::vector<size_t> cuts_a, cuts_b;
  size_t pos = 0;
  for (size_t n : la) cuts_a.push_back(pos += n);
  pos = 0;
  for (size_t n : lb) cuts_b.push_back(pos += n);
  std::vector<size_t> common;
  std::set_intersection(cuts_a.begin(), cuts_a.end(), cuts_b.begin(), cuts_b.end(),
                        std::back_inserter(common));
  EXPECT_LE(common.size(), 2u);  // the end of the data, and perhaps a rare coincidence
}

void ExpectStableAfterEdit(const CdcParams& params, const Bytes& original, const Bytes& edited) {
  const FastCdc cdc(params, MakeGearTable(Seed(5)));
  const std::vector<crypto::Digest> before = ChunkHashes(cdc, original);
  const std::vector<crypto::Digest> after = ChunkHashes(cdc, edited);
  ASSERT_GT(before.size(), 10u);
  // Most chunks are shared...
  const size_t shared = SharedChunks(before, after);
  EXPECT_GE(shared * 10, after.size() * 9) << shared << " of " << after.size();
  // ...and after the first few chunks the two lists are identical: the cut
  // points have resynchronised right after the edit.
  const size_t differing = after.size() - shared;
  EXPECT_LE(differing, 2u);
  const size_t tail = std::min(before.size(), after.size()) - 2;
  EXPECT_TRUE(std::equal(before.end() - tail, before.end(), after.end() - tail));
}

TEST(FastCdcTest, InsertionEarlyChangesOnlyTheFirstChunks) {
  const Bytes original = PseudoRandom(32 << 20, 6);
  Bytes edited = original;
  const Bytes inserted = {'h', 'e', 'l', 'l', 'o', '!', '\n'};
  edited.insert(edited.begin() + 5000, inserted.begin(), inserted.end());
  ExpectStableAfterEdit(kSmall, original, edited);
  ExpectStableAfterEdit(kDefault, original, edited);
}

TEST(FastCdcTest, InsertionOrDeletionInTheMiddleChangesOnlyNearbyChunks) {
  const Bytes original = PseudoRandom(32 << 20, 7);
  const FastCdc cdc(kSmall, MakeGearTable(Seed(8)));
  Bytes inserted = original;
  inserted.insert(inserted.begin() + (13 << 20), 3, 0xab);
  Bytes deleted = original;
  deleted.erase(deleted.begin() + (21 << 20), deleted.begin() + (21 << 20) + 100);
  const std::vector<crypto::Digest> before = ChunkHashes(cdc, original);
  for (const Bytes* edited : {&inserted, &deleted}) {
    const std::vector<crypto::Digest> after = ChunkHashes(cdc, *edited);
    const size_t shared = SharedChunks(before, after);
    EXPECT_GE(shared + 3, after.size()) << shared << " of " << after.size();
  }
}

TEST(FastCdcTest, AsksForMoreDataUntilItCanDecide) {
  const FastCdc cdc(kSmall, MakeGearTable(Seed(9)));
  // Up to min_size nothing can be decided without EOF.
  const Bytes data = PseudoRandom(4 << 20, 10);
  const ByteSpan all(data);
  EXPECT_EQ(cdc.FindBoundary({}, false), 0u);
  EXPECT_EQ(cdc.FindBoundary({}, true), 0u);
  EXPECT_EQ(cdc.FindBoundary(all.first(100), false), 0u);
  EXPECT_EQ(cdc.FindBoundary(all.first(100), true), 100u);
  EXPECT_EQ(cdc.FindBoundary(all.first(kSmall.min_size), false), 0u);
  EXPECT_EQ(cdc.FindBoundary(all.first(kSmall.min_size), true), kSmall.min_size);

  // With max_size bytes or more there is always an answer, and it is the cut.
  const size_t cut = cdc.FindBoundary(all, false);
  ASSERT_GT(cut, kSmall.min_size);
  ASSERT_LE(cut, kSmall.max_size);
  EXPECT_EQ(cdc.FindBoundary(all.first(kSmall.max_size), false), cut);
  // Any prefix either yields the same cut or asks for more; never another cut.
  for (size_t n = kSmall.min_size; n < kSmall.max_size; n += 997) {
    const size_t got = cdc.FindBoundary(all.first(n), false);
    if (n >= cut) {
      EXPECT_EQ(got, cut) << n;
    } else {
      EXPECT_EQ(got, 0u) << n;
      EXPECT_EQ(cdc.FindBoundary(all.first(n), true), n) << n;
    }
  }
}

TEST(FastCdcTest, RepetitiveDataGivesEqualChunks) {
  // Every chunk of constant data starts the same way, so all but the last
  // are cut at the same length (max_size when the hash never matches).
  const FastCdc cdc(kSmall, MakeGearTable(Seed(0)));
  const Bytes data(kSmall.max_size * 3 + 5, 0x5a);
  const std::vector<size_t> lengths = ChunkLengths(cdc, data);
  ASSERT_GE(lengths.size(), 4u);
  for (size_t i = 1; i + 1 < lengths.size(); ++i) {
    EXPECT_EQ(lengths[i], lengths[0]) << i;
  }
  EXPECT_LE(lengths.back(), lengths[0]);
  // Without EOF, 5 trailing bytes are not a chunk yet.
  EXPECT_EQ(cdc.FindBoundary(ByteSpan(data).last(5), false), 0u);
}

TEST(FastCdcTest, StreamingThroughAWindowMatchesWholeBuffer) {
  // A reader that holds at most max_size + 64 KiB and refills on 0 finds the
  // same chunks as one call per chunk over the whole buffer.
  const Bytes data = PseudoRandom(20 << 20, 11);
  const FastCdc cdc(kSmall, MakeGearTable(Seed(12)));
  const std::vector<size_t> whole = ChunkLengths(cdc, data);

  std::vector<size_t> streamed;
  const size_t window = kSmall.max_size + (64 << 10);
  size_t start = 0;  // start of the pending data
  size_t end = 0;    // end of what the "reader" has delivered
  while (start < data.size()) {
    const bool eof = end == data.size();
    const size_t n = cdc.FindBoundary(ByteSpan(data).subspan(start, end - start), eof);
    if (n == 0) {
      ASSERT_FALSE(eof);
      end = std::min(data.size(), start + window);  // read more
      continue;
    }
    streamed.push_back(n);
    start += n;
  }
  EXPECT_EQ(streamed, whole);
}

// --------------------------------------------------------------- IsAllZero

TEST(IsAllZeroTest, FindsTheLastNonzeroByteAtEveryPositionAndAlignment) {
  Bytes buf(300 + 8, 0);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; n <= 300; ++n) {
      const ByteSpan span(buf.data() + offset, n);
      ASSERT_TRUE(IsAllZero(span)) << offset << " " << n;
      for (size_t pos = 0; pos < n; ++pos) {
        buf[offset + pos] = static_cast<uint8_t>(1u << (pos % 8));
        ASSERT_FALSE(IsAllZero(span)) << offset << " " << n << " " << pos;
        buf[offset + pos] = 0;
      }
    }
  }
}

TEST(IsAllZeroTest, OneMebibyteBuffers) {
  Bytes buf(1 << 20, 0);
  EXPECT_TRUE(IsAllZero(buf));
  for (size_t pos : {size_t{0}, size_t{127}, size_t{128}, size_t{4095}, buf.size() / 2,
                     buf.size() - 129, buf.size() - 2, buf.size() - 1}) {
    for (int bit = 0; bit < 8; ++bit) {
      buf[pos] = static_cast<uint8_t>(1u << bit);
      EXPECT_FALSE(IsAllZero(buf)) << pos << " bit " << bit;
    }
    buf[pos] = 0;
  }
  EXPECT_TRUE(IsAllZero(buf));
  EXPECT_TRUE(IsAllZero(ByteSpan(buf).subspan(3, buf.size() - 7)));
}

}  // namespace
}  // namespace bunker::chunk
