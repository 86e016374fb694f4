#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "nodeagent/core/mover/block_backup.h"
#include "nodeagent/core/util/bounded_queue.h"

namespace bunker::mover {

using repo::BlobCodec;
using repo::BlobEntry;
using repo::BlobId;
using repo::Id;
using repo::ObjectId;

namespace {

constexpr uint64_t kMaxRange = 8 << 20;  // bytes fetched per ranged read
constexpr uint64_t kMaxGap = 256 << 10;  // unneeded bytes a range may span

// The chunks one blob fills, and the fingerprint they were recorded with.
struct Use {
  std::vector<uint32_t> chunks;
  crypto::Fingerprint fp{};
  bool fp_usable = true;  // all of its chunks recorded the same, non-zero fingerprint
};

struct Item {
  BlobEntry entry;
  const Use* use;
};

struct Task {
  ObjectId pack{};
  uint64_t start = 0;
  uint64_t length = 0;
  uint32_t first_chunk = 0;
  std::vector<Item> items;
};

}  // namespace

Result<RestoreResult> RestoreBlockVolume(repo::Repository* repo, const repo::Snapshot& snapshot,
                                         const BlockRestoreOptions& options) {
  std::unique_ptr<BlobCodec> codec = repo->NewCodec();
  ASSIGN_OR_RETURN(std::vector<repo::ChunkRef> chunks,
                   LoadBlockContent(repo, snapshot, codec.get()));
  std::vector<Id> ids(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) ids[i] = chunks[i].id;
  const uint64_t chunk_size = snapshot.chunk_size;
  auto chunk_len = [&](uint32_t i) {
    return std::min<uint64_t>(chunk_size, snapshot.size - uint64_t{i} * chunk_size);
  };

  // Which chunks each blob fills, then where each blob lives. Each blob is
  // checked against the fingerprint its chunks were recorded with (see
  // BlobCodec::DecodeInto); a blob whose chunks disagree, or have none, is
  // checked against its HMAC id instead.
  static constexpr crypto::Fingerprint kNoFingerprint{};
  std::unordered_map<BlobId, Use, repo::IdHash> where;
  RestoreResult result;
  for (uint32_t i = 0; i < ids.size(); ++i) {
    if (repo::IsHole(ids[i])) {
      result.bytes_hole += chunk_len(i);
      continue;
    }
    Use& use = where[ids[i]];
    if (use.chunks.empty()) {
      use.fp = chunks[i].fp;
      use.fp_usable = use.fp != kNoFingerprint;
    } else if (use.fp != chunks[i].fp) {
      use.fp_usable = false;
    }
    use.chunks.push_back(i);
  }
  chunks = {};
  std::map<ObjectId, std::vector<Item>> by_pack;
  for (const auto& [id, use] : where) {
    std::optional<repo::BlobLocation> loc = repo->index().Find(id);
    if (!loc) {
      return Corruption("snapshot of volume " + snapshot.volume_id + ": blob " +
                        repo::ShortHex(id) + " (chunk at offset " +
                        std::to_string(uint64_t{use.chunks.front()} * chunk_size) +
                        ") is in no index: the repository is missing data");
    }
    if (loc->entry.raw_length != chunk_len(use.chunks.front())) {
      return Corruption("blob " + repo::ShortHex(id) + " has " +
                        std::to_string(loc->entry.raw_length) + " bytes, its chunk needs " +
                        std::to_string(chunk_len(use.chunks.front())));
    }
    by_pack[loc->pack].push_back(Item{loc->entry, &use});
  }
  std::vector<Task> tasks;
  for (auto& [pack, items] : by_pack) {
    std::sort(items.begin(), items.end(),
              [](const Item& a, const Item& b) { return a.entry.offset < b.entry.offset; });
    Task cur;
    for (const Item& it : items) {
      uint64_t end = cur.start + cur.length;
      // 64-bit arithmetic: offsets and lengths come from the (untrusted) index.
      const uint64_t blob_start = it.entry.offset;
      const uint64_t blob_end = blob_start + it.entry.length;
      if (!cur.items.empty() &&
          (blob_start < end || blob_start - end > kMaxGap || blob_end - cur.start > kMaxRange)) {
        tasks.push_back(std::move(cur));
        cur = Task();
      }
      if (cur.items.empty()) {
        cur.pack = pack;
        cur.start = it.entry.offset;
        cur.first_chunk = it.use->chunks.front();
      }
      cur.length = blob_end - cur.start;
      cur.first_chunk = std::min(cur.first_chunk, it.use->chunks.front());
      cur.items.push_back(it);
    }
    if (!cur.items.empty()) tasks.push_back(std::move(cur));
  }
  std::sort(tasks.begin(), tasks.end(),
            [](const Task& a, const Task& b) { return a.first_chunk < b.first_chunk; });

  const int workers = options.workers > 0
                          ? options.workers
                          : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  io::WriteOptions write = options.write;
  write.direct = write.direct && chunk_size % BufferPool::kAlignment == 0;
  // Chunks travel to the writer in aligned pool buffers (the form O_DIRECT
  // takes). The pool bounds the restore's memory: queued writes, writes in
  // flight, two per worker (a decoded blob and the copy for another chunk
  // with the same content), one held by the writing thread. It
  // is declared before the writer and the queue, so it outlives the buffers
  // they may still hold when destroyed.
  constexpr size_t kQueuedWrites = 16;
  BufferPool pool(chunk_size, kQueuedWrites + write.queue_depth + 2 * workers + 1);
  ASSIGN_OR_RETURN(std::unique_ptr<io::BlockWriter> writer,
                   io::BlockWriter::Open(options.target, snapshot.size, options.overwrite, write));
  result.io_engine = std::string(io::EngineName(writer->engine()));
  if (options.progress) options.progress->bytes_total = snapshot.size;

  // Workers fetch and verify; this thread alone drives the writer. io_uring
  // ties queued writes to the task that submitted them (they are cancelled if
  // it exits first), so submissions must come from a thread that outlives
  // them; a single writer thread also keeps the writer's contract.
  struct WriteItem {
    uint64_t offset;
    Buffer data;
  };
  BoundedQueue<WriteItem> writes(kQueuedWrites);
  std::mutex error_mu;
  Status error;
  std::atomic<bool> failed{false};
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> written{0}, fetched{0};
  auto fail = [&](Status st) {
    std::lock_guard lock(error_mu);
    if (error.ok()) error = std::move(st);
    failed = true;
    writes.Close();
  };
  auto worker = [&] {
    std::unique_ptr<BlobCodec> c = repo->NewCodec();
    Bytes range;  // reused: one allocation per worker, not per range
    for (size_t t = next++; t < tasks.size() && !failed; t = next++) {
      const Task& task = tasks[t];
      std::string name = repo::PackName(task.pack);
      Status got = repo->backend()->GetRangeInto(name, task.start, task.length, &range);
      if (!got.ok()) {
        fail(got.Annotate("fetch pack " + repo::ShortHex(task.pack)));
        return;
      }
      for (const Item& it : task.items) {
        // Decoded (and checked) by the codec, then copied into the write
        // buffer of its first chunk (raw_length == that chunk's length,
        // checked above).
        const std::vector<uint32_t>& uses = it.use->chunks;
        WriteItem first{uint64_t{uses.front()} * chunk_size, pool.Acquire()};
        first.data.set_size(it.entry.raw_length);
        Status st = c->DecodeInto(
            it.entry, ByteSpan(range.data() + (it.entry.offset - task.start), it.entry.length),
            name, MutableByteSpan(first.data.data(), first.data.size()),
            it.use->fp_usable ? &it.use->fp : nullptr);
        if (!st.ok()) {
          fail(st);
          return;
        }
        ++fetched;
        for (size_t k = 1; k < uses.size(); ++k) {  // the same content elsewhere in the volume
          WriteItem w{uint64_t{uses[k]} * chunk_size, pool.Acquire()};
          std::memcpy(w.data.data(), first.data.data(), first.data.size());
          w.data.set_size(first.data.size());
          if (!writes.Push(std::move(w))) return;  // closed after a failure
        }
        if (!writes.Push(std::move(first))) return;
      }
    }
  };
  std::atomic<int> running{workers};
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&] {
      worker();
      if (--running == 0) writes.Close();
    });
  }
  while (std::optional<WriteItem> w = writes.Pop()) {
    if (failed) continue;
    uint64_t n = w->data.size();
    uint64_t off = w->offset;
    Status st = writer->WriteAt(off, std::move(w->data));
    if (!st.ok()) {
      fail(st.Annotate("write " + options.target + " at offset " + std::to_string(off)));
      continue;
    }
    written += n;
    if (options.progress) options.progress->bytes_done += n;
  }
  for (auto& t : threads) t.join();

  if (!failed) {
    // Holes read as zeros: nothing to do on a fresh file, zeroing on a device.
    for (uint32_t i = 0; i < ids.size(); ++i) {
      if (!repo::IsHole(ids[i])) continue;
      uint32_t j = i;
      while (j + 1 < ids.size() && repo::IsHole(ids[j + 1])) ++j;
      uint64_t off = uint64_t{i} * chunk_size;
      uint64_t end = std::min<uint64_t>(snapshot.size, (uint64_t{j} + 1) * chunk_size);
      Status st = writer->Zero(off, end - off);
      if (!st.ok()) {
        fail(st.Annotate("zero " + options.target));
        break;
      }
      if (options.progress) options.progress->bytes_done += end - off;
      i = j;
    }
  }
  Status fin = writer->Finish();
  if (failed) return error;
  if (!fin.ok()) return fin.Annotate("finish writing " + options.target);
  result.bytes_written = written;
  result.blobs_fetched = fetched;
  return result;
}

}  // namespace bunker::mover
