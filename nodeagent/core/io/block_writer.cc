// BlockWriter: positional writes of a restored volume into a sparse regular
// file or a block device, with an io_uring engine and a pwrite thread-pool
// engine. Both bound the writes in flight to queue_depth; WriteAt blocks
// while the queue is full.

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nodeagent/core/io/block_io.h"
#include "nodeagent/core/io/engine.h"
#include "nodeagent/core/io/fault_injection.h"
#include "nodeagent/core/io/uring.h"
#include "nodeagent/core/io/volume_file.h"
#include "nodeagent/core/util/failpoint.h"
#include "nodeagent/core/util/log.h"

namespace bunker::io {

namespace {

using internal::ApplyFault;
using internal::FaultOp;
using internal::UniqueFd;
using internal::Uring;

constexpr uint32_t kMaxQueueDepth = 4096;
constexpr uint32_t kMaxPwriteThreads = 4;
// Largest single write(2); longer buffers go in several.
constexpr size_t kMaxWriteOp = size_t{1} << 30;
// Consecutive EAGAIN/EINTR results tolerated for one write before giving up.
constexpr int kMaxRetries = 1000;
// BLKZEROOUT works in 512-byte sectors.
constexpr uint64_t kSectorSize = 512;
// Buffer address, offset and length of an O_DIRECT write are multiples of
// this (the largest logical block size in use; 512-byte devices accept it).
constexpr uint64_t kDirectAlignment = 4096;

// Source of the zeros written when a block device cannot zero a range itself.
constexpr size_t kZerosSize = size_t{1} << 20;
alignas(4096) uint8_t g_zeros[kZerosSize];  // never written

// One queued write.
struct WriteOp {
  Bytes owned;                    // the caller's data, kept until the write completes
  Buffer pooled;                  // or the caller's pool buffer
  const uint8_t* data = nullptr;  // owned.data(), pooled.data() or g_zeros
  uint64_t offset = 0;
  size_t length = 0;
  size_t done = 0;
  int retries = 0;
};

enum class Step { kComplete, kResubmit, kFailed };

// Engine-independent part: argument checks, zeroing, result interpretation,
// first-error bookkeeping, Finish.
class WriterBase : public BlockWriter {
 public:
  WriterBase(std::string path, UniqueFd fd, uint64_t size, bool is_block_device, Engine engine,
             bool direct)
      : path_(std::move(path)),
        fd_(std::move(fd)),
        size_(size),
        is_block_device_(is_block_device),
        engine_(engine),
        direct_(direct) {}

  Status WriteAt(uint64_t offset, Bytes data) final {
    RETURN_IF_ERROR(CheckUsable());
    RETURN_IF_ERROR(CheckRange(offset, data.size(), "write"));
    RETURN_IF_ERROR(Failpoint("io.block_writer.write_at"));
    if (data.empty()) {
      return Status::Ok();
    }
    WriteOp op;
    op.offset = offset;
    op.length = data.size();
    op.owned = std::move(data);
    op.data = op.owned.data();  // a moved vector keeps its storage
    Queue(std::move(op));
    return FirstError();
  }

  Status WriteAt(uint64_t offset, Buffer data) final {
    RETURN_IF_ERROR(CheckUsable());
    RETURN_IF_ERROR(CheckRange(offset, data.size(), "write"));
    RETURN_IF_ERROR(Failpoint("io.block_writer.write_at"));
    if (data.size() == 0) {
      return Status::Ok();
    }
    WriteOp op;
    op.offset = offset;
    op.length = data.size();
    op.pooled = std::move(data);
    op.data = op.pooled.data();
    Queue(std::move(op));
    return FirstError();
  }

  Status Zero(uint64_t offset, uint64_t length) final {
    RETURN_IF_ERROR(CheckUsable());
    RETURN_IF_ERROR(CheckRange(offset, length, "zero"));
    if (length == 0 || !is_block_device_) {
      // A regular file is all holes since Open (created, or truncated).
      return Status::Ok();
    }
    if (offset % kSectorSize == 0 && length % kSectorSize == 0) {
      uint64_t range[2] = {offset, length};
      if (::ioctl(fd_.get(), BLKZEROOUT, range) == 0) {
        return FirstError();
      }
      int err = errno;
      if (err != EOPNOTSUPP && err != ENOTTY && err != EINVAL) {
        Status st = ErrnoStatus("BLKZEROOUT " + path_ + " at offset " + std::to_string(offset) +
                                    " length " + std::to_string(length),
                                err);
        Record(st);
        return st;
      }
    }
    for (uint64_t pos = offset; pos < offset + length; pos += kZerosSize) {
      WriteOp op;
      op.offset = pos;
      op.length = static_cast<size_t>(std::min<uint64_t>(kZerosSize, offset + length - pos));
      op.data = g_zeros;
      Queue(std::move(op));
    }
    return FirstError();
  }

  Status Finish() final {
    if (finished_) {
      return FailedPrecondition(path_ + ": block writer already finished");
    }
    finished_ = true;
    Record(Drain());
    Record(Failpoint("io.block_writer.finish"));
    if (FirstError().ok()) {
      int rc;
      do {
        rc = ::fdatasync(fd_.get());
      } while (rc != 0 && errno == EINTR);
      if (rc != 0) {
        Record(ErrnoStatus("fdatasync " + path_, errno));
      }
    }
    Record(fd_.Close("close " + path_));
    return FirstError();
  }

  Engine engine() const final { return engine_; }
  bool is_block_device() const final { return is_block_device_; }
  bool direct() const final { return direct_; }

 protected:
  // Queues `op`, first waiting while queue_depth writes are in flight.
  // Failures are recorded, not returned. Called on the caller's thread.
  virtual void Submit(WriteOp op) = 0;
  // Waits until every queued write has completed.
  virtual Status Drain() = 0;

  // Length of the next write of `op`, which starts at op.offset + op.done.
  static size_t NextLength(const WriteOp& op) { return std::min(op.length - op.done, kMaxWriteOp); }

  // Interprets the result of the write of `op` that started at op.done.
  // Thread-safe for distinct ops.
  Step OnResult(WriteOp& op, int64_t res) {
    const uint64_t at = op.offset + op.done;
    res = ApplyFault(FaultOp::kWrite, at, res);
    if (res < 0) {
      const int err = static_cast<int>(-res);
      if (err == EINVAL && direct_) {
        // The target accepted O_DIRECT at open but refuses this write (an
        // alignment rule stricter than ours): everything goes buffered now,
        // this write included.
        StopDirect();
        return Step::kResubmit;
      }
      if ((err == EAGAIN || err == EINTR) && ++op.retries <= kMaxRetries) {
        return Step::kResubmit;
      }
      Status st = ErrnoStatus("write " + path_ + " at offset " + std::to_string(at), err);
      if (st.code() == Code::kInvalidArgument || st.code() == Code::kNotFound) {
        st = IOError(st.message());
      }
      Record(std::move(st));
      return Step::kFailed;
    }
    if (res == 0) {
      Record(IOError("write " + path_ + " at offset " + std::to_string(at) + ": wrote nothing"));
      return Step::kFailed;
    }
    op.retries = 0;
    op.done += std::min(static_cast<size_t>(res), op.length - op.done);
    if (op.done < op.length && direct_ && op.done % kDirectAlignment != 0) {
      StopDirect();  // a short direct write left an unaligned remainder
    }
    return op.done < op.length ? Step::kResubmit : Step::kComplete;
  }

  // Keeps the first error. Thread-safe.
  void Record(Status st) {
    if (st.ok()) {
      return;
    }
    std::lock_guard lock(error_mu_);
    if (first_error_.ok()) {
      first_error_ = std::move(st);
    }
  }

  Status FirstError() {
    std::lock_guard lock(error_mu_);
    return first_error_;
  }

  const std::string path_;
  UniqueFd fd_;

 private:
  Status CheckUsable() {
    if (finished_) {
      return FailedPrecondition(path_ + ": block writer already finished");
    }
    return FirstError();
  }

  Status CheckRange(uint64_t offset, uint64_t length, std::string_view what) const {
    if (offset > size_ || length > size_ - offset) {
      return InvalidArgument(path_ + ": " + std::string(what) + " of " + std::to_string(length) +
                             " bytes at offset " + std::to_string(offset) +
                             " ends past the volume (" + std::to_string(size_) + " bytes)");
    }
    return Status::Ok();
  }

  // Submits `op`: directly if O_DIRECT is on and the write is aligned;
  // an unaligned write in direct mode (the short last chunk of a volume)
  // first drains the queue, then goes through the page cache alone.
  void Queue(WriteOp op) {
    if (!direct_ || Aligned(op)) {
      Submit(std::move(op));
      return;
    }
    Record(Drain());
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd_.get(), F_SETFL, flags & ~O_DIRECT) != 0) {
      Record(ErrnoStatus("fcntl F_SETFL " + path_, errno));
      return;
    }
    direct_ = false;
    Submit(std::move(op));
    Record(Drain());
    if (::fcntl(fd_.get(), F_SETFL, flags) == 0) {
      direct_ = true;
    }
  }

  static bool Aligned(const WriteOp& op) {
    return op.offset % kDirectAlignment == 0 && op.length % kDirectAlignment == 0 &&
           reinterpret_cast<uintptr_t>(op.data) % kDirectAlignment == 0;
  }

  // Turns O_DIRECT off for good. Thread-safe (completions of the pwrite
  // engine run on its threads).
  void StopDirect() {
    std::lock_guard lock(direct_mu_);
    if (!direct_) {
      return;
    }
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags >= 0) {
      ::fcntl(fd_.get(), F_SETFL, flags & ~O_DIRECT);
    }
    direct_ = false;
    spdlog::info("{}: O_DIRECT writes refused, writing through the page cache", path_);
  }

  const uint64_t size_;
  const bool is_block_device_;
  const Engine engine_;
  std::mutex direct_mu_;
  std::atomic<bool> direct_;  // O_DIRECT set on fd_; StopDirect under direct_mu_
  bool finished_ = false;
  std::mutex error_mu_;
  Status first_error_;  // guarded by error_mu_
};

// io_uring engine, driven from the caller's thread; slots hold the ops in
// flight. No IOSQE_ASYNC: buffered writes to one regular file are serialised
// by the kernel anyway (inode lock; io-wq hashes them per inode), so the flag
// changes nothing measurable there.
class UringBlockWriter final : public WriterBase {
 public:
  UringBlockWriter(std::string path, UniqueFd fd, uint64_t size, bool is_block_device, bool direct,
                   uint32_t queue_depth, std::unique_ptr<Uring> ring)
      : WriterBase(std::move(path), std::move(fd), size, is_block_device, Engine::kIoUring, direct),
        ring_(std::move(ring)),
        slots_(queue_depth) {
    free_.reserve(queue_depth);
    for (uint32_t i = queue_depth; i > 0; --i) {
      free_.push_back(i - 1);
    }
  }

  // Without Finish: waits for the writes in flight (the kernel reads their
  // buffers) but retries none of them.
  ~UringBlockWriter() override {
    draining_ = true;
    if (Status st = Drain(); !st.ok()) {
      spdlog::critical("{}: cannot wait for writes in flight: {}", path_, st.ToString());
      std::abort();
    }
  }

 protected:
  void Submit(WriteOp op) override {
    ProcessCompletions();
    while (free_.empty()) {
      if (Status st = ring_->SubmitAndWait(1); !st.ok()) {
        Record(std::move(st));
        return;
      }
      ProcessCompletions();
    }
    uint32_t index = free_.back();
    free_.pop_back();
    slots_[index] = std::move(op);
    ++in_flight_;
    Prep(index);
    Record(ring_->SubmitAndWait(0));
  }

  Status Drain() override {
    for (;;) {
      ProcessCompletions();
      if (in_flight_ == 0) {
        return Status::Ok();
      }
      RETURN_IF_ERROR(ring_->SubmitAndWait(1));
    }
  }

 private:
  void Prep(uint32_t index) {
    WriteOp& op = slots_[index];
    io_uring_sqe* sqe = ring_->GetSqe();
    io_uring_prep_write(sqe, fd_.get(), op.data + op.done, static_cast<unsigned>(NextLength(op)),
                        op.offset + op.done);
    io_uring_sqe_set_data64(sqe, index);
  }

  void ProcessCompletions() {
    unsigned resubmitted = 0;
    ring_->ForEachCompletion([&](const io_uring_cqe& cqe) {
      uint32_t index = static_cast<uint32_t>(cqe.user_data);
      Step step = draining_ ? Step::kComplete : OnResult(slots_[index], cqe.res);
      if (step == Step::kResubmit) {
        Prep(index);
        ++resubmitted;
        return;
      }
      slots_[index] = WriteOp();  // frees the caller's buffer
      free_.push_back(index);
      --in_flight_;
    });
    if (resubmitted > 0) {
      Record(ring_->SubmitAndWait(0));
    }
  }

  std::unique_ptr<Uring> ring_;
  std::vector<WriteOp> slots_;  // queue_depth; in flight unless listed in free_
  std::vector<uint32_t> free_;
  uint32_t in_flight_ = 0;
  bool draining_ = false;  // destructor: no resubmissions
};

// pwrite engine: worker threads take ops from a bounded queue.
class PwriteBlockWriter final : public WriterBase {
 public:
  PwriteBlockWriter(std::string path, UniqueFd fd, uint64_t size, bool is_block_device, bool direct,
                    uint32_t queue_depth)
      : WriterBase(std::move(path), std::move(fd), size, is_block_device, Engine::kPread, direct),
        queue_depth_(queue_depth) {
    uint32_t threads = std::clamp<uint32_t>(queue_depth, 1, kMaxPwriteThreads);
    workers_.reserve(threads);
    for (uint32_t i = 0; i < threads; ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }

  // Without Finish: drops writes not started, waits for those running.
  ~PwriteBlockWriter() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      in_flight_ -= static_cast<uint32_t>(queue_.size());
      queue_.clear();
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) {
      t.join();
    }
  }

 protected:
  void Submit(WriteOp op) override {
    {
      std::unique_lock lock(mu_);
      space_cv_.wait(lock, [this] { return in_flight_ < queue_depth_; });
      queue_.push_back(std::move(op));
      ++in_flight_;
    }
    work_cv_.notify_one();
  }

  Status Drain() override {
    std::unique_lock lock(mu_);
    space_cv_.wait(lock, [this] { return in_flight_ == 0; });
    return Status::Ok();
  }

 private:
  void Work() {
    for (;;) {
      WriteOp op;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) {
          return;
        }
        op = std::move(queue_.front());
        queue_.pop_front();
      }
      Step step;
      do {
        ssize_t n = ::pwrite(fd_.get(), op.data + op.done, NextLength(op), op.offset + op.done);
        step = OnResult(op, n >= 0 ? n : -errno);
      } while (step == Step::kResubmit);
      op = WriteOp();  // free the caller's buffer before making room
      {
        std::lock_guard lock(mu_);
        --in_flight_;
      }
      space_cv_.notify_all();
    }
  }

  const uint32_t queue_depth_;
  std::mutex mu_;
  std::condition_variable work_cv_;   // queue_ not empty, or stop_
  std::condition_variable space_cv_;  // in_flight_ went down
  std::deque<WriteOp> queue_;         // guarded by mu_
  uint32_t in_flight_ = 0;            // guarded by mu_; queued plus running
  bool stop_ = false;                 // guarded by mu_
  std::vector<std::thread> workers_;  // last: started after everything above
};

// Opens (or creates) the target. `created` tells the caller to unlink the
// file if a later step of Open fails.
Result<UniqueFd> OpenTarget(const std::string& path, bool overwrite, bool* created) {
  *created = false;
  // O_NONBLOCK: a FIFO swapped in after stat fails with ENXIO instead of
  // blocking; cleared once the type is known.
  const int base = O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  struct stat st {};
  int fd;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISBLK(st.st_mode)) {
      // O_EXCL on a block device: EBUSY while it is mounted or held open
      // exclusively, so a restore never writes under a live file system.
      fd = ::open(path.c_str(), base | O_EXCL);
      if (fd < 0 && errno == EBUSY) {
        return FailedPrecondition(path +
                                  ": block device is in use (mounted, or opened exclusively)");
      }
    } else if (S_ISREG(st.st_mode)) {
      if (!overwrite) {
        return AlreadyExists(path + ": exists and overwrite was not requested");
      }
      fd = ::open(path.c_str(), base | O_TRUNC);
    } else {
      return internal::NotAVolume(path, st.st_mode);
    }
  } else if (errno == ENOENT) {
    // 0600: a volume image holds whatever the application stored.
    fd = ::open(path.c_str(), base | O_CREAT | O_EXCL, 0600);
    *created = fd >= 0;
  } else {
    return ErrnoStatus("open " + path, errno);
  }
  if (fd < 0) {
    return ErrnoStatus("open " + path, errno);
  }
  return UniqueFd(fd);
}

}  // namespace

Result<std::unique_ptr<BlockWriter>> BlockWriter::Open(const std::string& path, uint64_t size,
                                                       bool overwrite,
                                                       const WriteOptions& options) {
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return InvalidArgument("block writer: queue depth " + std::to_string(options.queue_depth) +
                           " is not in [1, " + std::to_string(kMaxQueueDepth) + "]");
  }
  // Before touching the target, so a bad BUNKER_IO_ENGINE leaves no file.
  ASSIGN_OR_RETURN(
      internal::EngineChoice choice,
      internal::ChooseEngine(options.engine, options.queue_depth, internal::Direction::kWrite));
  bool created = false;
  ASSIGN_OR_RETURN(UniqueFd fd, OpenTarget(path, overwrite, &created));
  auto prepare = [&]() -> Result<bool> {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      return ErrnoStatus("fstat " + path, errno);
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
      return internal::NotAVolume(path, st.st_mode);
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
      return ErrnoStatus("fcntl F_SETFL " + path, errno);
    }
    if (S_ISBLK(st.st_mode)) {
      ASSIGN_OR_RETURN(uint64_t device_size, internal::BlockDeviceSize(fd.get(), path));
      if (device_size < size) {
        return InvalidArgument(path + ": block device of " + std::to_string(device_size) +
                               " bytes is smaller than the volume (" + std::to_string(size) +
                               " bytes)");
      }
      return true;
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("ftruncate " + path + " to " + std::to_string(size) + " bytes", errno);
    }
    return false;
  };
  Result<bool> is_block_device = prepare();
  if (!is_block_device.ok()) {
    fd.Reset();
    if (created) {
      ::unlink(path.c_str());
    }
    return is_block_device.status();
  }
  bool direct = false;
  if (options.direct) {
    // Refused (EINVAL) by file systems without direct I/O: then buffered.
    const int flags = ::fcntl(fd.get(), F_GETFL);
    direct = flags >= 0 && ::fcntl(fd.get(), F_SETFL, flags | O_DIRECT) == 0;
  }
  if (choice.engine == Engine::kIoUring) {
    return std::unique_ptr<BlockWriter>(
        new UringBlockWriter(path, std::move(fd), size, *is_block_device, direct,
                             options.queue_depth, std::move(choice.ring)));
  }
  return std::unique_ptr<BlockWriter>(new PwriteBlockWriter(
      path, std::move(fd), size, *is_block_device, direct, options.queue_depth));
}

}  // namespace bunker::io
