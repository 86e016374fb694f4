#pragma once

// SecretBox: encryption at rest for secrets the appliance must keep (S3 keys,
// repository passwords, kubeconfig tokens). AES-256-GCM with a random nonce
// per seal (nodeagent/core/crypto); the key lives in a file of 32 random
// bytes, mode 0600, in the data directory, created on first use. The
// associated data binds a sealed value to the record it belongs to
// ("backup-location/7"), so a sealed blob copied onto another row does not open.
//
// Secrets and the key are never logged and never returned by the API.
// Thread-safety: Seal and Open may be called concurrently (each call uses its
// own cipher context).

#include <memory>
#include <string>
#include <string_view>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::auth {

class SecretBox {
 public:
  // Loads the key file at `path`, or creates it (0600, exclusive create) when
  // missing. PermissionDenied when an existing key file is readable or
  // writable by group or others; Corruption when it is not 32 bytes.
  static Result<std::unique_ptr<SecretBox>> OpenOrCreate(const std::string& path);

  // A box with a given key (tests).
  explicit SecretBox(const crypto::Key& key) : key_(key) {}

  Result<Bytes> Seal(std::string_view plaintext, std::string_view aad) const;
  // Corruption when the tag does not verify (other key, other aad, tampering).
  Result<std::string> Open(ByteSpan sealed, std::string_view aad) const;

 private:
  const crypto::Key key_;
};

}  // namespace bunker::auth
