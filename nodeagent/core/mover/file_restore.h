#pragma once

// File-mode restore: what RestoreFileTree (file_backup.h) held back for
// safety, for callers that report it.

#include <cstdint>

#include "nodeagent/core/mover/file_backup.h"

namespace bunker::mover {

// Entries a file restore did not reproduce because FileRestoreOptions::
// allow_special was off or the process is not root. FIFOs and sockets grant
// nothing and are always restored; setgid on a directory is always kept.
struct SpecialSkipped {
  uint64_t device_nodes = 0;  // character and block devices not created
  uint64_t setid_bits = 0;    // entries whose setuid/setgid bits were dropped
};

// RestoreFileTree that also fills `skipped` (when not null) on success.
Result<RestoreResult> RestoreFileTree(repo::Repository* repo, const repo::Snapshot& snapshot,
                                      const FileRestoreOptions& options, SpecialSkipped* skipped);

}  // namespace bunker::mover
