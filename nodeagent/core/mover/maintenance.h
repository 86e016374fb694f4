#pragma once

// Repository maintenance: check, forget, prune, stats.
//
// Prune never acts on partial knowledge: a failed listing, an index naming a
// pack the listing lacks, or a snapshot that cannot be read stops it before
// anything is deleted. The caller holds an exclusive lease for forget and
// prune; prune re-checks it before every delete batch.

#include <cstdint>
#include <string>
#include <vector>

#include "nodeagent/core/mover/progress.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"

namespace bunker::mover {

struct CheckOptions {
  bool read_data = false;          // read and verify every pack and blob
  double read_data_percent = 100;  // with read_data: sample this share of packs at random
  // With read_data and read_data_slices > 0: read only slice
  // read_data_slice (1-based) of read_data_slices. Slices split the packs by
  // their id, so slices 1..t together read every pack exactly once.
  uint32_t read_data_slice = 0;
  uint32_t read_data_slices = 0;
  Progress* progress = nullptr;
};

struct CheckProblem {
  std::string kind;    // "damaged", "missing", "unreferenced"
  std::string object;  // object name, e.g. data/3f/3f2a…
  std::string detail;
  std::vector<std::string> snapshots;  // affected: "<short id> <volume> <time>"
};

struct CheckReport {
  uint64_t snapshots = 0;
  uint64_t index_files = 0;
  uint64_t packs = 0;
  uint64_t blobs = 0;
  uint64_t packs_read = 0;
  uint64_t bytes_read = 0;
  std::vector<CheckProblem> problems;
  // True when nothing is damaged or missing (unreferenced objects are harmless).
  bool healthy() const;
};

Result<CheckReport> Check(repo::Repository* repo, const CheckOptions& options);

struct ForgetOptions {
  // Keep this many newest snapshots per volume (the policy). 0 removes them
  // all and is refused without volume_id.
  int keep_last = -1;
  // Instead of the policy: remove exactly these (an id or a unique prefix of
  // >= 6 hex digits; not "latest"); every one must resolve before anything
  // is removed. A damaged snapshot (one whose bytes fail their hash or the
  // key) may be named too, without volume_id: removing it is what lets prune
  // run again. One that is intact but not understood (a newer format) is
  // refused.
  std::vector<std::string> snapshots;
  std::string volume_id;  // only this volume ("" = every volume)
  bool dry_run = false;
};

struct ForgetReport {
  std::vector<repo::SnapshotRef> kept;
  std::vector<repo::SnapshotRef> removed;
  // Named snapshots that cannot be read (damaged): removed by id alone.
  std::vector<repo::ObjectId> removed_damaged;
};

Result<ForgetReport> Forget(repo::Repository* repo, repo::Lease* lease,
                            const ForgetOptions& options);

struct PruneOptions {
  double repack_unused_fraction = 0.5;  // repack packs with more garbage than this
  bool dry_run = false;
  Progress* progress = nullptr;
};

struct PruneReport {
  uint64_t packs_total = 0;
  uint64_t packs_deleted = 0;               // entirely unused
  uint64_t packs_repacked = 0;              // partly used, live blobs copied to new packs
  uint64_t packs_unreferenced_deleted = 0;  // in no index (interrupted backups)
  uint64_t packs_written = 0;
  uint64_t blobs_kept = 0;
  uint64_t blobs_removed = 0;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  uint64_t index_files_replaced = 0;
  uint64_t temporaries_removed = 0;  // half-written uploads of killed writers
};

Result<PruneReport> Prune(repo::Repository* repo, repo::Lease* lease, const PruneOptions& options);

struct RepoStats {
  uint64_t snapshots = 0;
  uint64_t volumes = 0;
  uint64_t packs = 0;
  uint64_t blobs = 0;
  uint64_t stored_bytes = 0;      // sum of pack sizes
  uint64_t unique_raw_bytes = 0;  // plaintext of all distinct blobs
  uint64_t logical_bytes = 0;     // sum of every snapshot's volume size
};

Result<RepoStats> Stats(repo::Repository* repo);

// Visits every blob a snapshot references (meta and data, holes excluded).
Status VisitSnapshotBlobs(repo::Repository* repo, repo::BlobCodec* codec,
                          const repo::Snapshot& snapshot,
                          const std::function<Status(const repo::BlobId&, repo::BlobType)>& visit);

}  // namespace bunker::mover
