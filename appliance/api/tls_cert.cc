#include "appliance/api/tls_cert.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace bunker::api {
namespace {

Status OpenSslError(std::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) {
    ERR_error_string_n(e, buf, sizeof(buf));
  }
  ERR_clear_error();
  return Internal(std::string(what) + ": " + buf);
}

// Writes a PEM file created with mode 0600 (exclusive create).
template <typename F>
Status WritePrivateFile(const std::string& path, F write) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return ErrnoStatus("create " + path, errno);
  }
  FILE* f = fdopen(fd, "w");
  if (f == nullptr) {
    int err = errno;
    close(fd);
    return ErrnoStatus("fdopen " + path, err);
  }
  bool ok = write(f) == 1;
  ok = (fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
  fclose(f);
  if (!ok) {
    unlink(path.c_str());
    return OpenSslError("write " + path);
  }
  return Status::Ok();
}

}  // namespace

Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path) {
  bool have_cert = std::filesystem::exists(cert_path);
  bool have_key = std::filesystem::exists(key_path);
  if (have_cert && have_key) {
    return Status::Ok();
  }
  if (have_cert != have_key) {
    return FailedPrecondition("only one of " + cert_path + " and " + key_path +
                              " exists; remove it to generate a new pair, or supply both");
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) {
    return OpenSslError("generate P-256 key");
  }
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!cert) {
    return OpenSslError("X509_new");
  }
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) {
    return OpenSslError("serial number");
  }
  serial[0] &= 0x7f;  // positive
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(serial, sizeof(serial), nullptr),
                                                 BN_free);
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (std::string(host) != "localhost" && host[0] != '\0') {
    san += ",DNS:" + std::string(host);
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  bool ok = bn && X509_set_version(cert.get(), 2) == 1 &&
            BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) != nullptr &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600) != nullptr &&
            X509_set_pubkey(cert.get(), key.get()) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>("bunkerd"), -1, -1,
                                       0) == 1 &&
            X509_set_issuer_name(cert.get(), name) == 1;
  if (!ok) {
    return OpenSslError("fill certificate");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                            std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature"},
                            std::pair{NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr || X509_add_ext(cert.get(), ext, -1) != 1) {
      X509_EXTENSION_free(ext);
      return OpenSslError("certificate extension");
    }
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return OpenSslError("sign certificate");
  }
  RETURN_IF_ERROR(WritePrivateFile(key_path, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  }));
  Status st = WritePrivateFile(cert_path, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
  if (!st.ok()) {
    unlink(key_path.c_str());
  }
  return st;
}

}  // namespace bunker::api
