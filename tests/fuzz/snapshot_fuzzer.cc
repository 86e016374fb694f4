// DecodeSnapshotJson: a snapshot's JSON, the plaintext of a sealed snapshot
// object (FORMAT.md, "Snapshots").
//
// Input: the JSON text.
//
// Properties: rejections are Corruption; an accepted block-mode snapshot has
// enough content-list blobs for its size (computed without overflow); an
// accepted snapshot encodes and decodes again to the same value.

#include "nodeagent/core/repo/codec.h"
#include "nodeagent/core/repo/snapshot.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

bool SameStats(const repo::SnapshotStats& a, const repo::SnapshotStats& b) {
  return a.bytes_read == b.bytes_read && a.bytes_new == b.bytes_new &&
         a.bytes_reused == b.bytes_reused && a.bytes_hole == b.bytes_hole &&
         a.bytes_stored == b.bytes_stored && a.blobs_new == b.blobs_new &&
         a.blobs_reused == b.blobs_reused && a.files_new == b.files_new &&
         a.files_unchanged == b.files_unchanged && a.duration_seconds == b.duration_seconds;
}

bool Same(const repo::Snapshot& a, const repo::Snapshot& b) {
  return a.version == b.version && a.volume_id == b.volume_id && a.mode == b.mode &&
         a.time == b.time && a.host == b.host && a.tags == b.tags && a.kind == b.kind &&
         a.parent == b.parent && a.tree == b.tree && a.size == b.size &&
         SameStats(a.stats, b.stats) &&
         (a.mode != "block" || (a.chunk_size == b.chunk_size && a.content == b.content));
}

}  // namespace

BUNKER_FUZZ_TARGET(snapshot) {
  Result<repo::Snapshot> r = repo::DecodeSnapshotJson(data, "fuzz snapshot");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
    return false;
  }
  const repo::Snapshot& s = *r;
  FUZZ_CHECK(s.mode == "block" || s.mode == "file", "unknown mode accepted");
  if (s.mode == "block") {
    FUZZ_CHECK(s.chunk_size > 0 && s.chunk_size <= repo::kMaxBlobSize, "chunk size out of range");
    // Chunks the volume needs, rounded up, without overflow.
    uint64_t chunks = s.size / s.chunk_size + (s.size % s.chunk_size != 0 ? 1 : 0);
    uint64_t capacity = uint64_t{s.content.size()} * repo::kContentIdsPerMeta;
    FUZZ_CHECK(chunks <= capacity, "block snapshot of " + std::to_string(s.size) +
                                       " bytes accepted with " + std::to_string(s.content.size()) +
                                       " content blobs");
  } else {
    FUZZ_CHECK(s.tree.has_value(), "file snapshot without a tree");
  }
  std::string again = repo::EncodeSnapshotJson(s);
  Result<repo::Snapshot> r2 = repo::DecodeSnapshotJson(AsBytes(again), "fuzz snapshot again");
  FUZZ_CHECK(r2.ok(), "re-encoded snapshot is rejected: " + Describe(r2.status()));
  FUZZ_CHECK(!r2.ok() || Same(s, *r2), "snapshot does not round-trip");
  return true;
}

}  // namespace bunker::fuzz
