#pragma once

// HMAC-SHA256 (RFC 2104) of two messages under one key, computed together.
//
// Why by hand: a SHA-256 round with the x86 SHA extensions (SHA-NI) depends
// on the round before it, and on CPUs whose SHA unit has more latency than
// throughput (AMD Zen among them) one stream leaves the unit idle between
// rounds. Two independent streams interleaved keep it busy: on the 2-core
// bench machine one core hashes 1 MiB chunks at 1.8 GB/s one at a time and
// 3.4 GB/s two at a time (tests/bench/micro). OpenSSL has no multi-buffer
// SHA-256 in its API (its multi-block code lives inside the AES-CBC-HMAC
// ciphers) and Debian 12 packages no isa-l_crypto. The output is plain
// HMAC-SHA256, checked in tests against OpenSSL and the RFC 4231 vectors.
// Without SHA-NI (or on another architecture) Compute uses OpenSSL for each
// message in turn.
//
// Thread-safety: Compute is const and may run on many threads at once.

#include <array>
#include <cstdint>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/util/bytes.h"

namespace bunker::crypto {

class HmacPair {
 public:
  // `accelerate` false forces the OpenSSL path (tests compare the two).
  explicit HmacPair(ByteSpan key, bool accelerate = true);

  // True when this CPU has the SHA extensions and SSE4.1.
  static bool CpuHasShaNi();
  // Whether Compute interleaves (CPU support and `accelerate`).
  bool accelerated() const { return accelerated_; }

  // HMAC-SHA256(key, a) and HMAC-SHA256(key, b); a and b may differ in length.
  void Compute(ByteSpan a, ByteSpan b, Digest* mac_a, Digest* mac_b) const;
  // One message alone (same result as Compute's).
  Digest Compute(ByteSpan data) const;

 private:
  using State = std::array<uint32_t, 8>;

  bool accelerated_ = false;
  Bytes key_;      // for the OpenSSL path
  State inner_{};  // SHA-256 state after the key ^ ipad block
  State outer_{};  // SHA-256 state after the key ^ opad block
};

}  // namespace bunker::crypto
