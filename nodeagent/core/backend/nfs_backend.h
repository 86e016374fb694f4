#pragma once

// NfsBackend: a repository on an NFSv3 share, reached with libnfs from user
// space (no kernel mount, no privileges beyond what the export grants).
//
// Location URL:
//   nfs://host[:port]/export/sub/dir?version=3[&option=value…]
// The repository is the directory named by the path. The backend mounts the
// deepest directory of that path the server lets it mount (the path itself
// when it exists and the server allows sub-directory mounts, else the export
// above it) and creates the rest with `create`. A port in the authority is the
// NFS port (libnfs's nfsport=). Query options:
//   version=3                  only NFSv3 is supported (the default)
//   connections=N              TCP connections to open (default 4, 1…64)
//   timeout=S                  seconds before an RPC times out (default 10)
//   nfsport=, mountport=, uid=, gid=, tcp-syncnt=, …
//                              passed to libnfs (see nfs_parse_url_* in
//                              nfsc/libnfs.h); autoreconnect= and dircache=
//                              are refused: reconnection and caching are ours.
//
// Objects are files under the repository directory, a name's slashes are
// directories (made on demand). Put writes a hidden temporary file
// (".tmp-<random>") in the target directory with pipelined WRITEs, COMMITs it
// and renames it over the name, so readers see no object or all of it, even if
// the writer or the server dies midway. List skips temporary files.
//
// Connections: requests are spread over several connections (the least busy
// one), each an NfsConnection with its own I/O thread. A connection that
// fails (server restarted, connection reset, RPC timeout) is torn down and
// mounted again by its next request; every operation here is idempotent (Put
// by construction: a fresh temporary name each attempt), so one that failed
// on a broken connection is retried, with backoff, for up to `retry_window`.
// After that it fails with Unavailable naming the URL and the cause.
//
// Thread-safety: every method may be called from many threads at once.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/backend/nfs_connection.h"

namespace bunker::backend {

struct NfsBackendOptions {
  int connections = 4;                            // URL connections= overrides
  std::chrono::milliseconds rpc_timeout{10'000};  // URL timeout= overrides
  // How long an operation keeps retrying connection failures before it
  // returns Unavailable.
  std::chrono::milliseconds retry_window{30'000};
  uint64_t io_size = 1 << 20;  // bytes per READ/WRITE call (capped by the server)
  int io_depth = 4;            // READ/WRITE calls in flight per operation
};

class NfsBackend final : public Backend {
 public:
  // Mounts the share (reporting an unreachable server, a refused export or a
  // missing repository directory now, not at the first Put). With `create`,
  // makes the repository directory and its parents; without it, NotFound when
  // it is missing.
  static Result<std::unique_ptr<Backend>> Open(std::string_view url, bool create,
                                               const NfsBackendOptions& options = {});

  ~NfsBackend() override;

  // "nfs://host[:port]/export/path" (the query is left out).
  std::string Describe() const override { return describe_; }
  Status Put(std::string_view name, ByteSpan data) override;
  Result<Bytes> Get(std::string_view name) override;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  // Reads straight into `out` (no allocation when its capacity suffices).
  Status GetRangeInto(std::string_view name, uint64_t offset, uint64_t length, Bytes* out) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  Status Delete(std::string_view name) override;
  Status List(std::string_view prefix,
              const std::function<Status(const ObjectInfo&)>& visit) override;
  // Deletes ".tmp-*" files (uploads of killed writers) older than the time.
  Result<uint64_t> RemoveStaleTemporaries(int64_t older_than_unix) override;

  // Total mounts over all connections (1 per connection used, +1 per
  // reconnection); for tests.
  uint64_t MountCount() const;

 private:
  NfsBackend(std::string describe, std::string root, NfsBackendOptions options)
      : describe_(std::move(describe)), root_(std::move(root)), options_(options) {}

  NfsConnection& Pick();
  // Runs `op` on a connection, again on Unavailable until retry_window ends.
  Status WithRetry(std::string_view what, std::string_view name,
                   const std::function<Status(NfsConnection&)>& op);
  Status Walk(const std::string& dir, const std::string& rel, std::string_view prefix,
              const std::function<Status(const ObjectInfo&)>& visit);
  std::string PathOf(std::string_view name) const;

  const std::string describe_;
  const std::string root_;  // repository directory within the mount: "" or "/sub/dir"
  const NfsBackendOptions options_;
  std::vector<std::unique_ptr<NfsConnection>> connections_;  // fixed after Open
  std::atomic<uint64_t> next_{0};                            // round-robin start
};

}  // namespace bunker::backend
