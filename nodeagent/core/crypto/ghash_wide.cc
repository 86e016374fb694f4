#include "nodeagent/core/crypto/ghash_wide.h"

#include <cpuid.h>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*,
// which its own -Wuninitialized then reports (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

// Representation: each 16-byte block is byte-reversed on load, so the
// standard's first bit (x^0) is the register's bit 127. A carry-less product
// of two such values is the bit-reversed product shifted right by one; Reduce
// shifts it back and folds it modulo x^128 + x^7 + x^2 + x + 1 (Gueron and
// Kounavis, "Intel Carry-Less Multiplication Instruction and its Usage for
// Computing the GCM Mode", algorithm 4 and figure 8).

#define BUNKER_GHASH_TARGET \
  __attribute__((target("avx512f,avx512vl,avx512bw,vpclmulqdq,pclmul,avx2,ssse3,sse4.1")))

namespace bunker::crypto {
namespace {

BUNKER_GHASH_TARGET inline __m128i Reflect(__m128i x) {
  const __m128i reverse = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm_shuffle_epi8(x, reverse);
}

// Reduces the 256-bit carry-less product hi:lo of two reflected values.
BUNKER_GHASH_TARGET inline __m128i Reduce(__m128i lo, __m128i hi) {
  // Shift hi:lo left by one bit.
  const __m128i carry_lo = _mm_srli_epi64(lo, 63);
  const __m128i carry_hi = _mm_srli_epi64(hi, 63);
  lo = _mm_or_si128(_mm_slli_epi64(lo, 1), _mm_slli_si128(carry_lo, 8));
  hi = _mm_or_si128(_mm_or_si128(_mm_slli_epi64(hi, 1), _mm_slli_si128(carry_hi, 8)),
                    _mm_srli_si128(carry_lo, 8));
  // lo = [X1:X0]: D = X1 ^ (X0 << 63) ^ (X0 << 62) ^ (X0 << 57).
  const __m128i s = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(lo, 63), _mm_slli_epi64(lo, 62)),
                                  _mm_slli_epi64(lo, 57));
  const __m128i v = _mm_xor_si128(lo, _mm_slli_si128(s, 8));  // [D:X0]
  // [D:X0] ^ ([D:X0] >> 1) ^ ([D:X0] >> 2) ^ ([D:X0] >> 7), 128-bit shifts.
  const __m128i d = _mm_srli_si128(v, 8);  // [0:D]
  const __m128i e = _mm_or_si128(_mm_srli_epi64(v, 1), _mm_slli_epi64(d, 63));
  const __m128i f = _mm_or_si128(_mm_srli_epi64(v, 2), _mm_slli_epi64(d, 62));
  const __m128i g = _mm_or_si128(_mm_srli_epi64(v, 7), _mm_slli_epi64(d, 57));
  return _mm_xor_si128(hi, _mm_xor_si128(_mm_xor_si128(v, e), _mm_xor_si128(f, g)));
}

BUNKER_GHASH_TARGET inline __m128i Multiply(__m128i a, __m128i b) {
  const __m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
  const __m128i hi = _mm_clmulepi64_si128(a, b, 0x11);
  const __m128i mid =
      _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10));
  return Reduce(_mm_xor_si128(lo, _mm_slli_si128(mid, 8)),
                _mm_xor_si128(hi, _mm_srli_si128(mid, 8)));
}

// y' = (y ^ X) H for one 16-byte block X at p.
BUNKER_GHASH_TARGET inline __m128i Absorb(__m128i y, const uint8_t* p, __m128i h1) {
  const __m128i x = Reflect(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return Multiply(_mm_xor_si128(y, x), h1);
}

BUNKER_GHASH_TARGET inline __m128i Fold(__m512i x) {
  const __m256i half = _mm256_xor_si256(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
  return _mm_xor_si128(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
}

BUNKER_GHASH_TARGET void Powers(const uint8_t h[16], uint8_t out[GhashWide::kBatch * 16],
                                uint8_t h1[16]) {
  const __m128i hr = Reflect(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h1), hr);
  __m128i p = hr;  // H^1
  for (size_t i = 1; i <= GhashWide::kBatch; ++i) {
    // H^i goes to lane kBatch - i: the first block of a batch meets the
    // highest power, the last block H^1.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * (GhashWide::kBatch - i)), p);
    p = Multiply(p, hr);
  }
}

// Adds the unreduced products of four blocks and four powers into lo/mid/hi.
BUNKER_GHASH_TARGET inline void Accumulate(__m512i v, __m512i k, __m512i* lo, __m512i* mid,
                                           __m512i* hi) {
  *lo = _mm512_xor_si512(*lo, _mm512_clmulepi64_epi128(v, k, 0x00));
  *hi = _mm512_xor_si512(*hi, _mm512_clmulepi64_epi128(v, k, 0x11));
  *mid = _mm512_ternarylogic_epi64(*mid, _mm512_clmulepi64_epi128(v, k, 0x01),
                                   _mm512_clmulepi64_epi128(v, k, 0x10), 0x96);  // a ^ b ^ c
}

// y' = (y ^ X_1) H^n ^ X_2 H^(n-1) ^ ... ^ X_n H for the n = 4 * vectors
// blocks at p, with one reduction; `k` holds H^n .. H^1.
template <int kVectors>
BUNKER_GHASH_TARGET inline __m128i Batch(__m128i y, const uint8_t* p, const uint8_t* k) {
  const __m512i reverse =
      _mm512_broadcast_i32x4(_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  __m512i lo = _mm512_setzero_si512(), mid = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
  for (int i = 0; i < kVectors; ++i) {
    __m512i v = _mm512_shuffle_epi8(_mm512_loadu_si512(p + 64 * i), reverse);
    if (i == 0) v = _mm512_xor_si512(v, _mm512_zextsi128_si512(y));
    Accumulate(v, _mm512_load_si512(k + 64 * i), &lo, &mid, &hi);
  }
  const __m128i m = Fold(mid);
  return Reduce(_mm_xor_si128(Fold(lo), _mm_slli_si128(m, 8)),
                _mm_xor_si128(Fold(hi), _mm_srli_si128(m, 8)));
}

// Absorbs `size` bytes at `data` into y, the last block zero-padded (GCM pads
// the additional data and the ciphertext separately).
BUNKER_GHASH_TARGET __m128i AbsorbPadded(__m128i y, const uint8_t* powers, __m128i h1,
                                         const uint8_t* data, size_t size) {
  constexpr size_t kBatchBytes = GhashWide::kBatch * 16;
  size_t at = 0;
  for (; at + kBatchBytes <= size; at += kBatchBytes) {
    y = Batch<GhashWide::kBatch / 4>(y, data + at, powers);
  }
  // Then whole 64-byte groups (H^(4j) .. H^1 are the table's last lanes).
  const size_t groups = (size - at) / 64;
  switch (groups) {
#define BUNKER_GHASH_TAIL(n)                                   \
  case n:                                                      \
    y = Batch<n>(y, data + at, powers + kBatchBytes - 64 * n); \
    at += 64 * n;                                              \
    break;
    BUNKER_GHASH_TAIL(1)
    BUNKER_GHASH_TAIL(2)
    BUNKER_GHASH_TAIL(3)
    BUNKER_GHASH_TAIL(4)
    BUNKER_GHASH_TAIL(5)
    BUNKER_GHASH_TAIL(6)
    BUNKER_GHASH_TAIL(7)
#undef BUNKER_GHASH_TAIL
    default:
      break;
  }
  for (; at + 16 <= size; at += 16) y = Absorb(y, data + at, h1);
  if (at < size) {
    uint8_t last[16] = {};
    std::memcpy(last, data + at, size - at);
    y = Absorb(y, last, h1);
  }
  return y;
}

BUNKER_GHASH_TARGET void Ghash(const uint8_t* powers, const uint8_t* h1_bytes, ByteSpan aad,
                               ByteSpan ciphertext, uint8_t out[16]) {
  const __m128i h1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h1_bytes));
  __m128i y = AbsorbPadded(_mm_setzero_si128(), powers, h1, aad.data(), aad.size());
  y = AbsorbPadded(y, powers, h1, ciphertext.data(), ciphertext.size());
  // Length block: [bits of A]_64 || [bits of C]_64, big-endian.
  uint8_t lengths[16] = {};
  const uint64_t aad_bits = static_cast<uint64_t>(aad.size()) * 8;
  const uint64_t ct_bits = static_cast<uint64_t>(ciphertext.size()) * 8;
  for (int i = 0; i < 8; ++i) {
    lengths[7 - i] = static_cast<uint8_t>(aad_bits >> (8 * i));
    lengths[15 - i] = static_cast<uint8_t>(ct_bits >> (8 * i));
  }
  y = Absorb(y, lengths, h1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), Reflect(y));
}

}  // namespace

bool GhashWide::Supported() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool basics = (c & bit_PCLMUL) != 0 && (c & bit_SSSE3) != 0 && (c & bit_SSE4_1) != 0 &&
                      (c & bit_OSXSAVE) != 0;
  if (!basics) return false;
  // The OS saves SSE, AVX and all of the AVX-512 state (XCR0 bits 1, 2, 5-7).
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0xe6) != 0xe6) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512 = (b & bit_AVX512F) != 0 && (b & bit_AVX512VL) != 0 &&
                      (b & bit_AVX512BW) != 0 && (b & bit_AVX2) != 0;
  return avx512 && (c & bit_VPCLMULQDQ) != 0;
}

GhashWide::GhashWide(const std::array<uint8_t, 16>& h) {
  Powers(h.data(), powers_.data(), h1_.data());
}

std::array<uint8_t, 16> GhashWide::Hash(ByteSpan aad, ByteSpan ciphertext) const {
  std::array<uint8_t, 16> out{};
  Ghash(powers_.data(), h1_.data(), aad, ciphertext, out.data());
  return out;
}

}  // namespace bunker::crypto
