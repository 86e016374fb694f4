#pragma once

// Block-mode volume I/O: sequential reads of a file or block device in large
// aligned chunks with a deep queue, and positional writes for restore.
//
// The preferred engine is io_uring (liburing) with queue depth >= 16 and
// O_DIRECT where the file system allows it. Where io_uring is refused (the
// default seccomp profiles of container runtimes, kernels with
// io_uring_disabled) the engine falls back to a pool of threads doing pread /
// pwrite, and logs that once per process (one warning for reading, one for
// writing). The engine in use is reported by engine().
//
// Environment (read at every Open):
//   BUNKER_IO_ENGINE=auto|io_uring|pread   overrides the options' engine; an
//       unknown value makes Open fail with InvalidArgument. An explicit
//       io_uring that cannot be set up is an error, not a fallback.
//   BUNKER_IO_URING_SIMULATE_EPERM=1       io_uring setup fails with EPERM, as
//       under a container's default seccomp profile (to test the fallback).
//
// Thread-safety: a reader or writer is used by one thread at a time, and
// that thread must outlive the I/O it queued: the kernel cancels io_uring
// requests whose submitting thread exits (ECANCELED), so do not call WriteAt
// from short-lived worker threads and Finish from another. Blocks and their
// buffers may be handed to and released on other threads.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nodeagent/core/util/buffer_pool.h"
#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::io {

enum class Engine { kAuto, kIoUring, kPread };

// Parses "auto", "io_uring", "pread". Also consulted: env BUNKER_IO_ENGINE.
Result<Engine> ParseEngine(std::string_view name);
std::string_view EngineName(Engine e);

struct ReadOptions {
  uint32_t chunk_size = 1 << 20;  // bytes per Block; multiple of 4096
  // Reads in flight, 1..4096; the pread pool uses min(queue_depth, 4) threads.
  uint32_t queue_depth = 16;
  bool direct = true;             // try O_DIRECT, fall back to buffered if refused
  Engine engine = Engine::kAuto;  // kAuto: io_uring, else pread pool
  // io_uring only: at most this many kernel io-wq workers run buffered reads
  // (0: the kernel's default, up to 4 per CPU). The copies out of the page
  // cache are CPU work; more of them than the cores given to the backup only
  // take turns with its own workers.
  uint32_t kernel_workers = 0;
  // io_uring only: register the pool's memory with the ring once (fixed
  // buffers, its pages pinned for the reader's life) instead of pinning the
  // buffer on every read. Saves ~30% of the system time of O_DIRECT reads
  // (a 1 GiB image: 0.17-0.23 -> 0.14-0.15 s). An unprivileged process
  // whose RLIMIT_MEMLOCK is below the pool's size is refused; it then reads
  // as without.
  bool fixed_buffers = true;
};

struct Block {
  uint64_t offset = 0;  // byte offset in the volume
  Buffer data;          // data.size() bytes valid; the last block may be short
};

class BlockReader {
 public:
  virtual ~BlockReader() = default;

  // Opens a regular file or block device. The pool's buffers must be at least
  // options.chunk_size bytes and the pool must outlive the reader. The reader
  // holds at most queue_depth buffers at once; the caller releases a Block's
  // buffer when done with it, which lets the reader issue the next read.
  // NotFound for a missing path, PermissionDenied for an unreadable one,
  // InvalidArgument for something that is neither a file nor a block device
  // (directories, FIFOs and character devices are never opened) and for bad
  // options (chunk size, queue depth, pool buffers smaller than a chunk).
  // Next() waits for a free pool buffer only when no read is outstanding, so
  // a caller that holds every buffer of the pool itself deadlocks; holding
  // fewer than the pool's count (e.g. one block at a time) never does.
  static Result<std::unique_ptr<BlockReader>> Open(const std::string& path,
                                                   const ReadOptions& options, BufferPool* pool);

  // The next block in offset order, or nullopt at the end of the volume.
  // Every block is chunk_size bytes except possibly the last. A read error is
  // IOError naming the path and offset; it is returned after the blocks
  // before it, and by every later call.
  virtual Result<std::optional<Block>> Next() = 0;

  virtual uint64_t size() const = 0;
  virtual Engine engine() const = 0;
  // O_DIRECT in use: false when not asked for, or when the file system
  // refused it at open or at the first read (then reads are buffered).
  virtual bool direct() const = 0;
};

struct WriteOptions {
  // Writes in flight, 1..4096; the pwrite pool uses min(queue_depth, 4) threads.
  uint32_t queue_depth = 16;
  Engine engine = Engine::kAuto;
  // Write with O_DIRECT where the target allows it: writes whose buffer,
  // offset and length are 4 KiB-aligned go straight from the caller's buffer
  // to the device (no page-cache copy, no writeback later); any other write
  // waits for the writes in flight and goes through the page cache. A target
  // that refuses O_DIRECT (at open or at the first write) is written
  // buffered. Either way Finish's fdatasync makes the data durable.
  bool direct = false;
};

class BlockWriter {
 public:
  virtual ~BlockWriter() = default;

  // Opens `path` for restore of a volume of `size` bytes. A regular file is
  // created (or truncated, when `overwrite`) and sized with ftruncate, so
  // ranges never written stay holes. A block device must be at least `size`
  // bytes (InvalidArgument otherwise). AlreadyExists if a regular file exists
  // and !overwrite. A new file gets mode 0600. A block device is opened with
  // O_EXCL: FailedPrecondition while it is mounted or held exclusively.
  // Anything else (directory, FIFO, character device) is InvalidArgument.
  // If Open created the file and then fails, the file is removed.
  static Result<std::unique_ptr<BlockWriter>> Open(const std::string& path, uint64_t size,
                                                   bool overwrite, const WriteOptions& options);

  // Queues a write of data at offset; takes ownership of the buffer until the
  // write completes. Blocks while queue_depth writes are in flight. Errors of
  // earlier writes surface here or in Finish. Ranges passed to WriteAt and
  // Zero must not overlap (a restore writes each byte at most once), and
  // must lie within the volume (InvalidArgument otherwise).
  virtual Status WriteAt(uint64_t offset, Bytes data) = 0;
  // The same for a pool buffer (4 KiB-aligned: the form that can go
  // O_DIRECT); data.size() bytes are written.
  virtual Status WriteAt(uint64_t offset, Buffer data) = 0;
  // Makes [offset, offset+length) read as zeros: nothing for a regular file
  // (created, or truncated when overwriting, it is all holes since Open);
  // BLKZEROOUT for a block device, or written zeros where the device or the
  // alignment (512 bytes) does not allow it.
  virtual Status Zero(uint64_t offset, uint64_t length) = 0;
  // Waits for every queued write, fdatasyncs, closes; returns the first error
  // of the writer's life. Must be called for success; a second call is
  // FailedPrecondition. Destroying an unfinished writer waits for the writes
  // in flight, syncs nothing and leaves the target as it is.
  virtual Status Finish() = 0;

  virtual Engine engine() const = 0;
  virtual bool is_block_device() const = 0;
  // O_DIRECT in use for aligned writes (see WriteOptions::direct).
  virtual bool direct() const = 0;
};

}  // namespace bunker::io
