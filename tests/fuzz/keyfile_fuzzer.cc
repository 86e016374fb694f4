// DecodeKeyFile: a key file's JSON (FORMAT.md, "Keys"). Key files are plain
// JSON in the repository: anyone who can write to the location can craft one,
// and Repository::Open decodes every key file before it runs scrypt.
//
// Input: the JSON text.
//
// Properties: rejections are Corruption naming the object; an accepted key
// file's scrypt parameters are within the format's bounds (so scrypt's memory
// is at most 1 GiB), its salt 16–64 bytes.

#include "nodeagent/core/repo/decoders.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {

BUNKER_FUZZ_TARGET(keyfile) {
  Result<repo::KeyFile> r = repo::DecodeKeyFile(data, "keys/fuzz");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
    FUZZ_CHECK(r.status().message().find("keys/fuzz") != std::string::npos,
               "error does not name the key file: " + Describe(r.status()));
    return false;
  }
  const repo::KeyFile& k = *r;
  FUZZ_CHECK(k.version == 1 && k.kdf == "scrypt", "unknown key format accepted");
  FUZZ_CHECK(k.n >= 2 && k.n <= (uint64_t{1} << 20) && (k.n & (k.n - 1)) == 0,
             "scrypt n out of bounds: " + std::to_string(k.n));
  FUZZ_CHECK(k.r >= 1 && k.r <= 32 && k.p >= 1 && k.p <= 16, "scrypt r or p out of bounds");
  FUZZ_CHECK(k.n * k.r <= (uint64_t{1} << 23), "scrypt memory above 1 GiB");
  FUZZ_CHECK(k.salt.size() >= 16 && k.salt.size() <= 64, "salt size out of bounds");
  return true;
}

}  // namespace bunker::fuzz
