// BlockReader: sequential chunked reads of a file or block device, with an
// io_uring engine and a pread thread-pool engine sharing one slot ring.
//
// Chunk i lives in slot i % queue_depth from the moment its read is started
// until Next() hands it out, so at most queue_depth buffers are held and
// blocks leave in offset order whatever order the reads complete in.

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
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
#include "nodeagent/core/util/log.h"

namespace bunker::io {

namespace {

using internal::ApplyFault;
using internal::FaultOp;
using internal::OpenedVolume;
using internal::UniqueFd;
using internal::Uring;

// O_DIRECT alignment of offsets, lengths and buffers: the largest logical
// block size in use (4Kn disks); also fine for 512-byte devices.
constexpr uint32_t kDirectAlignment = 4096;
constexpr uint32_t kMaxQueueDepth = 4096;
constexpr uint32_t kMaxPreadThreads = 4;
// Consecutive EAGAIN/EINTR results tolerated for one read before giving up.
constexpr int kMaxRetries = 1000;

uint64_t AlignDown(uint64_t v, uint64_t a) { return v / a * a; }
uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// One chunk's read, from start until delivery.
struct ReadSlot {
  enum class State { kEmpty, kInFlight, kDone };
  State state = State::kEmpty;
  Buffer buf;
  uint64_t offset = 0;      // of the chunk in the volume
  uint32_t want = 0;        // bytes of the volume in this chunk
  uint32_t done = 0;        // bytes of the chunk read so far
  uint32_t read_start = 0;  // where in the chunk the current read starts
  bool direct = false;      // the current read was issued with O_DIRECT on
  int retries = 0;
  Status status;  // set when the read failed for good
};

// What to do after a read returned.
enum class Step { kComplete, kResubmit, kFailed };

// The engine-independent part: slot ring, in-order delivery, result
// interpretation (short reads, retries, O_DIRECT refusal, errors).
class ReaderBase : public BlockReader {
 public:
  ReaderBase(std::string path, OpenedVolume volume, const ReadOptions& options, BufferPool* pool,
             Engine engine)
      : path_(std::move(path)),
        fd_(std::move(volume.fd)),
        size_(volume.size),
        chunk_size_(options.chunk_size),
        pool_(pool),
        engine_(engine),
        direct_(volume.direct),
        num_chunks_((volume.size + options.chunk_size - 1) / options.chunk_size),
        slots_(options.queue_depth) {}

  Result<std::optional<Block>> Next() final {
    if (!failed_.ok()) {
      return failed_;
    }
    if (next_deliver_ == num_chunks_) {
      return std::optional<Block>();
    }
    if (Status st = Refill(/*may_block=*/true); !st.ok()) {
      return Fail(std::move(st));
    }
    if (Status st = WaitDone(next_deliver_); !st.ok()) {
      return Fail(std::move(st));
    }
    ReadSlot& s = SlotFor(next_deliver_);
    s.state = ReadSlot::State::kEmpty;
    if (!s.status.ok()) {
      s.buf.Release();
      return Fail(std::move(s.status));
    }
    Block block;
    block.offset = s.offset;
    block.data = std::move(s.buf);
    block.data.set_size(s.want);
    ++next_deliver_;
    // Keep the queue full while the caller works on this block; a failure
    // here is reported by the next call.
    if (Status st = Refill(/*may_block=*/false); !st.ok()) {
      failed_ = std::move(st);
    }
    return std::optional<Block>(std::move(block));
  }

  uint64_t size() const final { return size_; }
  Engine engine() const final { return engine_; }
  bool direct() const final { return direct_.load(std::memory_order_relaxed); }

 protected:
  // Starts the read of chunk `index`, whose slot is filled in. Called on the
  // Next() thread.
  virtual void StartRead(uint64_t index) = 0;
  // Makes the reads started since the last call go (io_uring: submit).
  virtual Status Flush() = 0;
  // Blocks until chunk `index`'s slot is kDone; after it returns no engine
  // thread touches that slot. Non-OK only when the engine itself fails.
  virtual Status WaitDone(uint64_t index) = 0;

  ReadSlot& SlotFor(uint64_t index) { return slots_[index % slots_.size()]; }

  // Sets read_start/direct of `s` for its next read and returns its length.
  // Thread-safe for distinct slots.
  uint32_t PrepareRead(ReadSlot& s) {
    s.direct = direct_.load(std::memory_order_acquire);
    if (s.direct) {
      // O_DIRECT needs aligned offsets and lengths; at the end of the volume
      // the kernel returns the short count.
      s.read_start = static_cast<uint32_t>(AlignDown(s.done, kDirectAlignment));
      return static_cast<uint32_t>(AlignUp(s.want, kDirectAlignment) - s.read_start);
    }
    s.read_start = s.done;
    return s.want - s.done;
  }

  // Interprets the result of the read of `s` started at s.read_start.
  // Thread-safe for distinct slots.
  Step OnResult(ReadSlot& s, int64_t res) {
    const uint64_t at = s.offset + s.read_start;
    res = ApplyFault(FaultOp::kRead, at, res);
    if (res < 0) {
      const int err = static_cast<int>(-res);
      if ((err == EAGAIN || err == EINTR) && ++s.retries <= kMaxRetries) {
        return Step::kResubmit;
      }
      if (err == EINVAL && s.direct) {
        if (Status st = SwitchToBuffered(at, err); !st.ok()) {
          s.status = std::move(st);
          return Step::kFailed;
        }
        return Step::kResubmit;
      }
      Status st = ErrnoStatus("read " + path_ + " at offset " + std::to_string(at), err);
      if (st.code() != Code::kIOError) {
        st = IOError(st.message());
      }
      s.status = std::move(st);
      return Step::kFailed;
    }
    if (res == 0) {
      s.status = IOError("read " + path_ + " at offset " + std::to_string(at) +
                         ": unexpected end of file (the volume was " + std::to_string(size_) +
                         " bytes when opened)");
      return Step::kFailed;
    }
    // A file that grew since Open can return more than asked for the last
    // chunk; the volume's size was fixed at Open.
    uint64_t end = std::min<uint64_t>(s.read_start + static_cast<uint64_t>(res), s.want);
    if (end <= s.done) {
      // An O_DIRECT re-read from the aligned offset came back no further
      // than before; bounded like EAGAIN.
      if (++s.retries > kMaxRetries) {
        s.status = IOError("read " + path_ + " at offset " + std::to_string(at) +
                           ": no progress after " + std::to_string(kMaxRetries) + " short reads");
        return Step::kFailed;
      }
      return Step::kResubmit;
    }
    s.retries = 0;
    s.done = static_cast<uint32_t>(end);
    return s.done >= s.want ? Step::kComplete : Step::kResubmit;
  }

  const std::string path_;
  const UniqueFd fd_;

 private:
  // Starts reads until queue_depth are outstanding or no buffer is free. Only
  // when nothing is outstanding (so nothing could be delivered instead) and
  // `may_block` does it wait for the pool.
  Status Refill(bool may_block) {
    bool started = false;
    while (next_submit_ < num_chunks_ && next_submit_ - next_deliver_ < slots_.size()) {
      Buffer buf = pool_->TryAcquire();
      if (!buf) {
        if (!may_block || next_submit_ != next_deliver_) {
          break;
        }
        buf = pool_->Acquire();
      }
      ReadSlot& s = SlotFor(next_submit_);
      s.buf = std::move(buf);
      s.offset = next_submit_ * chunk_size_;
      s.want = static_cast<uint32_t>(std::min<uint64_t>(chunk_size_, size_ - s.offset));
      s.done = 0;
      s.retries = 0;
      s.status = Status::Ok();
      StartRead(next_submit_);
      ++next_submit_;
      started = true;
    }
    return started ? Flush() : Status::Ok();
  }

  // The file system refused an O_DIRECT read: clear O_DIRECT on the file so
  // this and later reads go through the page cache. Thread-safe.
  Status SwitchToBuffered(uint64_t at, int err) {
    std::lock_guard lock(direct_mu_);
    if (!direct_.load(std::memory_order_relaxed)) {
      return Status::Ok();
    }
    RETURN_IF_ERROR(internal::ClearDirect(fd_.get(), path_));
    direct_.store(false, std::memory_order_release);
    spdlog::info("{}: O_DIRECT read at offset {} failed ({}); reading through the page cache",
                 path_, at, std::strerror(err));
    return Status::Ok();
  }

  Status Fail(Status st) {
    failed_ = std::move(st);
    return failed_;
  }

  const uint64_t size_;
  const uint64_t chunk_size_;
  BufferPool* const pool_;
  const Engine engine_;
  std::mutex direct_mu_;      // serialises SwitchToBuffered
  std::atomic<bool> direct_;  // O_DIRECT set on fd_
  const uint64_t num_chunks_;
  std::vector<ReadSlot> slots_;  // queue_depth slots; chunk i in slot i % size
  uint64_t next_submit_ = 0;     // next chunk to start reading
  uint64_t next_deliver_ = 0;    // next chunk Next() returns
  Status failed_;                // sticky: once set, Next() returns it
};

// io_uring engine, driven from the Next() thread. O_DIRECT reads are async in
// the block layer; buffered reads are punted to the kernel's io-wq workers.
class UringBlockReader final : public ReaderBase {
 public:
  UringBlockReader(std::string path, OpenedVolume volume, const ReadOptions& options,
                   BufferPool* pool, std::unique_ptr<Uring> ring)
      : ReaderBase(std::move(path), std::move(volume), options, pool, Engine::kIoUring),
        ring_(std::move(ring)) {
    if (options.kernel_workers > 0) (void)ring_->LimitKernelWorkers(options.kernel_workers);
    if (options.fixed_buffers) {
      fixed_ = ring_->RegisterBuffer(pool->arena(), pool->arena_bytes());
      if (!fixed_)
        spdlog::debug("{}: io_uring refused fixed buffers; reads pin pages each time", path_);
    }
  }

  // Waits for every read in flight: the kernel writes into pool buffers.
  ~UringBlockReader() override {
    draining_ = true;
    while (in_flight_ > 0) {
      ProcessCompletions();
      if (in_flight_ == 0) {
        break;
      }
      if (Status st = ring_->SubmitAndWait(1); !st.ok()) {
        // Returning the buffers now would let the kernel write into memory
        // someone else owns.
        spdlog::critical("{}: cannot wait for reads in flight: {}", path_, st.ToString());
        std::abort();
      }
    }
  }

 protected:
  void StartRead(uint64_t index) override {
    ReadSlot& s = SlotFor(index);
    s.state = ReadSlot::State::kInFlight;
    ++in_flight_;
    Prep(index, s);
  }

  Status Flush() override { return ring_->SubmitAndWait(0); }

  Status WaitDone(uint64_t index) override {
    ReadSlot& s = SlotFor(index);
    for (;;) {
      ProcessCompletions();
      if (s.state == ReadSlot::State::kDone) {
        // Resubmissions prepared while processing must not wait for the
        // next call.
        return ring_->pending() > 0 ? ring_->SubmitAndWait(0) : Status::Ok();
      }
      RETURN_IF_ERROR(ring_->SubmitAndWait(1));
    }
  }

 private:
  void Prep(uint64_t index, ReadSlot& s) {
    uint32_t len = PrepareRead(s);
    io_uring_sqe* sqe = ring_->GetSqe();
    if (fixed_) {
      io_uring_prep_read_fixed(sqe, fd_.get(), s.buf.data() + s.read_start, len,
                               s.offset + s.read_start, 0);
    } else {
      io_uring_prep_read(sqe, fd_.get(), s.buf.data() + s.read_start, len, s.offset + s.read_start);
    }
    io_uring_sqe_set_data64(sqe, index);
    if (!s.direct) {
      // A buffered read of cached data would otherwise be copied inline in
      // submit, one chunk after another on this thread; punted, the kernel's
      // workers copy in parallel for the same CPU time (2 GiB from the page
      // cache on 2 busy cores: median 2.9 GB/s inline, 4.5 GB/s punted).
      sqe->flags |= IOSQE_ASYNC;
    }
  }

  void ProcessCompletions() {
    ring_->ForEachCompletion([this](const io_uring_cqe& cqe) {
      uint64_t index = cqe.user_data;
      ReadSlot& s = SlotFor(index);
      Step step = draining_ ? Step::kComplete : OnResult(s, cqe.res);
      if (step == Step::kResubmit) {
        Prep(index, s);
        return;
      }
      s.state = ReadSlot::State::kDone;
      --in_flight_;
    });
  }

  std::unique_ptr<Uring> ring_;
  bool fixed_ = false;      // the pool is registered: reads need no page pinning
  uint32_t in_flight_ = 0;  // chunks started and not yet kDone
  bool draining_ = false;   // destructor: no resubmissions
};

// pread engine: worker threads take chunk indices from a queue and read
// them; the Next() thread waits for the head slot.
class PreadBlockReader final : public ReaderBase {
 public:
  PreadBlockReader(std::string path, OpenedVolume volume, const ReadOptions& options,
                   BufferPool* pool)
      : ReaderBase(std::move(path), std::move(volume), options, pool, Engine::kPread) {
    uint32_t threads = std::clamp<uint32_t>(options.queue_depth, 1, kMaxPreadThreads);
    workers_.reserve(threads);
    for (uint32_t i = 0; i < threads; ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }

  // Reads not yet started are dropped; those running finish first.
  ~PreadBlockReader() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) {
      t.join();
    }
  }

 protected:
  void StartRead(uint64_t index) override {
    {
      std::lock_guard lock(mu_);
      SlotFor(index).state = ReadSlot::State::kInFlight;
      queue_.push_back(index);
    }
    work_cv_.notify_one();
  }

  Status Flush() override { return Status::Ok(); }

  Status WaitDone(uint64_t index) override {
    ReadSlot& s = SlotFor(index);
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&s] { return s.state == ReadSlot::State::kDone; });
    return Status::Ok();
  }

 private:
  void Work() {
    for (;;) {
      uint64_t index;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) {
          return;
        }
        index = queue_.front();
        queue_.pop_front();
      }
      ReadSlot& s = SlotFor(index);
      Step step;
      do {
        uint32_t len = PrepareRead(s);
        ssize_t n = ::pread(fd_.get(), s.buf.data() + s.read_start, len, s.offset + s.read_start);
        step = OnResult(s, n >= 0 ? n : -errno);
      } while (step == Step::kResubmit);
      {
        std::lock_guard lock(mu_);
        s.state = ReadSlot::State::kDone;
      }
      done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_;  // queue_ not empty, or stop_
  std::condition_variable done_cv_;  // a slot became kDone
  std::deque<uint64_t> queue_;       // guarded by mu_; chunks to read
  bool stop_ = false;                // guarded by mu_
  // Slot states are guarded by mu_ while a read may be in flight.
  std::vector<std::thread> workers_;  // last: started after everything above
};

Status ValidateReadOptions(const ReadOptions& options, const BufferPool* pool) {
  if (pool == nullptr) {
    return InvalidArgument("block reader: no buffer pool");
  }
  if (options.chunk_size == 0 || options.chunk_size % kDirectAlignment != 0) {
    return InvalidArgument("block reader: chunk size " + std::to_string(options.chunk_size) +
                           " is not a positive multiple of " + std::to_string(kDirectAlignment));
  }
  if (pool->buffer_size() < options.chunk_size) {
    return InvalidArgument("block reader: pool buffers of " + std::to_string(pool->buffer_size()) +
                           " bytes are smaller than the chunk size " +
                           std::to_string(options.chunk_size));
  }
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return InvalidArgument("block reader: queue depth " + std::to_string(options.queue_depth) +
                           " is not in [1, " + std::to_string(kMaxQueueDepth) + "]");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<BlockReader>> BlockReader::Open(const std::string& path,
                                                       const ReadOptions& options,
                                                       BufferPool* pool) {
  RETURN_IF_ERROR(ValidateReadOptions(options, pool));
  ASSIGN_OR_RETURN(OpenedVolume volume, internal::OpenVolumeForRead(path, options.direct));
  ASSIGN_OR_RETURN(
      internal::EngineChoice choice,
      internal::ChooseEngine(options.engine, options.queue_depth, internal::Direction::kRead));
  if (choice.engine == Engine::kIoUring) {
    return std::unique_ptr<BlockReader>(
        new UringBlockReader(path, std::move(volume), options, pool, std::move(choice.ring)));
  }
  return std::unique_ptr<BlockReader>(new PreadBlockReader(path, std::move(volume), options, pool));
}

}  // namespace bunker::io
