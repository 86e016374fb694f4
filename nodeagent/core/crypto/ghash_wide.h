#pragma once

// GHASH (the GCM polynomial hash, NIST SP 800-38D) over 512-bit registers:
// VPCLMULQDQ multiplies four blocks per instruction, and 32 blocks share one
// reduction (Horner's rule with precomputed powers H^1..H^32).
//
// GcmWide (gcm_wide.h) uses it for AES-256-GCM's tag, and through it Gmac
// (crypto.h) for block fingerprints (GCM with no plaintext).
// OpenSSL 3.0 (Debian 12) hashes with 128-bit PCLMULQDQ (8.6 GB/s on this
// machine); this is written by hand because no Debian library offers a wider
// one. Its output is checked against OpenSSL's GMAC (crypto_test).
//
// Only for CPUs with AVX-512 (F, VL, BW) and VPCLMULQDQ enabled by the OS:
// callers check Supported() and otherwise use OpenSSL.

#include <array>
#include <cstddef>
#include <cstdint>

#include "nodeagent/core/util/bytes.h"

namespace bunker::crypto {

class GhashWide {
 public:
  static constexpr size_t kBatch = 32;  // blocks per reduction (a multiple of 4, at most 32)

  // The CPU and the OS (saved ZMM state) allow the instructions used here.
  static bool Supported();

  // `h`: the hash key H = E_K(0^128) as GCM defines it (16 bytes, big-endian
  // bit order of the standard). Requires Supported().
  explicit GhashWide(const std::array<uint8_t, 16>& h);

  // GHASH_H(A || C || lengths) as GCM computes it: the blocks of `aad`, the
  // last zero-padded, then those of `ciphertext` likewise, then the length
  // block [bit length of aad]_64 || [bit length of ciphertext]_64. 16 bytes in
  // the standard's byte order.
  std::array<uint8_t, 16> Hash(ByteSpan aad, ByteSpan ciphertext) const;

 private:
  // H^kBatch .. H^1 in the order the main loop multiplies lanes by (four per
  // 512-bit register), in the byte-reflected form the code computes in.
  alignas(64) std::array<uint8_t, kBatch * 16> powers_{};
  alignas(16) std::array<uint8_t, 16> h1_{};  // H^1, byte-reflected
};

}  // namespace bunker::crypto
