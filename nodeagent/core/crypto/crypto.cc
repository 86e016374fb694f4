#include "nodeagent/core/crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "nodeagent/core/crypto/gcm_wide.h"
#include "nodeagent/core/crypto/ghash_wide.h"

namespace bunker::crypto {
namespace {

// OpenSSL's update functions take int lengths; longer inputs go in pieces.
constexpr size_t kMaxPiece = size_t{1} << 30;

// A non-null pointer for empty inputs: some OpenSSL parameter paths treat a
// null data pointer as "absent" even when the length is zero.
constexpr uint8_t kEmpty[1] = {0};

const uint8_t* NonNull(ByteSpan s) { return s.empty() ? kEmpty : s.data(); }

// Takes the oldest queued OpenSSL error (and clears the queue, so a failure
// here never shows up as the cause of an unrelated later error).
std::string DrainOpenSslErrors() {
  unsigned long code = ERR_get_error();
  std::string text = "no OpenSSL error queued";
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    text = buf;
  }
  ERR_clear_error();
  return text;
}

Status OpenSslFailure(std::string_view what) {
  return Internal(std::string(what) + ": " + DrainOpenSslErrors());
}

// For operations whose signature has no room for an error: with valid inputs
// OpenSSL only fails here when memory or the library itself is broken.
[[noreturn]] void Fatal(std::string_view what) {
  std::string err = DrainOpenSslErrors();
  spdlog::critical("crypto: {} failed: {}", what, err);
  std::abort();
}

// Algorithms are fetched once per process (fetching takes locks and walks the
// provider store); fetched objects are immutable and shared by all threads.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) {
      Fatal("fetch SHA256");
    }
    return m;
  }();
  return md;
}

EVP_MAC* HmacMac() {
  static EVP_MAC* const mac = [] {
    EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (m == nullptr) {
      Fatal("fetch HMAC");
    }
    return m;
  }();
  return mac;
}

const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) {
      Fatal("fetch AES-256-GCM");
    }
    return c;
  }();
  return cipher;
}

EVP_KDF* FetchKdf(const char* name) {
  EVP_KDF* k = EVP_KDF_fetch(nullptr, name, nullptr);
  if (k == nullptr) {
    Fatal(std::string("fetch ") + name);
  }
  return k;
}

EVP_KDF* HkdfKdf() {
  static EVP_KDF* const kdf = FetchKdf("HKDF");
  return kdf;
}

// Keys an HMAC-SHA256 context.
bool InitHmac(EVP_MAC_CTX* ctx, ByteSpan key) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  return EVP_MAC_init(ctx, NonNull(key), key.size(), params) == 1;
}

// Feeds `in` to a cipher context in int-sized pieces; `out` null means AAD.
bool CipherUpdate(EVP_CIPHER_CTX* ctx, ByteSpan in, uint8_t* out) {
  size_t done = 0;
  while (done < in.size()) {
    const size_t piece = std::min(in.size() - done, kMaxPiece);
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out == nullptr ? nullptr : out + done, &outl, in.data() + done,
                         static_cast<int>(piece)) != 1) {
      return false;
    }
    if (out != nullptr && static_cast<size_t>(outl) != piece) {
      return false;  // GCM is a stream mode: output length equals input length
    }
    done += piece;
  }
  return true;
}

// Writes ciphertext (plaintext.size() bytes) to `ct` and the tag to `tag`.
Status GcmSeal(EVP_CIPHER_CTX* ctx, ByteSpan plaintext, ByteSpan aad, const uint8_t* nonce,
               uint8_t* ct, uint8_t* tag) {
  // The key schedule stays in the context; only the nonce is set per message.
  if (EVP_EncryptInit_ex2(ctx, nullptr, nullptr, nonce, nullptr) != 1) {
    return OpenSslFailure("aes-gcm seal: set nonce");
  }
  if (!CipherUpdate(ctx, aad, nullptr)) {
    return OpenSslFailure("aes-gcm seal: aad");
  }
  if (!CipherUpdate(ctx, plaintext, ct)) {
    return OpenSslFailure("aes-gcm seal: encrypt");
  }
  uint8_t final_block[16];
  int outl = 0;
  if (EVP_EncryptFinal_ex(ctx, final_block, &outl) != 1 || outl != 0) {
    return OpenSslFailure("aes-gcm seal: final");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    return OpenSslFailure("aes-gcm seal: get tag");
  }
  return Status::Ok();
}

// Decrypts `ct` into `out` (ct.size() bytes) and verifies `tag`. Corruption if
// the tag does not verify; `out` then holds unauthenticated bytes the caller
// must discard.
Status GcmOpen(EVP_CIPHER_CTX* ctx, const uint8_t* nonce, ByteSpan ct, const uint8_t* tag,
               ByteSpan aad, uint8_t* out) {
  if (EVP_DecryptInit_ex2(ctx, nullptr, nullptr, nonce, nullptr) != 1) {
    return OpenSslFailure("aes-gcm open: set nonce");
  }
  if (!CipherUpdate(ctx, aad, nullptr)) {
    return OpenSslFailure("aes-gcm open: aad");
  }
  if (!CipherUpdate(ctx, ct, out)) {
    return OpenSslFailure("aes-gcm open: decrypt");
  }
  // ctrl takes a non-const pointer but only reads the tag when setting it.
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize),
                          const_cast<uint8_t*>(tag)) != 1) {
    return OpenSslFailure("aes-gcm open: set tag");
  }
  uint8_t final_block[16];
  int outl = 0;
  if (EVP_DecryptFinal_ex(ctx, final_block, &outl) != 1) {
    ERR_clear_error();
    return Corruption(
        "aes-gcm: authentication failed (wrong key, or data, nonce, tag or aad altered)");
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------- random

Status RandomBytes(MutableByteSpan out) {
  size_t done = 0;
  while (done < out.size()) {
    const size_t piece = std::min(out.size() - done, kMaxPiece);
    if (RAND_bytes(out.data() + done, static_cast<int>(piece)) != 1) {
      return OpenSslFailure("RAND_bytes");
    }
    done += piece;
  }
  return Status::Ok();
}

Key RandomKey() {
  Key key;
  if (!RandomBytes(key).ok()) {
    Fatal("RAND_bytes for a key");
  }
  return key;
}

// ---------------------------------------------------------------- SHA-256

Digest Sha256(ByteSpan data) {
  Digest digest;
  unsigned int len = 0;
  if (EVP_Digest(NonNull(data), data.size(), digest.data(), &len, Sha256Md(), nullptr) != 1 ||
      len != digest.size()) {
    Fatal("SHA-256");
  }
  return digest;
}

struct Sha256Stream::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256Stream::Sha256Stream() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex2(impl_->ctx, Sha256Md(), nullptr) != 1) {
    Fatal("SHA-256 stream init");
  }
}

Sha256Stream::~Sha256Stream() = default;

void Sha256Stream::Update(ByteSpan data) {
  if (!data.empty() && EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) != 1) {
    Fatal("SHA-256 stream update");
  }
}

Digest Sha256Stream::Finish() {
  Digest digest;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, digest.data(), &len) != 1 || len != digest.size() ||
      EVP_DigestInit_ex2(impl_->ctx, Sha256Md(), nullptr) != 1) {
    Fatal("SHA-256 stream finish");
  }
  return digest;
}

// ---------------------------------------------------------------- HMAC

// The context is keyed once; each Compute re-initialises it with a null key,
// which restores the precomputed inner/outer pad state instead of hashing the
// key again.
struct Hmac::Impl {
  EVP_MAC_CTX* ctx = nullptr;
  ~Impl() { EVP_MAC_CTX_free(ctx); }
};

Hmac::Hmac(const Key& key) : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MAC_CTX_new(HmacMac());
  if (impl_->ctx == nullptr || !InitHmac(impl_->ctx, key)) {
    Fatal("HMAC-SHA256 key setup");
  }
}

Hmac::~Hmac() = default;

Digest Hmac::Compute(ByteSpan data) {
  Digest digest;
  size_t len = 0;
  if (EVP_MAC_init(impl_->ctx, nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(impl_->ctx, NonNull(data), data.size()) != 1 ||
      EVP_MAC_final(impl_->ctx, digest.data(), &len, digest.size()) != 1 || len != digest.size()) {
    Fatal("HMAC-SHA256");
  }
  return digest;
}

Digest HmacSha256(ByteSpan key, ByteSpan data) {
  Digest digest;
  size_t len = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(HmacMac());
  const bool ok = ctx != nullptr && InitHmac(ctx, key) &&
                  EVP_MAC_update(ctx, NonNull(data), data.size()) == 1 &&
                  EVP_MAC_final(ctx, digest.data(), &len, digest.size()) == 1 &&
                  len == digest.size();
  EVP_MAC_CTX_free(ctx);
  if (!ok) {
    Fatal("HMAC-SHA256 (one-shot)");
  }
  return digest;
}

// ---------------------------------------------------------------- AES-256-GCM

// With the wide GHASH (gcm_wide.h): one GcmWide. Otherwise two OpenSSL
// contexts, keyed once each: one encrypts, one decrypts. Each call only sets a
// nonce, so the AES key schedule and GHASH tables are built once.
struct Aead::Impl {
  std::unique_ptr<GcmWide> wide;
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  ~Impl() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }

  Status Seal(ByteSpan plaintext, ByteSpan aad, const uint8_t* nonce, uint8_t* ct, uint8_t* tag) {
    if (wide) return wide->Seal(nonce, plaintext, aad, ct, tag);
    return GcmSeal(enc, plaintext, aad, nonce, ct, tag);
  }
  // `out` holds unauthenticated bytes on failure (the OpenSSL path decrypts
  // while it authenticates): callers discard them.
  Status Open(const uint8_t* nonce, ByteSpan ct, const uint8_t* tag, ByteSpan aad, uint8_t* out) {
    if (wide) return wide->Open(nonce, ct, tag, aad, out);
    return GcmOpen(dec, nonce, ct, tag, aad, out);
  }
};

Aead::Aead(const Key& key, bool accelerate) : impl_(std::make_unique<Impl>()) {
  static const bool wide_ok = GhashWide::Supported();
  if (accelerate && wide_ok) {
    impl_->wide = std::make_unique<GcmWide>(key);
    return;
  }
  impl_->enc = EVP_CIPHER_CTX_new();
  impl_->dec = EVP_CIPHER_CTX_new();
  if (impl_->enc == nullptr || impl_->dec == nullptr ||
      EVP_EncryptInit_ex2(impl_->enc, Aes256Gcm(), key.data(), nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex2(impl_->dec, Aes256Gcm(), key.data(), nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_get_iv_length(impl_->enc) != static_cast<int>(kNonceSize)) {
    Fatal("AES-256-GCM key setup");
  }
}

Aead::~Aead() = default;

Status Aead::Seal(ByteSpan plaintext, ByteSpan aad, Bytes* out) {
  const size_t old_size = out->size();
  out->resize(old_size + kSealOverhead + plaintext.size());
  Status s = SealInto(plaintext, aad, MutableByteSpan(*out).subspan(old_size));
  if (!s.ok()) {
    out->resize(old_size);
  }
  return s;
}

Status Aead::SealInto(ByteSpan plaintext, ByteSpan aad, MutableByteSpan out) {
  if (out.size() != plaintext.size() + kSealOverhead) {
    return InvalidArgument("aes-gcm seal: output of " + std::to_string(out.size()) + " bytes for " +
                           std::to_string(plaintext.size()) + " bytes of plaintext");
  }
  uint8_t* nonce = out.data();
  RETURN_IF_ERROR(RandomBytes({nonce, kNonceSize}));
  uint8_t* ct = nonce + kNonceSize;
  return impl_->Seal(plaintext, aad, nonce, ct, ct + plaintext.size());
}

struct Gmac::Impl {
  // With wide GHASH: GCM with no plaintext, the data as additional data
  // (gcm_wide.h). Otherwise OpenSSL's GMAC.
  std::unique_ptr<GcmWide> wide;
  EVP_CIPHER_CTX* ctx = nullptr;
  ~Impl() { EVP_CIPHER_CTX_free(ctx); }
};

Gmac::Gmac(const Key& key, bool accelerate) : impl_(std::make_unique<Impl>()) {
  static const bool wide_ok = GhashWide::Supported();
  if (accelerate && wide_ok) {
    impl_->wide = std::make_unique<GcmWide>(key);
    return;
  }
  impl_->ctx = EVP_CIPHER_CTX_new();
  if (impl_->ctx == nullptr ||
      EVP_EncryptInit_ex2(impl_->ctx, Aes256Gcm(), key.data(), nullptr, nullptr) != 1) {
    std::fprintf(stderr, "bunker: OpenSSL AES-256-GCM (GMAC) initialisation failed\n");
    std::abort();
  }
}

Gmac::~Gmac() = default;

Fingerprint Gmac::Compute(ByteSpan data) {
  Fingerprint tag{};
  static constexpr uint8_t kZeroNonce[kNonceSize] = {};
  if (impl_->wide) {
    // Bounded sizes and a valid key: a failure is a broken library.
    if (!impl_->wide->Seal(kZeroNonce, {}, data, nullptr, tag.data()).ok()) std::abort();
    return tag;
  }
  int outl = 0;
  EVP_CIPHER_CTX* c = impl_->ctx;
  // Every step works on a valid context and bounded sizes; a failure here is
  // a broken library, not bad input.
  if (EVP_EncryptInit_ex2(c, nullptr, nullptr, kZeroNonce, nullptr) != 1) std::abort();
  size_t done = 0;
  while (done < data.size()) {
    int n = static_cast<int>(std::min<size_t>(data.size() - done, 1 << 30));
    if (EVP_EncryptUpdate(c, nullptr, &outl, data.data() + done, n) != 1) std::abort();
    done += static_cast<size_t>(n);
  }
  uint8_t none[16];
  if (EVP_EncryptFinal_ex(c, none, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()), tag.data()) != 1) {
    std::abort();
  }
  return tag;
}

Status Aead::SealWithNonce(ByteSpan plaintext, ByteSpan aad, ByteSpan nonce, Bytes* out) {
  if (nonce.size() != kNonceSize) {
    return InvalidArgument("aes-gcm: nonce must be " + std::to_string(kNonceSize) + " bytes, got " +
                           std::to_string(nonce.size()));
  }
  uint8_t nonce_copy[kNonceSize];  // `nonce` may not survive the resize below
  std::copy(nonce.begin(), nonce.end(), nonce_copy);
  const size_t old_size = out->size();
  out->resize(old_size + kSealOverhead + plaintext.size());
  uint8_t* dst = out->data() + old_size;
  std::copy(nonce_copy, nonce_copy + kNonceSize, dst);
  uint8_t* ct = dst + kNonceSize;
  Status s = impl_->Seal(plaintext, aad, dst, ct, ct + plaintext.size());
  if (!s.ok()) {
    out->resize(old_size);
  }
  return s;
}

Status Aead::Open(ByteSpan sealed, ByteSpan aad, Bytes* out) {
  if (sealed.size() < kSealOverhead) {
    out->clear();
    return Corruption("aes-gcm: sealed message of " + std::to_string(sealed.size()) +
                      " bytes is shorter than nonce and tag (" + std::to_string(kSealOverhead) +
                      ")");
  }
  const size_t ct_size = sealed.size() - kSealOverhead;
  out->resize(ct_size);
  Status s = impl_->Open(sealed.data(), sealed.subspan(kNonceSize, ct_size),
                         sealed.data() + kNonceSize + ct_size, aad, out->data());
  if (!s.ok()) {
    out->clear();
  }
  return s;
}

Status Aead::OpenInto(ByteSpan sealed, ByteSpan aad, MutableByteSpan out) {
  if (sealed.size() < kSealOverhead) {
    return Corruption("aes-gcm: sealed message of " + std::to_string(sealed.size()) +
                      " bytes is shorter than nonce and tag (" + std::to_string(kSealOverhead) +
                      ")");
  }
  const size_t ct_size = sealed.size() - kSealOverhead;
  if (out.size() != ct_size) {
    return InvalidArgument("aes-gcm open: output of " + std::to_string(out.size()) + " bytes for " +
                           std::to_string(ct_size) + " bytes of ciphertext");
  }
  Status s = impl_->Open(sealed.data(), sealed.subspan(kNonceSize, ct_size),
                         sealed.data() + kNonceSize + ct_size, aad, out.data());
  if (!s.ok()) {
    std::fill(out.begin(), out.end(), uint8_t{0});  // never hand out unauthenticated bytes
  }
  return s;
}

Status Aead::OpenDetached(ByteSpan nonce, ByteSpan ciphertext, ByteSpan tag, ByteSpan aad,
                          Bytes* out) {
  if (nonce.size() != kNonceSize || tag.size() != kTagSize) {
    out->clear();
    return InvalidArgument("aes-gcm: nonce must be 12 bytes and tag 16 bytes, got " +
                           std::to_string(nonce.size()) + " and " + std::to_string(tag.size()));
  }
  out->resize(ciphertext.size());
  Status s = impl_->Open(nonce.data(), ciphertext, tag.data(), aad, out->data());
  if (!s.ok()) {
    out->clear();
  }
  return s;
}

// ---------------------------------------------------------------- KDFs

Result<Key> DeriveKeyScrypt(std::string_view password, ByteSpan salt, uint64_t n, uint32_t r,
                            uint32_t p) {
  // The same limits OpenSSL enforces, checked first so that hostile or
  // mistaken parameters are reported as such rather than as Internal.
  if (n < 2 || (n & (n - 1)) != 0) {
    return InvalidArgument("scrypt: N must be a power of two > 1, got " + std::to_string(n));
  }
  if (r == 0 || p == 0) {
    return InvalidArgument("scrypt: r and p must be positive");
  }
  if (uint64_t{r} * p >= (uint64_t{1} << 30)) {
    return InvalidArgument("scrypt: r * p must be < 2^30");
  }
  if (16 * uint64_t{r} < 64 && n >= (uint64_t{1} << (16 * r))) {
    return InvalidArgument("scrypt: N must be < 2^(16 r)");
  }
  // Memory: V is 128 r (N + 2) bytes, B is 128 r p bytes.
  const uint64_t block = 128 * uint64_t{r};
  if (block > kScryptMaxMemory || n + 2 > kScryptMaxMemory / block ||
      p > (kScryptMaxMemory - block * (n + 2)) / block) {
    return InvalidArgument("scrypt: N=" + std::to_string(n) + " r=" + std::to_string(r) +
                           " p=" + std::to_string(p) + " needs more than " +
                           std::to_string(kScryptMaxMemory >> 20) + " MiB");
  }

  // libsodium's scrypt (the same RFC 7914 function, checked against its
  // vectors in the tests) with its SIMD Salsa20/8 core: ~35% less time than
  // OpenSSL's scalar one, paid by every command that opens a repository.
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) {
    return Internal("scrypt: libsodium failed to initialise");
  }
  Key key;
  if (crypto_pwhash_scryptsalsa208sha256_ll(NonNull(AsBytes(password)), password.size(),
                                            NonNull(salt), salt.size(), n, r, p, key.data(),
                                            key.size()) != 0) {
    return ErrnoStatus("scrypt: derivation with N=" + std::to_string(n) +
                           " r=" + std::to_string(r) + " p=" + std::to_string(p),
                       errno);
  }
  return key;
}

Key HkdfSha256(ByteSpan ikm, ByteSpan salt, std::string_view info) {
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  OSSL_PARAM* p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(NonNull(ikm)),
                                           ikm.size());
  if (!salt.empty()) {  // absent salt = HashLen zeros, the RFC's default
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()),
                                             salt.size());
  }
  if (!info.empty()) {
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                             info.size());
  }
  *p = OSSL_PARAM_construct_end();

  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(HkdfKdf());
  Key key;
  const bool ok = ctx != nullptr && EVP_KDF_derive(ctx, key.data(), key.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  if (!ok) {
    Fatal("HKDF-SHA256");
  }
  return key;
}

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace bunker::crypto
