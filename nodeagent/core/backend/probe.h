#pragma once

// ProbeBackend: checks that a backup location works end to end before it is
// trusted with backups (`bunker-agent repo probe`). It writes a small probe
// object "probe/<random>", reads it back whole and by range and compares the
// bytes, checks its size with Stat, finds it by listing "probe/", deletes it
// and checks that it is gone. Works with any Backend.
//
// The first failing step is reported with what was being done, on which
// location, and the backend's own error (whose code is kept):
//   "probe of s3://b/repo at http://…: step 1/6 (write probe/3f2a…): s3 PUT
//    …: 403 InvalidAccessKeyId: …"
// After a failure past the write, the probe object is deleted (best effort).
// Thread-safety: uses only the Backend, which is thread-safe.

#include "nodeagent/core/backend/backend.h"

namespace bunker::backend {

Status ProbeBackend(Backend* backend);

}  // namespace bunker::backend
