// File mode is being written; until then its entry points report so.
#include "nodeagent/core/mover/file_backup.h"

namespace bunker::mover {

Result<BackupResult> BackupFileTree(repo::Repository*, repo::Lease*, const FileBackupOptions&) {
  return Unimplemented("file mode is not built yet");
}

Result<RestoreResult> RestoreFileTree(repo::Repository*, const repo::Snapshot&,
                                      const FileRestoreOptions&) {
  return Unimplemented("file mode is not built yet");
}

Status VisitTreeBlobs(repo::Repository*, repo::BlobCodec*, const repo::BlobId&,
                      const std::function<Status(const repo::BlobId&, repo::BlobType)>&) {
  return Unimplemented("file mode is not built yet");
}

}  // namespace bunker::mover
