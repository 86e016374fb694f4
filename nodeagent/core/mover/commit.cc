#include "nodeagent/core/mover/commit.h"

#include <algorithm>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "nodeagent/core/repo/pack_writer.h"
#include "nodeagent/core/util/failpoint.h"

namespace bunker::mover {

using repo::BlobEntry;
using repo::ObjectId;
using repo::PackEntries;

namespace {

using IdSet = std::unordered_set<repo::Id, repo::IdHash>;

}  // namespace

Result<std::unique_ptr<BackupCommit>> BackupCommit::Begin(repo::Repository* repo,
                                                          repo::Lease* lease,
                                                          std::vector<PackEntries> packs,
                                                          const std::string& operation,
                                                          std::chrono::milliseconds max_wait) {
  RETURN_IF_ERROR(Failpoint("backup.before_commit"));
  std::unique_ptr<BackupCommit> c(new BackupCommit(repo, lease));
  c->packs_ = std::move(packs);
  // Nothing new stored: nothing to drop, no one to wait for.
  if (c->packs_.empty()) return c;
  if (lease != nullptr) {
    // The commit lease only orders commits, so that the later sees the
    // earlier; dropping a blob is safe without it (only a blob a committed
    // index lists is dropped, and an index is written after its own
    // backup's reading). So a commit that cannot get it goes on without.
    const repo::LeaseOptions options = repo::LeaseOptions::FromEnvironment();
    if (max_wait.count() <= 0) {
      // Twice a commit lease's ttl: long enough for one whose holder died
      // on another host to expire.
      max_wait = 2 * std::min<std::chrono::milliseconds>(options.ttl, std::chrono::seconds(60));
    }
    Result<std::unique_ptr<repo::Lease>> commit_lease =
        repo::Lease::AcquireCommit(repo, "commit of " + operation, options, max_wait);
    if (commit_lease.ok()) {
      c->commit_lease_ = std::move(*commit_lease);
    } else {
      spdlog::warn(
          "commit: {}; committing without it (chunks another backup stores at the same moment "
          "may be stored twice until a prune)",
          commit_lease.status().ToString());
    }
  }
  RETURN_IF_ERROR(c->Deduplicate());
  return c;
}

BackupCommit::~BackupCommit() {
  if (commit_lease_) commit_lease_->Release().IgnoreError();
}

Status BackupCommit::Deduplicate() {
  IdSet ours;
  for (const PackEntries& p : packs_) {
    for (const BlobEntry& e : p.blobs) ours.insert(e.id);
  }
  // What other backups committed since this one loaded the index.
  Result<std::vector<ObjectId>> listed = repo_->ListIndexFiles();
  if (!listed.ok()) {
    spdlog::warn("commit: {}; blobs another backup stored meanwhile may be stored twice",
                 listed.status().ToString());
    return Status::Ok();
  }
  const std::vector<ObjectId>& loaded = repo_->index_files();
  const std::unordered_set<ObjectId, repo::IdHash> known(loaded.begin(), loaded.end());
  std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
  IdSet theirs;
  for (const ObjectId& file : *listed) {
    if (known.contains(file)) continue;
    Result<std::vector<PackEntries>> entries = repo_->ReadIndexFile(file, codec.get());
    if (!entries.ok()) {
      spdlog::warn("commit: index file {} could not be read ({}); its blobs may be stored twice",
                   repo::ShortHex(file), entries.status().ToString());
      continue;
    }
    for (const PackEntries& p : *entries) {
      for (const BlobEntry& e : p.blobs) {
        if (ours.contains(e.id)) theirs.insert(e.id);
      }
    }
  }
  if (theirs.empty()) return Status::Ok();

  // Per pack: keep it, delete it (nothing of its own left) or rewrite it.
  CommitDedup d;
  std::vector<PackEntries> kept;
  std::vector<PackEntries> rewrite;  // the blobs to keep
  std::vector<ObjectId> replaced;
  for (const PackEntries& p : packs_) {
    PackEntries live{p.pack, {}};
    for (const BlobEntry& e : p.blobs) {
      if (!theirs.contains(e.id)) {
        live.blobs.push_back(e);
        continue;
      }
      ++d.blobs;
      d.raw_bytes += e.raw_length;
      if (e.type == repo::BlobType::kData) {
        ++d.data_blobs;
        d.data_bytes += e.raw_length;
      }
    }
    if (live.blobs.size() == p.blobs.size()) {
      kept.push_back(p);
      continue;
    }
    replaced.push_back(p.pack);
    // The writer knows what it uploaded; asking the location costs a round
    // trip per pack (a HEAD on S3) and, when it fails, the statistics.
    if (p.stored_size > 0) {
      d.bytes_removed += p.stored_size;
    } else if (Result<backend::ObjectInfo> info = repo_->backend()->Stat(repo::PackName(p.pack));
               info.ok()) {
      d.bytes_removed += info->size;
    }
    if (live.blobs.empty()) {
      ++d.packs_deleted;
    } else {
      ++d.packs_rewritten;
      rewrite.push_back(std::move(live));
    }
  }

  // The rewrite: each kept blob copied as stored, after it decodes. Small
  // packs and one uploader: these are the remainders of packs, and the
  // backup's own buffers are still held.
  if (!rewrite.empty()) {
    repo::PackWriter writer(repo_, repo::PackWriterOptions{4 << 20, 1, 1});
    auto copy = [&]() -> Status {
      for (const PackEntries& p : rewrite) {
        RETURN_IF_ERROR(writer.CopyBlobs(p.pack, p.blobs, codec.get(),
                                         [] { return Failpoint("backup.commit.rewrite"); }));
      }
      return Status::Ok();
    };
    Status st = copy();
    Result<std::vector<PackEntries>> written =
        st.ok() ? writer.Finish() : Result<std::vector<PackEntries>>(st);
    if (!written.ok()) {
      // Its own fresh blobs not reading back as written, or a pack of its
      // own gone, is damage: the backup fails rather than commit them.
      // Anything else (the location unreachable for a while) only costs the
      // space the deduplication would have saved.
      const Code code = written.status().code();
      if (code == Code::kCorruption || code == Code::kNotFound) {
        return written.Annotated("commit: rereading this backup's own packs");
      }
      spdlog::warn(
          "commit: could not rewrite packs without the {} blobs another backup stored "
          "meanwhile ({}); they stay stored twice until a prune",
          d.blobs, written.status().ToString());
      return Status::Ok();
    }
    d.bytes_written = writer.bytes_uploaded();
    for (PackEntries& p : *written) kept.push_back(std::move(p));
  }
  spdlog::info(
      "commit: {} blobs ({} bytes) were stored meanwhile by another backup; {} packs to "
      "delete, {} rewritten",
      d.blobs, d.raw_bytes, d.packs_deleted, d.packs_rewritten);
  packs_ = std::move(kept);
  replaced_ = std::move(replaced);
  dedup_ = d;
  return Status::Ok();
}

Status BackupCommit::CheckValid() const {
  // The backup's own lease is the fence. The commit lease lapsing (a stall
  // longer than its ttl) lets another commit overlap this one, which at
  // worst stores a chunk twice: not a reason to fail.
  if (lease_ != nullptr) RETURN_IF_ERROR(lease_->CheckValid());
  return Status::Ok();
}

void BackupCommit::AdjustStats(repo::SnapshotStats* s, bool with_meta) const {
  const uint64_t bytes = std::min(s->bytes_new, with_meta ? dedup_.raw_bytes : dedup_.data_bytes);
  const uint64_t blobs = std::min(s->blobs_new, with_meta ? dedup_.blobs : dedup_.data_blobs);
  s->bytes_new -= bytes;
  s->bytes_reused += bytes;
  s->blobs_new -= blobs;
  s->blobs_reused += blobs;
  s->bytes_stored =
      s->bytes_stored - std::min(s->bytes_stored, dedup_.bytes_removed) + dedup_.bytes_written;
}

void BackupCommit::Finish() {
  for (const ObjectId& pack : replaced_) {
    Status st = Failpoint("backup.commit.delete_pack");
    if (st.ok()) st = repo_->backend()->Delete(repo::PackName(pack));
    if (!st.ok()) {
      spdlog::warn(
          "commit: pack {} (its blobs are stored elsewhere) was not deleted: {}; prune "
          "removes it",
          repo::ShortHex(pack), st.ToString());
    }
  }
  replaced_.clear();
  if (commit_lease_) {
    commit_lease_->Release().IgnoreError();
    commit_lease_.reset();
  }
}

}  // namespace bunker::mover
