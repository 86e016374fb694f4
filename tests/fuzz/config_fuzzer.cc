// DecodeConfig: the repository's config object, plain JSON (FORMAT.md,
// "config"), the first object Repository::Open reads.
//
// Input: the JSON text.
//
// Properties: rejections are Corruption, or FailedPrecondition for a newer
// format version; an accepted config's chunker parameters are within bounds
// and it encodes and decodes again to the same value.

#include "nodeagent/core/repo/decoders.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {

BUNKER_FUZZ_TARGET(config) {
  Result<repo::RepoConfig> r = repo::DecodeConfig(data);
  if (!r.ok()) {
    FUZZ_CHECK(
        r.status().code() == Code::kCorruption || r.status().code() == Code::kFailedPrecondition,
        Describe(r.status()));
    return false;
  }
  const repo::RepoConfig& c = *r;
  FUZZ_CHECK(c.version == repo::kFormatVersion, "unknown version accepted");
  FUZZ_CHECK(c.block_size >= 4096 && c.block_size <= repo::kMaxBlobSize && c.block_size % 4096 == 0,
             "block size out of bounds");
  FUZZ_CHECK(c.cdc.min_size >= 4096 && c.cdc.min_size <= c.cdc.avg_size &&
                 c.cdc.avg_size <= c.cdc.max_size && c.cdc.max_size <= repo::kMaxBlobSize,
             "chunker sizes out of bounds");
  Bytes again = repo::EncodeConfig(c);
  Result<repo::RepoConfig> r2 = repo::DecodeConfig(again);
  FUZZ_CHECK(r2.ok(), "re-encoded config is rejected: " + Describe(r2.status()));
  FUZZ_CHECK(!r2.ok() || (r2->id == c.id && r2->created == c.created &&
                          r2->block_size == c.block_size && r2->cdc.min_size == c.cdc.min_size &&
                          r2->cdc.avg_size == c.cdc.avg_size && r2->cdc.max_size == c.cdc.max_size),
             "config does not round-trip");
  return true;
}

}  // namespace bunker::fuzz
