#pragma once

// Cryptographic primitives used by the repository, through OpenSSL 3 EVP
// (which picks SHA-NI / AES-NI / AVX at run time), except where a wider path
// is measurably faster: GHASH (ghash_wide.h) and AES-GCM (gcm_wide.h).
//
// Errors: OpenSSL failures become Status values (Corruption for a tag that does
// not verify, Internal for OpenSSL itself failing). Functions that return a
// plain value (Sha256, Hmac::Compute, HkdfSha256, ...) cannot fail with valid
// input short of memory exhaustion; if OpenSSL fails there, they abort.
//
// Thread-safety: free functions are thread-safe. Hmac and Aead objects hold a
// reusable OpenSSL context: one object per thread (they are cheap to make from
// a Key); their methods are not safe to call concurrently on one object.

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::crypto {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kNonceSize = 12;  // AES-GCM nonce, random per seal
inline constexpr size_t kTagSize = 16;    // AES-GCM tag
inline constexpr size_t kSealOverhead = kNonceSize + kTagSize;

using Key = std::array<uint8_t, kKeySize>;
using Digest = std::array<uint8_t, 32>;

// Fills `out` from the OpenSSL CSPRNG. Fails only if the RNG is not seeded.
Status RandomBytes(MutableByteSpan out);
Key RandomKey();  // aborts if the RNG fails: nothing safe can proceed without it

Digest Sha256(ByteSpan data);

// Incremental SHA-256 (for hashing a pack while it is written).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(ByteSpan data);
  Digest Finish();  // the object may be reused after Finish (starts over)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// HMAC-SHA256 with a fixed key; Compute may be called many times.
class Hmac {
 public:
  explicit Hmac(const Key& key);
  ~Hmac();
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;
  Digest Compute(ByteSpan data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot HMAC-SHA256 with a key of any length (for RFC 4231 vectors, HKDF).
Digest HmacSha256(ByteSpan key, ByteSpan data);

// AES-256-GCM. A sealed message is nonce(12) || ciphertext || tag(16); the
// nonce is fresh from the CSPRNG on every Seal. `aad` is authenticated, not
// stored: the reader must supply the same bytes. Where the CPU has AVX-512
// VPCLMULQDQ it runs as libgcrypt's AES-CTR with the wide GHASH (gcm_wide.h,
// about twice OpenSSL 3.0's speed) unless `accelerate` is false (tests compare
// the two); otherwise OpenSSL's GCM. Either way the bytes are the standard's.
class Aead {
 public:
  explicit Aead(const Key& key, bool accelerate = true);
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  // Appends the sealed message to *out (does not clear it); on failure *out
  // keeps its old size. `plaintext` and `aad` must not point into *out (it may
  // reallocate).
  Status Seal(ByteSpan plaintext, ByteSpan aad, Bytes* out);
  // Same, with a caller-chosen nonce (known-answer tests only).
  Status SealWithNonce(ByteSpan plaintext, ByteSpan aad, ByteSpan nonce, Bytes* out);
  // Replaces *out with the plaintext. Corruption if the message is shorter than
  // the overhead or the tag does not verify (wrong key, tampered data or aad);
  // *out is then empty (unauthenticated plaintext is never handed out).
  // `sealed` and `aad` must not point into *out.
  Status Open(ByteSpan sealed, ByteSpan aad, Bytes* out);
  // Into caller memory, without growing (and zero-filling) a vector: `out`
  // must be exactly plaintext.size() + kSealOverhead bytes for SealInto and
  // sealed.size() - kSealOverhead bytes for OpenInto (InvalidArgument
  // otherwise). OpenInto zeroes `out` when the tag does not verify.
  Status SealInto(ByteSpan plaintext, ByteSpan aad, MutableByteSpan out);
  Status OpenInto(ByteSpan sealed, ByteSpan aad, MutableByteSpan out);
  // Raw GCM with an explicit nonce and separate tag (for NIST vectors).
  // InvalidArgument unless the nonce is 12 bytes and the tag 16 bytes.
  Status OpenDetached(ByteSpan nonce, ByteSpan ciphertext, ByteSpan tag, ByteSpan aad, Bytes* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Most memory scrypt may use (OpenSSL's "maxmem_bytes"); parameters that need
// more (128 * r * (N + 2 + p) bytes) are refused. 1025 MiB is OpenSSL's own
// default: it admits N = 2^20 with r = 8 (and p <= 7), no more.
inline constexpr uint64_t kScryptMaxMemory = uint64_t{1025} << 20;

// GMAC: AES-256-GCM's authenticator over `data` as additional data, with a
// fixed all-zero nonce. Used as a keyed fingerprint (a secret-keyed
// polynomial hash over GF(2^128)): for someone who does not know the key, two
// different inputs collide with probability about len/16 / 2^128. Not a MAC
// for messages an attacker can see tags of (the nonce is fixed). About twice
// as fast as HMAC-SHA256 with PCLMULQDQ, and several times faster again with
// AVX-512 VPCLMULQDQ (gcm_wide.h), which it uses where the CPU has it unless
// `accelerate` is false (tests compare the two). Not thread-safe; one per
// thread.
using Fingerprint = std::array<uint8_t, 16>;
class Gmac {
 public:
  explicit Gmac(const Key& key, bool accelerate = true);
  ~Gmac();
  Gmac(const Gmac&) = delete;
  Gmac& operator=(const Gmac&) = delete;
  Fingerprint Compute(ByteSpan data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// scrypt (RFC 7914) via EVP_KDF. N must be a power of two > 1. Parameters come
// from untrusted key files, so every one is checked first: InvalidArgument for
// N not a power of two > 1, r or p zero, r * p >= 2^30, N >= 2^(16 r), or more
// than kScryptMaxMemory needed; Internal if OpenSSL still fails. The key is the
// first 32 bytes of the RFC's output (dkLen = 32).
Result<Key> DeriveKeyScrypt(std::string_view password, ByteSpan salt, uint64_t n, uint32_t r,
                            uint32_t p);

// HKDF-SHA256 (RFC 5869) expanding `ikm` into a 32-byte key for `info` (the
// first 32 bytes of OKM; an empty salt means HashLen zero bytes, as in the RFC).
Key HkdfSha256(ByteSpan ikm, ByteSpan salt, std::string_view info);

// Constant-time comparison of the contents (lengths are not secret: different
// lengths compare unequal at once).
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

}  // namespace bunker::crypto
