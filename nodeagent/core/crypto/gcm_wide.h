#pragma once

// AES-256-GCM (NIST SP 800-38D) composed the way the standard defines it:
// counter mode for the data and GHASH for the tag,
//
//   J0 = nonce || 0^31 || 1,  C = CTR_K(inc32(J0), P),
//   tag = GHASH_H(A || C || lengths) XOR E_K(J0),  H = E_K(0^128),
//
// with libgcrypt's AES-256-CTR (VAES, 12.8 GB/s on this machine, against
// 7.4 GB/s for OpenSSL 3.0's 128-bit AES-NI CTR) and the wide GHASH of
// ghash_wide.h. OpenSSL 3.0's own GCM (Debian 12) stitches 128-bit AES-NI with
// 128-bit PCLMULQDQ and runs at ~4 GB/s; this runs at ~7.5 GB/s, which is
// about an eighth of a full backup's CPU time (every stored blob is sealed
// once and opened again by the self-check). No Debian library offers a wide
// GCM: libgcrypt 1.10's own GCM hashes 128 bits at a time (4.2 GB/s).
//
// Output is the standard's, byte for byte: crypto_test checks it against the
// published vectors and against OpenSSL's GCM for every length around the
// batch boundaries, in both directions.
//
// Only where GhashWide::Supported(); Aead and Gmac (crypto.h) use OpenSSL
// otherwise.
// One object per thread.

#include <array>
#include <cstdint>
#include <memory>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::crypto {

class GcmWide {
 public:
  // The largest plaintext GCM allows: 2^39 - 256 bits. Within it the 32-bit
  // block counter that starts at inc32(J0) never wraps, so a 128-bit counter
  // (libgcrypt's) produces exactly inc32's blocks.
  static constexpr uint64_t kMaxPlaintext = (uint64_t{1} << 36) - 32;

  // Requires GhashWide::Supported(). Aborts if libgcrypt cannot be started
  // or refuses the key (a broken library, not bad input).
  explicit GcmWide(const std::array<uint8_t, 32>& key);
  ~GcmWide();
  GcmWide(const GcmWide&) = delete;
  GcmWide& operator=(const GcmWide&) = delete;

  // Encrypts `plaintext` into `ct` (same size, no overlap) and writes the
  // 16-byte tag. InvalidArgument beyond kMaxPlaintext.
  Status Seal(const uint8_t nonce[12], ByteSpan plaintext, ByteSpan aad, uint8_t* ct,
              uint8_t tag[16]);

  // Verifies the tag over `aad` and `ct` first, then decrypts into `out`
  // (ct.size() bytes, no overlap). Corruption if the tag does not verify:
  // nothing is decrypted, `out` is untouched.
  Status Open(const uint8_t nonce[12], ByteSpan ct, const uint8_t tag[16], ByteSpan aad,
              uint8_t* out);

 private:
  // E_K(J0): sets the counter to J0 and takes one block of key stream, which
  // leaves the counter at inc32(J0) for the data.
  Status StartMessage(const uint8_t nonce[12], uint8_t ek_j0[16]);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bunker::crypto
