#pragma once

// File-mode backup and restore of a directory tree: content-defined chunks
// (FastCDC), directory trees as meta blobs, metadata (modes, owners, times,
// xattrs, symlinks, hard links, sparse files). Incremental runs take files
// unchanged since the parent (size, mtime, ctime, inode) from the parent's
// tree without reading them.

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "nodeagent/core/mover/block_backup.h"
#include "nodeagent/core/mover/progress.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"

namespace bunker::mover {

struct FileBackupOptions {
  std::string root;       // directory to back up
  std::string volume_id;  // defaults to root
  std::map<std::string, std::string> tags;
  bool full = false;                     // read every file, no parent
  std::optional<repo::ObjectId> parent;  // explicit parent (else latest of volume_id)
  int workers = 0;                       // 0: one per core
  bool verify_before_upload = true;
  Progress* progress = nullptr;
  // Format tuning, 0 for the defaults; tests lower them to exercise trees
  // split into pages and content lists moved out of file nodes.
  size_t tree_page_bytes = 0;     // JSON bytes per tree blob (default 4 MiB)
  size_t inline_content_max = 0;  // entries kept in a file node (default 8192)
  size_t content_per_blob = 0;    // entries per content-list blob (default 65536)
};

Result<BackupResult> BackupFileTree(repo::Repository* repo, repo::Lease* lease,
                                    const FileBackupOptions& options);

struct FileRestoreOptions {
  std::string target;          // directory to create (or fill, with overwrite)
  bool overwrite = false;      // allow a non-empty existing target; replace files
  bool restore_owner = true;   // chown to the recorded uid/gid (effective only as root)
  bool allow_special = false;  // device nodes and setuid/setgid bits (root only)
  int workers = 0;
  Progress* progress = nullptr;
};

Result<RestoreResult> RestoreFileTree(repo::Repository* repo, const repo::Snapshot& snapshot,
                                      const FileRestoreOptions& options);

// Visits every blob a file-mode snapshot references: each tree once (kMeta)
// and every file content blob (kData, possibly repeatedly). Stops at the first
// error from reading a tree or from `visit`.
Status VisitTreeBlobs(repo::Repository* repo, repo::BlobCodec* codec, const repo::BlobId& root,
                      const std::function<Status(const repo::BlobId&, repo::BlobType)>& visit);

}  // namespace bunker::mover
