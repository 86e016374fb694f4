#pragma once

// PackWriter collects stored blobs from many worker threads into packs of
// about `target_size` bytes and uploads finished packs on a few uploader
// threads (bounded: at most `max_pending` finished packs wait, so memory stays
// flat). Each uploaded pack is added to the repository Index and remembered
// for the index file that commits the backup.
//
// Pack buffers are 4 KiB-aligned (so a file backend can write them with
// O_DIRECT) and recycled without new page faults. Exactly uploaders + 1 of
// them exist (one filling, the others queued or uploading), made and touched
// at construction or by a PackBufferMaker: sealing a pack waits for an
// upload to finish when all are in use. That budget, not the queue, is what
// bounds a backup's pack memory.
//
// Thread-safety: Add may be called from many threads. Flush/Finish from one.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "nodeagent/core/repo/codec.h"
#include "nodeagent/core/repo/repository.h"
#include "nodeagent/core/util/aligned_bytes.h"
#include "nodeagent/core/util/bounded_queue.h"

namespace bunker::repo {

struct PackWriterOptions {
  size_t target_size = 16 << 20;
  int uploaders = 2;
  size_t max_pending = 1;
};

// Makes a pack writer's buffers (its whole budget, pages faulted in) on a
// thread of its own, one after another, so that a backup can start before
// all of them exist: the writer takes each when it first needs one. Faulting
// in ~54 MiB costs tens of milliseconds, which would otherwise be a serial
// step before the first chunk; a block backup starts a maker before the
// repository key is derived. The buffers use 4 KiB pages
// (io_alloc.h, PopulateSmallPages): fresh huge pages cost 2-8x more under a
// hypervisor that reclaims free guest memory. Needs no repository.
class PackBufferMaker {
 public:
  // Starts making, on a thread that first runs `first` (when given): other
  // memory its owner wants faulted in during the same wait. Makes `eager`
  // buffers at once and the rest only after the first Take: the key
  // derivation this overlaps holds memory of its own (scrypt, 32 MiB), and
  // the two together would raise the backup's peak.
  explicit PackBufferMaker(const PackWriterOptions& options, std::function<void()> first = nullptr,
                           size_t eager = SIZE_MAX);
  ~PackBufferMaker();  // stops making, waits for the thread
  PackBufferMaker(const PackBufferMaker&) = delete;
  PackBufferMaker& operator=(const PackBufferMaker&) = delete;

  // The next buffer, waiting until it is made; an empty one once all were
  // taken (or when memory ran out: the caller then makes its own).
  AlignedBytes Take();
  size_t buffer_capacity() const { return capacity_; }
  // Buffers made so far, taken or not (for tests).
  size_t made() const;

 private:
  void Make(size_t count);  // runs on thread_

  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AlignedBytes> made_;  // guarded by mu_
  size_t to_make_;                 // guarded by mu_; not yet made
  size_t made_total_ = 0;          // guarded by mu_
  bool taken_ = false;             // guarded by mu_; Take was called
  bool stopping_ = false;          // guarded by mu_
  std::thread thread_;
};

class PackWriter {
 public:
  // `maker`: where the writer's buffers come from (it must outlive the
  // writer and make buffers big enough for `options`, or it is ignored);
  // without one the writer makes and touches them all here.
  PackWriter(Repository* repo, const PackWriterOptions& options, PackBufferMaker* maker = nullptr);
  ~PackWriter();  // stops the uploaders (after Finish, or abandoning on error)

  // Appends a stored blob (as made by BlobCodec::Encode). May block while
  // finished packs wait for upload. Fails once any upload has failed.
  Status Add(const BlobEntry& entry, ByteSpan stored);

  // Uploads the partial pack and waits for every upload. Returns the packs
  // uploaded since construction (for the index file), or the first error.
  Result<std::vector<PackEntries>> Finish();

  uint64_t bytes_uploaded() const { return bytes_uploaded_.load(); }
  uint64_t packs_uploaded() const { return packs_uploaded_.load(); }

 private:
  struct Pending {
    ObjectId id;
    AlignedBytes data;
    std::vector<BlobEntry> blobs;
  };
  // Requires mu_. take_next: a buffer for the next pack (not at Finish).
  Status SealCurrentLocked(bool take_next);
  void UploadLoop();
  Status FirstError();
  AlignedBytes TakeBuffer();           // a recycled or new buffer, within the budget
  void RecycleBuffer(AlignedBytes b);  // keeps it for the next pack
  friend class PackBufferMaker;
  static size_t MaxBuffers(const PackWriterOptions& o) {
    return static_cast<size_t>(o.uploaders) + 1;
  }
  size_t MaxBuffers() const { return MaxBuffers(options_); }
  // Room for a full pack, its last blob (up to a 1 MiB chunk, or bigger file
  // chunks, for which the buffer grows once) and its trailer.
  static size_t BufferCapacity(const PackWriterOptions& o) {
    return o.target_size + (1 << 20) + (64 << 10);
  }
  size_t BufferCapacity() const { return BufferCapacity(options_); }

  Repository* repo_;
  PackWriterOptions options_;
  std::unique_ptr<BlobCodec> codec_;  // guarded by mu_ (trailer sealing)
  std::mutex mu_;
  AlignedBytes current_;                  // guarded by mu_
  std::vector<BlobEntry> current_blobs_;  // guarded by mu_
  BoundedQueue<Pending> queue_;
  std::vector<std::thread> uploaders_;
  std::mutex free_mu_;
  std::condition_variable free_cv_;   // a buffer was recycled
  std::vector<AlignedBytes> free_;    // guarded by free_mu_
  size_t buffers_ = 0;                // guarded by free_mu_; buffers made so far
  PackBufferMaker* maker_ = nullptr;  // buffers not yet in free_ come from here
  std::mutex done_mu_;
  std::vector<PackEntries> done_;  // guarded by done_mu_
  Status error_;                   // guarded by done_mu_
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> bytes_uploaded_{0};
  std::atomic<uint64_t> packs_uploaded_{0};
  bool finished_ = false;
};

}  // namespace bunker::repo
