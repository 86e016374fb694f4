#pragma once

// NfsConnection: one NFSv3-over-TCP session with one server export, driven by
// libnfs's asynchronous API on a dedicated I/O thread. It is the seam between
// the NFS backend and libnfs: nothing else in the code base touches an
// nfs_context.
//
// How it works: the I/O thread owns the libnfs context and is the only thread
// that calls into libnfs. It polls the context's socket (nfs_get_fd /
// nfs_which_events) together with an eventfd, calls nfs_service, and runs
// operations that callers enqueue. A public method builds an operation,
// enqueues it, and blocks the calling thread until the I/O thread reports its
// completion (a condition variable); many callers may wait at once, and their
// operations are all in flight on the one socket. Reads and writes of more
// than one server-sized block are pipelined: several READ/WRITE calls of at
// most io_size bytes (capped by nfs_get_readmax / nfs_get_writemax) are in
// flight per operation.
//
// Connection failures: libnfs's own auto-reconnect is off. The export is
// mounted lazily, by the first operation after start or after a failure. When
// the socket fails (server gone, connection reset), an RPC times out
// (rpc_timeout, via nfs_set_timeout), or a call outlives its timeout by a
// margin (a watchdog, in case libnfs never answers), the context is torn down:
// every operation in flight fails with Unavailable, and the next operation
// mounts again. Nothing is retried here; the caller (NfsBackend) retries
// idempotent operations.
//
// File handles (NfsFile) belong to the mount that opened them: after a
// reconnection an old handle is refused with Unavailable instead of being
// used, and the handle memory is released by the connection.
//
// Thread-safety: every public method may be called from any thread
// concurrently. Destroying the connection while calls are in flight fails
// them with Aborted; the caller must not destroy it while it still uses an
// NfsFile.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

struct nfsfh;

namespace bunker::backend {

// What to mount and how; the same for every connection of a backend.
struct NfsMountSpec {
  std::string server;       // host name or address, without port
  std::string export_path;  // the path given to MOUNT, e.g. "/srv/nfs/backups"
  // libnfs URL options applied to every context ("version=3&nfsport=2049…"),
  // without '?'. Parsed by libnfs itself (nfs_parse_url_dir).
  std::string libnfs_options;
  std::chrono::milliseconds rpc_timeout{10'000};  // per RPC; whole seconds (libnfs)
  // Sizes and depth of pipelined READ/WRITE calls.
  uint64_t io_size = 1 << 20;  // capped by the server's rtmax / wtmax
  int io_depth = 8;            // calls in flight per Read/Write operation
  // For messages: "nfs://host/export/path".
  std::string describe;
};

// Attributes of a file or directory (GETATTR, or READDIRPLUS for entries).
struct NfsAttr {
  uint64_t size = 0;
  int64_t mtime_unix = 0;
  bool is_dir = false;
  bool is_regular = false;
};

struct NfsDirEntry {
  std::string name;
  NfsAttr attr;
  bool attr_known = true;  // false when the server sent no attributes
};

// An open file on one connection. Copyable value; valid until Close() or until
// the connection is torn down (then operations on it fail with Unavailable).
struct NfsFile {
  ::nfsfh* fh = nullptr;
  uint64_t generation = 0;  // the mount it belongs to
};

class NfsConnection {
 public:
  // Starts the I/O thread; does not touch the network (the first operation
  // mounts). Internal on thread creation failure.
  static Result<std::unique_ptr<NfsConnection>> Start(NfsMountSpec spec);

  NfsConnection(const NfsConnection&) = delete;
  NfsConnection& operator=(const NfsConnection&) = delete;
  ~NfsConnection();

  // Mounts now if not mounted (what every operation does first). Errors:
  // Unavailable when the server cannot be reached, PermissionDenied or
  // NotFound when the server refuses the export.
  Status Mount();

  // Paths are absolute within the mounted export ("/repo/data/ab/x").
  // Errors follow NfsErrorStatus below.

  // CREATE (unchecked, truncating) with `mode`, opened for writing.
  Result<NfsFile> Create(const std::string& path, int mode);
  // LOOKUP and open for reading.
  Result<NfsFile> OpenForRead(const std::string& path);
  // Releases the handle (NFSv3 has no CLOSE on the wire). Idempotent for a
  // handle of an older mount.
  void Close(NfsFile file);
  Result<NfsAttr> Fstat(NfsFile file);
  // Pipelined WRITE (unstable) of all of `data` at `offset`; short writes are
  // continued. Use Fsync to COMMIT.
  Status Write(NfsFile file, uint64_t offset, ByteSpan data);
  // Pipelined READ into `out` from `offset`. Returns the bytes read, which is
  // less than out.size() only when the file ends first.
  Result<uint64_t> Read(NfsFile file, uint64_t offset, MutableByteSpan out);
  // COMMIT: the data written is on the server's stable storage.
  Status Fsync(NfsFile file);

  Result<NfsAttr> Stat(const std::string& path);
  Status Mkdir(const std::string& path, int mode);
  Status Unlink(const std::string& path);
  Status Rename(const std::string& from, const std::string& to);
  // Every entry of a directory except "." and "..", read in full (READDIRPLUS)
  // before returning, so a failure midway is an error, never a short list.
  Result<std::vector<NfsDirEntry>> ReadDir(const std::string& path);

  // Operations enqueued or running; for spreading load across connections.
  int load() const { return load_.load(std::memory_order_relaxed); }
  // Times the export was mounted (1 after the first mount); for tests.
  uint64_t mounts() const { return mounts_.load(std::memory_order_relaxed); }
  const NfsMountSpec& spec() const { return spec_; }

 private:
  class IoLoop;
  explicit NfsConnection(NfsMountSpec spec);

  // Runs `start` on the I/O thread once the export is mounted (at once, without
  // mounting, when `needs_mount` is false); `start` must arrange for `finish`
  // to be called exactly once (the I/O loop guarantees that the libnfs
  // callbacks it registers run, even on teardown). Blocks until then and
  // returns the status given to `finish`.
  using Finish = std::function<void(Status)>;
  Status Run(std::function<void(const Finish&)> start, bool needs_mount = true);

  const NfsMountSpec spec_;
  std::unique_ptr<IoLoop> loop_;
  std::atomic<int> load_{0};
  std::atomic<uint64_t> mounts_{0};
};

// Converts a libnfs result (-errno, and libnfs's message) into a Status:
// ENOENT → NotFound, EACCES/EPERM → PermissionDenied (naming the server and
// export), EEXIST → AlreadyExists, connection-level failures (EINTR: RPC timed
// out or cancelled, EFAULT: RPC/transport error, ECONNREFUSED, ECONNRESET,
// EPIPE, ENOTCONN, ETIMEDOUT, …) and transient ones (ESTALE: file replaced
// meanwhile, EAGAIN: NFS3ERR_JUKEBOX) → Unavailable, anything else → IOError.
// `what` names the operation and the path.
Status NfsErrorStatus(const NfsMountSpec& spec, std::string_view what, int err,
                      std::string_view message);

// True for connection-level failures: the connection is then torn down and the
// operation may be retried on a new one.
bool IsNfsConnectionError(int err);

}  // namespace bunker::backend
