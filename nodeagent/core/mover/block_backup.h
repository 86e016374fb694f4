#pragma once

// Block-mode backup and restore of a volume (a block device or an image file)
// through the pipeline of DESIGN.md: an io_uring reader → worker threads that
// detect holes, compute ids, deduplicate, compress, seal and self-check →
// pack writer → parallel uploads; then the content list, the index file and
// the snapshot, in that order, each after checking the lease is still held.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "nodeagent/core/io/block_io.h"
#include "nodeagent/core/mover/progress.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/pack_writer.h"
#include "nodeagent/core/repo/repository.h"

namespace bunker::mover {

struct BlockBackupOptions {
  std::string volume_path;
  std::string volume_id;  // defaults to volume_path
  std::map<std::string, std::string> tags;
  bool full = false;                     // ignore the parent; check stored packs exist
  std::optional<repo::ObjectId> parent;  // explicit parent (else latest of volume_id)
  io::ReadOptions read;                  // chunk_size is taken from the repository
  // O_DIRECT: kAuto uses it for block devices (no page-cache pollution on the
  // node) and not for image files (whose pages are often cached already).
  enum class Direct { kAuto, kOn, kOff } direct = Direct::kAuto;
  int workers = 0;                   // 0: one per core
  bool verify_before_upload = true;  // decode every blob again before upload
  Progress* progress = nullptr;
};

struct BackupResult {
  repo::ObjectId snapshot_id{};
  repo::Snapshot snapshot;
  std::string io_engine;
};

// `pack_buffers`: from StartBlockBackupBuffers, started before the repository
// was opened; without it the backup makes its buffers itself.
Result<BackupResult> BackupBlockVolume(repo::Repository* repo, repo::Lease* lease,
                                       const BlockBackupOptions& options,
                                       repo::PackBufferMaker* pack_buffers = nullptr);

// Starts making the pack writer's buffers for a block backup (about 54 MiB,
// touched: tens of milliseconds of page faults) on a thread. Needs no
// repository: the command line starts it before the repository key is
// derived, which is otherwise a serial step before the first chunk.
std::unique_ptr<repo::PackBufferMaker> StartBlockBackupBuffers();

struct BlockRestoreOptions {
  std::string target;
  bool overwrite = false;
  // O_DIRECT for whole chunks where the target allows it (chunk sizes that
  // are multiples of 4 KiB): restored data skips the page cache.
  io::WriteOptions write{.direct = true};
  int workers = 0;  // 0: one per core, at least 2
  Progress* progress = nullptr;
};

struct RestoreResult {
  uint64_t bytes_written = 0;
  uint64_t bytes_hole = 0;
  uint64_t blobs_fetched = 0;
  std::string io_engine;
};

// Restores a block-mode snapshot to a file or block device, verifying every
// blob (MAC, length, id). The file is left sparse where the volume had holes.
Result<RestoreResult> RestoreBlockVolume(repo::Repository* repo, const repo::Snapshot& snapshot,
                                         const BlockRestoreOptions& options);

// The ids of the packs present in the location (for --full's store check:
// a reused blob whose pack is gone is stored again).
Status ListStoredPacks(repo::Repository* repo,
                       std::unordered_set<repo::ObjectId, repo::IdHash>* packs);

// Loads the content list of a block snapshot (chunk ids and fingerprints,
// holes as kHoleId).
Result<std::vector<repo::ChunkRef>> LoadBlockContent(repo::Repository* repo,
                                                     const repo::Snapshot& snapshot,
                                                     repo::BlobCodec* codec);

}  // namespace bunker::mover
