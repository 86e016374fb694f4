#pragma once

// Decoders (and their encoders) of the repository objects whose code lives in
// repository.cc: key files and the config (FORMAT.md, "config" and "Keys").
// Repository::Open and ListKeys are their callers; they are declared here so
// that tests, and the fuzz harnesses under tests/fuzz, can reach them
// directly. Decoders treat their input as hostile and never run scrypt.
//
// Thread-safety: free functions on values.

#include <cstdint>
#include <string>
#include <string_view>

#include "nodeagent/core/repo/repository.h"
#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::repo {

// A key file as stored (FORMAT.md, "Keys"): the scrypt parameters, bounded by
// DecodeKeyFile, and the sealed master key.
struct KeyFile {
  uint32_t version = 1;
  std::string kdf;
  uint64_t n = 0;
  uint32_t r = 0, p = 0;
  Bytes salt;
  Bytes data;
  std::string created, host, user, label;
};

// Parses a key file and bounds its KDF parameters before anyone runs scrypt.
// `what` names the object in errors.
Result<KeyFile> DecodeKeyFile(ByteSpan raw, std::string_view what);
// Wraps `mk` with `password` (runs scrypt with `kdf`).
Result<Bytes> EncodeKeyFile(const MasterKey& mk, const Id& repo_id, std::string_view password,
                            std::string_view label, const KdfParams& kdf);

// Parses the config object; FailedPrecondition for a newer format version.
Result<RepoConfig> DecodeConfig(ByteSpan raw);
Bytes EncodeConfig(const RepoConfig& c);

}  // namespace bunker::repo
