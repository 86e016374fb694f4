#pragma once

// PackWriter collects stored blobs from many worker threads into packs of
// about `target_size` bytes and uploads finished packs on a few uploader
// threads (bounded: at most `max_pending` finished packs wait, so memory stays
// flat). Each uploaded pack is added to the repository Index and remembered
// for the index file that commits the backup. A blob arrives either whole
// (Add copies it in) or is written into room reserved in the pack itself
// (Reserve, Commit): a block backup seals its chunks there, which saves a
// copy of every stored byte.
//
// Pack buffers are 4 KiB-aligned (so a file backend can write them with
// O_DIRECT) and recycled without new page faults. Exactly uploaders + 1 of
// them exist (one filling, the others queued or uploading), made and touched
// at construction or by a PackBufferMaker: starting a pack waits for an
// upload to finish when all are in use (a full pack whose rooms are still
// being written holds its buffer too). That budget, not the queue, is what
// bounds a backup's pack memory.
//
// Thread-safety: Add, Reserve, Commit and Abandon may be called from many
// threads; Finish from one, after every room was committed or abandoned.

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
 private:
  struct OpenPack;

 public:
  // Room in a pack for one stored blob (Reserve).
  class Room {
   public:
    MutableByteSpan bytes() const { return bytes_; }

   private:
    friend class PackWriter;
    OpenPack* pack_ = nullptr;
    size_t blob_ = 0;  // its entry in pack_->blobs
    MutableByteSpan bytes_;
  };

  // `maker`: where the writer's buffers come from (it must outlive the
  // writer and make buffers big enough for `options`, or it is ignored);
  // without one the writer makes and touches them all here.
  PackWriter(Repository* repo, const PackWriterOptions& options, PackBufferMaker* maker = nullptr);
  ~PackWriter();  // stops the uploaders (after Finish, or abandoning on error)

  // Appends a stored blob (as made by BlobCodec::Encode). May block while
  // finished packs wait for upload. Fails once any upload has failed.
  Status Add(const BlobEntry& entry, ByteSpan stored);

  // Add in two steps, for a caller that writes the stored blob straight
  // into the pack (BlobCodec::PrepareBlob, SealPreparedBlob) without the
  // writer's lock: Reserve returns room for `length` bytes in the pack being
  // filled; Commit records the blob there once written (entry's offset and
  // length come from the room). A full pack is sealed and queued when its
  // last room is committed. Abandon gives up a room that could not be
  // written: the pack holding it is never uploaded, so the writer fails
  // (Add, Reserve and Finish return the error) — for callers whose backup
  // fails with the blob anyway. Reserve may block like Add.
  Result<Room> Reserve(size_t length);
  Status Commit(const Room& room, const BlobEntry& entry);
  void Abandon(const Room& room);

  // Uploads the partial pack and waits for every upload. Returns the packs
  // uploaded since construction (for the index file), or the first error.
  Result<std::vector<PackEntries>> Finish();

  // Appends `blobs` of the stored pack `pack` as they are stored (no new
  // sealing), each read with one ranged get and appended only after it
  // decodes and matches its id; `before_add` runs before each append (a
  // caller's failpoint). Prune's repack and a backup's commit.
  Status CopyBlobs(const ObjectId& pack, const std::vector<BlobEntry>& blobs, BlobCodec* codec,
                   const std::function<Status()>& before_add);

  uint64_t bytes_uploaded() const { return bytes_uploaded_.load(); }
  uint64_t packs_uploaded() const { return packs_uploaded_.load(); }

 private:
  struct Pending {
    ObjectId id;
    AlignedBytes data;
    std::vector<BlobEntry> blobs;
  };
  // A pack being filled, or full and waiting for its rooms to be committed.
  struct OpenPack {
    AlignedBytes data;
    std::vector<BlobEntry> blobs;
    size_t open_rooms = 0;  // reserved, not yet committed or abandoned
  };
  // Require mu_. Close: no more rooms in current_ (it is sealed now, or when
  // its last room is committed). Seal: trailer, then the upload queue.
  Status CloseCurrentLocked();
  Status SealLocked(std::unique_ptr<OpenPack> pack);
  // Requires mu_: takes `pack` out of closing_.
  std::unique_ptr<OpenPack> TakeClosingLocked(OpenPack* pack);
  void Fail(Status st);  // the first error, once; wakes a waiting TakeBuffer
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
  std::unique_ptr<OpenPack> current_;               // guarded by mu_; null: none taken yet
  std::vector<std::unique_ptr<OpenPack>> closing_;  // guarded by mu_
  bool taking_ = false;                             // guarded by mu_: a Reserve awaits a buffer
  std::condition_variable taken_cv_;                // taking_ went false
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
};

}  // namespace bunker::repo
