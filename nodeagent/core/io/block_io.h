#pragma once

// Block-mode volume I/O: sequential reads of a file or block device in large
// aligned chunks with a deep queue, and positional writes for restore.
//
// The preferred engine is io_uring (liburing) with queue depth >= 16 and
// O_DIRECT where the file system allows it. Where io_uring is refused (the
// default seccomp profiles of container runtimes, kernels with
// io_uring_disabled) the engine falls back to a pool of threads doing pread /
// pwrite, and logs that once. The engine in use is reported by engine().
//
// Thread-safety: a reader or writer is used by one thread at a time.

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
  uint32_t queue_depth = 16;      // reads in flight
  bool direct = true;             // try O_DIRECT, fall back to buffered if refused
  Engine engine = Engine::kAuto;  // kAuto: io_uring, else pread pool
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
  // InvalidArgument for something that is neither a file nor a block device.
  static Result<std::unique_ptr<BlockReader>> Open(const std::string& path,
                                                   const ReadOptions& options, BufferPool* pool);

  // The next block in offset order, or nullopt at the end of the volume.
  virtual Result<std::optional<Block>> Next() = 0;

  virtual uint64_t size() const = 0;
  virtual Engine engine() const = 0;
  virtual bool direct() const = 0;  // O_DIRECT in use
};

struct WriteOptions {
  uint32_t queue_depth = 16;
  Engine engine = Engine::kAuto;
};

class BlockWriter {
 public:
  virtual ~BlockWriter() = default;

  // Opens `path` for restore of a volume of `size` bytes. A regular file is
  // created (or truncated, when `overwrite`) and sized with ftruncate, so
  // ranges never written stay holes. A block device must be at least `size`
  // bytes. AlreadyExists if a regular file exists and !overwrite.
  static Result<std::unique_ptr<BlockWriter>> Open(const std::string& path, uint64_t size,
                                                   bool overwrite, const WriteOptions& options);

  // Queues a write of data at offset; takes ownership of the buffer until the
  // write completes. Errors of earlier writes surface here or in Finish.
  virtual Status WriteAt(uint64_t offset, Bytes data) = 0;
  // Makes [offset, offset+length) read as zeros: nothing for a fresh regular
  // file (already a hole), hole punching for an overwritten file, BLKZEROOUT
  // (or written zeros) for a block device.
  virtual Status Zero(uint64_t offset, uint64_t length) = 0;
  // Waits for every queued write, fsyncs, closes. Must be called for success.
  virtual Status Finish() = 0;

  virtual Engine engine() const = 0;
  virtual bool is_block_device() const = 0;
};

}  // namespace bunker::io
