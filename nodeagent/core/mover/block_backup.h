#pragma once

// Block-mode backup and restore of a volume (a block device or an image file)
// through the pipeline of DESIGN.md: an io_uring reader → worker threads that
// detect holes, compute ids, deduplicate, compress, seal and self-check →
// pack writer → parallel uploads; then the content list, the index file and
// the snapshot, in that order, each after checking the lease is still held.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "nodeagent/core/io/block_io.h"
#include "nodeagent/core/mover/progress.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/pack_writer.h"
#include "nodeagent/core/repo/repository.h"
#include "nodeagent/core/util/buffer_pool.h"

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

// The memory a block backup works in, made before the repository is opened:
// the command line starts it, then derives the key (scrypt, one core), and
// the other core faults in the read pool's pages and the first pack
// buffer's meanwhile (~43 MiB: tens of milliseconds that would otherwise be
// serial steps before and just after the first chunk), and the other pack
// buffers once the backup starts. Needs no repository.
class BlockBackupBuffers {
 public:
  // For `workers` (0: one per core) reading `read_queue_depth` chunks ahead
  // (io::ReadOptions::queue_depth); the read pool assumes the default block
  // size.
  explicit BlockBackupBuffers(int workers, uint32_t read_queue_depth = 16);
  ~BlockBackupBuffers();  // waits for the thread
  BlockBackupBuffers(const BlockBackupBuffers&) = delete;
  BlockBackupBuffers& operator=(const BlockBackupBuffers&) = delete;

  // The read pool, waiting until its pages are in, when it has the shape
  // the backup needs (`count` buffers of `buffer_size` bytes); nullptr
  // otherwise (the backup then makes its own).
  BufferPool* ReadPool(size_t buffer_size, size_t count);
  repo::PackBufferMaker* pack_buffers() { return &pack_; }

 private:
  std::unique_ptr<BufferPool> read_;  // declared before pack_: outlives its thread
  std::mutex mu_;
  std::condition_variable cv_;
  bool read_ready_ = false;  // guarded by mu_
  repo::PackBufferMaker pack_;
};

// Buffers in a block backup's read pool: the reads in flight, the work
// queue (two chunks per worker), the two chunks each worker holds, and two
// for the reader's hand-over.
size_t BlockReadPoolBuffers(uint32_t read_queue_depth, int workers);

// `buffers`: started before the repository was opened (BlockBackupBuffers);
// without it the backup makes its memory itself.
Result<BackupResult> BackupBlockVolume(repo::Repository* repo, repo::Lease* lease,
                                       const BlockBackupOptions& options,
                                       BlockBackupBuffers* buffers = nullptr);

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
