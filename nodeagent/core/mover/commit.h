#pragma once
// A backup's commit point, shared by block and file mode.
//
// Two backups that run at once cannot see each other's new chunks, so both
// may store a chunk they share. Their commits therefore happen one at a
// time, under the repository's commit lease (repo::Lease::AcquireCommit),
// and each first reads the index files committed since it loaded the index:
// a blob one of them lists is dropped from this backup's new packs. A pack
// left with no blob of its own is deleted; one left with some is rewritten
// with those alone (each copied as stored, after it decodes and matches its
// id). So the location holds a shared chunk once, and the later backup's
// statistics count it as reused (FORMAT.md, "Order of writes").
//
// Until its index is written no one refers to this backup's packs (prune,
// which deletes packs no index lists, is kept out by the backup's shared
// lease), so rewriting them is safe. The packs replaced are deleted only
// after the snapshot is written: a crash leaves garbage for prune, never a
// snapshot that refers to a missing pack.
//
// Thread-safety: one thread uses a BackupCommit.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"
#include "nodeagent/core/repo/snapshot.h"

namespace bunker::mover {

// What the commit found committed by others meanwhile, and what it did.
struct CommitDedup {
  uint64_t blobs = 0;            // blobs another backup committed first
  uint64_t raw_bytes = 0;        // their plaintext bytes
  uint64_t data_blobs = 0;       // of which chunks (data blobs)
  uint64_t data_bytes = 0;       // and their plaintext bytes
  uint64_t packs_deleted = 0;    // packs that held only such blobs
  uint64_t packs_rewritten = 0;  // packs that held some
  uint64_t bytes_removed = 0;    // stored bytes of those packs
  uint64_t bytes_written = 0;    // stored bytes of the packs written instead
};

class BackupCommit {
 public:
  // Fails at the failpoint backup.before_commit. `packs` are the backup's
  // new packs (PackWriter::Finish); with none there is nothing to do. With
  // `lease` (the backup's own), takes the commit lease, waiting up to
  // `max_wait` (0: twice the commit lease's ttl, two minutes) for another
  // backup's commit; a commit lease it cannot get
  // (timeout, errors) is a warning, and it deduplicates all the same, as it
  // does without `lease` (a caller that holds no lease at all). A blob of its
  // own that fails to decode when read back for a rewrite, or a pack of its
  // own gone, fails the commit (Corruption, NotFound); other errors while
  // deduplicating leave the packs as they are, with a warning.
  static Result<std::unique_ptr<BackupCommit>> Begin(repo::Repository* repo, repo::Lease* lease,
                                                     std::vector<repo::PackEntries> packs,
                                                     const std::string& operation,
                                                     std::chrono::milliseconds max_wait = {});
  ~BackupCommit();  // releases the commit lease
  BackupCommit(const BackupCommit&) = delete;
  BackupCommit& operator=(const BackupCommit&) = delete;

  // The packs the backup's index lists.
  const std::vector<repo::PackEntries>& packs() const { return packs_; }
  // OK while the backup's lease holds (the commit lease only orders
  // commits; see Begin).
  Status CheckValid() const;
  // Counts the deduplicated blobs as reused instead of new, and the stored
  // bytes as the location now holds them. `with_meta`: the statistics count
  // meta blobs too (file mode's trees), not only chunks (block mode).
  void AdjustStats(repo::SnapshotStats* stats, bool with_meta) const;
  // After the snapshot is written: deletes the packs replaced (a failure is
  // a warning: they are garbage that prune removes) and releases the commit
  // lease.
  void Finish();

 private:
  BackupCommit(repo::Repository* repo, repo::Lease* lease) : repo_(repo), lease_(lease) {}
  // Drops from packs_ what the index files committed meanwhile list.
  Status Deduplicate();

  repo::Repository* repo_;
  repo::Lease* lease_;
  std::unique_ptr<repo::Lease> commit_lease_;
  std::vector<repo::PackEntries> packs_;
  std::vector<repo::ObjectId> replaced_;  // deleted by Finish
  CommitDedup dedup_;
};

}  // namespace bunker::mover
