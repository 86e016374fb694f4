#include "nodeagent/core/crypto/gcm_wide.h"

#include <gcrypt.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "nodeagent/core/crypto/ghash_wide.h"

namespace bunker::crypto {
namespace {

// libgcrypt must be initialised once per process before any other call. No
// secure memory: keys live in ordinary memory throughout Bunker, as they do
// in OpenSSL's contexts. A process where someone else initialised it first
// is left as it is.
bool StartGcrypt() {
  static const bool ready = [] {
    if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P) != 0) return true;
    if (gcry_check_version(GCRYPT_VERSION) == nullptr) return false;  // older than the headers
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    return true;
  }();
  return ready;
}

[[noreturn]] void Fatal(const std::string& what) {
  std::fprintf(stderr, "bunker: libgcrypt AES-256-CTR: %s\n", what.c_str());
  std::abort();
}

Status GcryptFailure(const char* what, gcry_error_t err) {
  return Internal(std::string("aes-gcm: libgcrypt ") + what + ": " + gcry_strerror(err));
}

}  // namespace

struct GcmWide::Impl {
  gcry_cipher_hd_t ctr = nullptr;
  std::unique_ptr<GhashWide> ghash;
  ~Impl() { gcry_cipher_close(ctr); }  // wipes the key schedule
};

GcmWide::GcmWide(const std::array<uint8_t, 32>& key) : impl_(std::make_unique<Impl>()) {
  if (!StartGcrypt()) Fatal("the library is older than the one Bunker was built with");
  gcry_error_t err = gcry_cipher_open(&impl_->ctr, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_CTR, 0);
  if (err == 0) err = gcry_cipher_setkey(impl_->ctr, key.data(), key.size());
  // H = E_K(0^128): the key stream of the all-zero counter block.
  std::array<uint8_t, 16> h{};
  if (err == 0) err = gcry_cipher_setctr(impl_->ctr, h.data(), h.size());
  if (err == 0) err = gcry_cipher_encrypt(impl_->ctr, h.data(), h.size(), nullptr, 0);
  if (err != 0) Fatal(gcry_strerror(err));
  impl_->ghash = std::make_unique<GhashWide>(h);
  OPENSSL_cleanse(h.data(), h.size());
}

GcmWide::~GcmWide() = default;

Status GcmWide::StartMessage(const uint8_t nonce[12], uint8_t ek_j0[16]) {
  uint8_t j0[16] = {};
  std::copy(nonce, nonce + 12, j0);
  j0[15] = 1;
  gcry_error_t err = gcry_cipher_setctr(impl_->ctr, j0, sizeof j0);
  if (err != 0) return GcryptFailure("set counter", err);
  std::fill(ek_j0, ek_j0 + 16, uint8_t{0});
  err = gcry_cipher_encrypt(impl_->ctr, ek_j0, 16, nullptr, 0);  // in place: 0 ^ E_K(J0)
  if (err != 0) return GcryptFailure("encrypt J0", err);
  return Status::Ok();
}

Status GcmWide::Seal(const uint8_t nonce[12], ByteSpan plaintext, ByteSpan aad, uint8_t* ct,
                     uint8_t tag[16]) {
  if (plaintext.size() > kMaxPlaintext) {
    return InvalidArgument("aes-gcm seal: " + std::to_string(plaintext.size()) +
                           " bytes is more than GCM allows in one message");
  }
  uint8_t ek_j0[16];
  RETURN_IF_ERROR(StartMessage(nonce, ek_j0));
  if (!plaintext.empty()) {
    const gcry_error_t err =
        gcry_cipher_encrypt(impl_->ctr, ct, plaintext.size(), plaintext.data(), plaintext.size());
    if (err != 0) return GcryptFailure("encrypt", err);
  }
  const std::array<uint8_t, 16> s = impl_->ghash->Hash(aad, ByteSpan(ct, plaintext.size()));
  for (size_t i = 0; i < 16; ++i) tag[i] = s[i] ^ ek_j0[i];
  return Status::Ok();
}

Status GcmWide::Open(const uint8_t nonce[12], ByteSpan ct, const uint8_t tag[16], ByteSpan aad,
                     uint8_t* out) {
  if (ct.size() > kMaxPlaintext) {
    return Corruption("aes-gcm: " + std::to_string(ct.size()) +
                      " bytes of ciphertext is more than GCM allows in one message");
  }
  uint8_t ek_j0[16];
  RETURN_IF_ERROR(StartMessage(nonce, ek_j0));
  const std::array<uint8_t, 16> s = impl_->ghash->Hash(aad, ct);
  uint8_t expected[16];
  for (size_t i = 0; i < 16; ++i) expected[i] = s[i] ^ ek_j0[i];
  if (CRYPTO_memcmp(expected, tag, sizeof expected) != 0) {
    return Corruption(
        "aes-gcm: authentication failed (wrong key, or data, nonce, tag or aad altered)");
  }
  if (!ct.empty()) {
    const gcry_error_t err = gcry_cipher_decrypt(impl_->ctr, out, ct.size(), ct.data(), ct.size());
    if (err != 0) return GcryptFailure("decrypt", err);
  }
  return Status::Ok();
}

}  // namespace bunker::crypto
