#include "nodeagent/core/crypto/hmac_pair.h"

#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define BUNKER_SHA_NI 1
#endif

namespace bunker::crypto {
namespace {

constexpr size_t kBlock = 64;

constexpr std::array<uint32_t, 8> kIv = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#if BUNKER_SHA_NI

alignas(16) constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// N independent SHA-256 compressions of `blocks` 64-byte blocks each, their
// rounds interleaved so that the SHA unit always has independent work. The
// state is kept as the instructions want it (ABEF / CDGH). The loops over
// rounds and streams are unrolled (this file is built with -O3, see
// CMakeLists.txt): otherwise the states go through memory and the streams no
// longer overlap.
template <int N>
__attribute__((target("sha,sse4.1,ssse3"))) void Compress(std::array<uint32_t, 8>* const* st,
                                                          const uint8_t* const* data,
                                                          size_t blocks) {
  const __m128i kShuffle = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abef[N], cdgh[N];
  for (int n = 0; n < N; ++n) {
    __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(st[n]->data()));
    __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(st[n]->data() + 4));
    dcba = _mm_shuffle_epi32(dcba, 0xB1);  // CDAB
    hgfe = _mm_shuffle_epi32(hgfe, 0x1B);  // EFGH
    abef[n] = _mm_alignr_epi8(dcba, hgfe, 8);
    cdgh[n] = _mm_blend_epi16(hgfe, dcba, 0xF0);
  }
  for (size_t b = 0; b < blocks; ++b) {
    __m128i save_abef[N], save_cdgh[N], w[N][4];
    for (int n = 0; n < N; ++n) {
      save_abef[n] = abef[n];
      save_cdgh[n] = cdgh[n];
    }
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {  // 4 rounds per group
      const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(&kK[4 * g]));
#pragma GCC unroll 4
      for (int n = 0; n < N; ++n) {
        __m128i m;
        if (g < 4) {
          m = _mm_shuffle_epi8(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(data[n] + kBlock * b + 16 * g)),
              kShuffle);
        } else {
          // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], four at a time.
          __m128i x = _mm_sha256msg1_epu32(w[n][g & 3], w[n][(g + 1) & 3]);
          x = _mm_add_epi32(x, _mm_alignr_epi8(w[n][(g + 3) & 3], w[n][(g + 2) & 3], 4));
          m = _mm_sha256msg2_epu32(x, w[n][(g + 3) & 3]);
        }
        w[n][g & 3] = m;
        __m128i wk = _mm_add_epi32(m, k);
        cdgh[n] = _mm_sha256rnds2_epu32(cdgh[n], abef[n], wk);
        wk = _mm_shuffle_epi32(wk, 0x0E);
        abef[n] = _mm_sha256rnds2_epu32(abef[n], cdgh[n], wk);
      }
    }
    for (int n = 0; n < N; ++n) {
      abef[n] = _mm_add_epi32(abef[n], save_abef[n]);
      cdgh[n] = _mm_add_epi32(cdgh[n], save_cdgh[n]);
    }
  }
  for (int n = 0; n < N; ++n) {
    const __m128i feba = _mm_shuffle_epi32(abef[n], 0x1B);
    const __m128i dchg = _mm_shuffle_epi32(cdgh[n], 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(st[n]->data()), _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(st[n]->data() + 4), _mm_alignr_epi8(dchg, feba, 8));
  }
}

void Compress1(std::array<uint32_t, 8>* st, const uint8_t* data, size_t blocks) {
  std::array<uint32_t, 8>* states[1] = {st};
  const uint8_t* inputs[1] = {data};
  Compress<1>(states, inputs, blocks);
}

// The last one or two blocks of a message whose full blocks have been
// compressed: the `tail` after them, 0x80, zeros, and the bit length of all
// `total_bytes` hashed (the key block included), big-endian.
void Finish(std::array<uint32_t, 8>* st, ByteSpan tail, uint64_t total_bytes) {
  uint8_t last[2 * kBlock] = {};
  if (!tail.empty()) std::memcpy(last, tail.data(), tail.size());
  last[tail.size()] = 0x80;
  const size_t len = tail.size() + 1 + 8 <= kBlock ? kBlock : 2 * kBlock;
  const uint64_t bits = total_bytes * 8;
  for (int i = 0; i < 8; ++i) last[len - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  Compress1(st, last, len / kBlock);
}

Digest ToBytes(const std::array<uint32_t, 8>& st) {
  Digest d;
  for (int i = 0; i < 8; ++i) {
    d[4 * i] = static_cast<uint8_t>(st[i] >> 24);
    d[4 * i + 1] = static_cast<uint8_t>(st[i] >> 16);
    d[4 * i + 2] = static_cast<uint8_t>(st[i] >> 8);
    d[4 * i + 3] = static_cast<uint8_t>(st[i]);
  }
  return d;
}

// The outer hash: one block holding the inner digest.
Digest Outer(const std::array<uint32_t, 8>& outer, const std::array<uint32_t, 8>& inner) {
  std::array<uint32_t, 8> st = outer;
  const Digest in = ToBytes(inner);
  Finish(&st, in, kBlock + in.size());
  return ToBytes(st);
}

#endif  // BUNKER_SHA_NI

}  // namespace

bool HmacPair::CpuHasShaNi() {
#if BUNKER_SHA_NI
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool sse41 = (c & bit_SSE4_1) != 0 && (c & bit_SSSE3) != 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return sse41 && (b & bit_SHA) != 0;
#else
  return false;
#endif
}

HmacPair::HmacPair(ByteSpan key, bool accelerate)
    : accelerated_(accelerate && CpuHasShaNi()), key_(key.begin(), key.end()) {
#if BUNKER_SHA_NI
  if (!accelerated_) return;
  // RFC 2104: a key longer than a block is hashed first; then zero-padded.
  uint8_t k[kBlock] = {};
  if (key.size() > kBlock) {
    const Digest hashed = Sha256(key);
    std::memcpy(k, hashed.data(), hashed.size());
  } else if (!key.empty()) {
    std::memcpy(k, key.data(), key.size());
  }
  uint8_t pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
  inner_ = kIv;
  Compress1(&inner_, pad, 1);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
  outer_ = kIv;
  Compress1(&outer_, pad, 1);
#endif
}

void HmacPair::Compute(ByteSpan a, ByteSpan b, Digest* mac_a, Digest* mac_b) const {
#if BUNKER_SHA_NI
  if (accelerated_) {
    State sa = inner_, sb = inner_;
    const size_t both = std::min(a.size(), b.size()) / kBlock;
    State* states[2] = {&sa, &sb};
    const uint8_t* inputs[2] = {a.data(), b.data()};
    if (both > 0) Compress<2>(states, inputs, both);
    // What one message has beyond the other's full blocks, one at a time.
    const size_t full_a = a.size() / kBlock, full_b = b.size() / kBlock;
    if (full_a > both) Compress1(&sa, a.data() + both * kBlock, full_a - both);
    if (full_b > both) Compress1(&sb, b.data() + both * kBlock, full_b - both);
    Finish(&sa, a.subspan(full_a * kBlock), kBlock + a.size());
    Finish(&sb, b.subspan(full_b * kBlock), kBlock + b.size());
    *mac_a = Outer(outer_, sa);
    *mac_b = Outer(outer_, sb);
    return;
  }
#endif
  *mac_a = HmacSha256(key_, a);
  *mac_b = HmacSha256(key_, b);
}

Digest HmacPair::Compute(ByteSpan data) const {
#if BUNKER_SHA_NI
  if (accelerated_) {
    State st = inner_;
    const size_t full = data.size() / kBlock;
    if (full > 0) Compress1(&st, data.data(), full);
    Finish(&st, data.subspan(full * kBlock), kBlock + data.size());
    return Outer(outer_, st);
  }
#endif
  return HmacSha256(key_, data);
}

}  // namespace bunker::crypto
