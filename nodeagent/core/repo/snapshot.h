#pragma once

// Snapshot: one backup of one volume (FORMAT.md, "Snapshots"), and its JSON
// form. The JSON decoder checks every field's type and the format version.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nodeagent/core/repo/ids.h"
#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::repo {

struct SnapshotStats {
  uint64_t bytes_read = 0;    // volume bytes read and chunked
  uint64_t bytes_new = 0;     // plaintext bytes of blobs stored by this backup
  uint64_t bytes_reused = 0;  // plaintext bytes found already in the repository
  uint64_t bytes_hole = 0;    // all-zero bytes recorded as holes
  uint64_t bytes_stored = 0;  // bytes written to the location (sealed, compressed)
  uint64_t blobs_new = 0;
  uint64_t blobs_reused = 0;
  uint64_t files_new = 0;        // file mode: files read
  uint64_t files_unchanged = 0;  // file mode: files taken from the parent unread
  double duration_seconds = 0;
};

struct Snapshot {
  uint32_t version = 1;
  std::string volume_id;
  std::string mode;  // "block" or "file"
  std::string time;  // RFC 3339 UTC with milliseconds
  std::string host;
  std::map<std::string, std::string> tags;
  std::string kind;  // "full" or "incremental"
  std::optional<ObjectId> parent;
  // Logical bytes: the volume size (block mode), or the sum of the sizes of
  // the regular files in the tree (file mode).
  uint64_t size = 0;
  // block mode
  uint32_t chunk_size = 0;
  std::vector<BlobId> content;  // meta blobs of the content list
  // file mode
  std::optional<BlobId> tree;
  SnapshotStats stats;
};

std::string EncodeSnapshotJson(const Snapshot& s);
Result<Snapshot> DecodeSnapshotJson(ByteSpan json, std::string_view what);

// "2026-11-25T22:00:00.123Z" for now.
std::string NowRfc3339();

}  // namespace bunker::repo
