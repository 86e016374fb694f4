#include "nodeagent/core/repo/pack_writer.h"

#include <cstring>
#include <new>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/util/failpoint.h"
#include "nodeagent/core/util/io_alloc.h"

namespace bunker::repo {

namespace {

AlignedBytes TouchedBuffer(size_t capacity) {
  AlignedBytes b(capacity);
  PopulateSmallPages(b.data(), b.capacity());
  return b;
}

}  // namespace

PackBufferMaker::PackBufferMaker(const PackWriterOptions& options, std::function<void()> first,
                                 size_t eager)
    : capacity_(PackWriter::BufferCapacity(options)), to_make_(PackWriter::MaxBuffers(options)) {
  thread_ = std::thread([this, first = std::move(first), eager] {
    if (first) first();
    Make(eager);
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return taken_ || stopping_ || to_make_ == 0; });
      if (stopping_) return;
    }
    Make(SIZE_MAX);
  });
}

void PackBufferMaker::Make(size_t count) {
  for (size_t i = 0; i < count; ++i) {
    {
      std::lock_guard lock(mu_);
      if (to_make_ == 0 || stopping_) return;
    }
    AlignedBytes b;
    try {
      b = TouchedBuffer(capacity_);
    } catch (const std::bad_alloc&) {
      std::lock_guard lock(mu_);
      to_make_ = 0;  // Take hands out empty buffers; the writer tries itself
      cv_.notify_all();
      return;
    }
    std::lock_guard lock(mu_);
    made_.push_back(std::move(b));
    ++made_total_;
    --to_make_;
    cv_.notify_all();
  }
}

PackBufferMaker::~PackBufferMaker() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

AlignedBytes PackBufferMaker::Take() {
  std::unique_lock lock(mu_);
  if (!taken_) {
    taken_ = true;
    cv_.notify_all();  // the rest may be made now
  }
  cv_.wait(lock, [this] { return !made_.empty() || to_make_ == 0; });
  if (made_.empty()) return AlignedBytes();
  AlignedBytes b = std::move(made_.front());
  made_.pop_front();
  return b;
}

size_t PackBufferMaker::made() const {
  std::lock_guard lock(mu_);
  return made_total_;
}

PackWriter::PackWriter(Repository* repo, const PackWriterOptions& options, PackBufferMaker* maker)
    : repo_(repo), options_(options), codec_(repo->NewCodec()), queue_(options.max_pending) {
  // The whole budget early, its pages touched: a backup's memory is then the
  // same whatever the volume size and however the uploads happen to keep up
  // (otherwise the last buffer exists only when they lag). A maker makes
  // them all on its thread; TakeBuffer collects them one by one.
  if (maker != nullptr && maker->buffer_capacity() >= BufferCapacity()) {
    maker_ = maker;
  } else {
    while (free_.size() < MaxBuffers()) free_.push_back(TouchedBuffer(BufferCapacity()));
    buffers_ = MaxBuffers();
  }
  current_ = std::make_unique<OpenPack>();
  current_->data = TakeBuffer();
  for (int i = 0; i < options_.uploaders; ++i) {
    uploaders_.emplace_back([this] { UploadLoop(); });
  }
}

PackWriter::~PackWriter() {
  queue_.Close();
  for (auto& t : uploaders_) {
    if (t.joinable()) t.join();
  }
}

Status PackWriter::FirstError() {
  std::lock_guard lock(done_mu_);
  return error_;
}

AlignedBytes PackWriter::TakeBuffer() {
  std::unique_lock lock(free_mu_);
  free_cv_.wait(lock, [this] { return !free_.empty() || buffers_ < MaxBuffers() || failed_; });
  if (!free_.empty()) {
    AlignedBytes b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  // Beyond the budget only after a failure, to unblock the caller.
  const bool from_maker = maker_ != nullptr && buffers_ < MaxBuffers();
  ++buffers_;
  lock.unlock();
  if (from_maker) {
    AlignedBytes b = maker_->Take();
    if (b.capacity() >= BufferCapacity()) return b;
  }
  return AlignedBytes(BufferCapacity());
}

void PackWriter::RecycleBuffer(AlignedBytes b) {
  b.clear();
  {
    std::lock_guard lock(free_mu_);
    free_.push_back(std::move(b));
  }
  free_cv_.notify_one();
}

Status PackWriter::Add(const BlobEntry& entry, ByteSpan stored) {
  ASSIGN_OR_RETURN(Room room, Reserve(stored.size()));
  std::memcpy(room.bytes_.data(), stored.data(), stored.size());
  return Commit(room, entry);
}

Result<PackWriter::Room> PackWriter::Reserve(size_t length) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (failed_) return FirstError();
    if (current_ && current_->data.size() + length > current_->data.capacity()) {
      if (current_->blobs.empty()) {
        // A file chunk bigger than a buffer: it grows once (no room is
        // open in it, so nothing points into it).
        current_->data.reserve(length);
      } else {
        RETURN_IF_ERROR(CloseCurrentLocked());
      }
    }
    if (current_) break;
    if (taking_) {  // another thread is already waiting for the next buffer
      taken_cv_.wait(lock);
      continue;
    }
    // Without the lock: an upload may take a while to hand a buffer back,
    // and the rooms open in closed packs must be committed meanwhile.
    taking_ = true;
    lock.unlock();
    AlignedBytes b = TakeBuffer();
    lock.lock();
    taking_ = false;
    taken_cv_.notify_all();
    current_ = std::make_unique<OpenPack>();
    current_->data = std::move(b);
  }
  OpenPack* p = current_.get();
  const size_t offset = p->data.size();
  p->data.resize(offset + length);  // within capacity: never moves
  BlobEntry placeholder;
  placeholder.offset = static_cast<uint32_t>(offset);
  placeholder.length = static_cast<uint32_t>(length);
  p->blobs.push_back(placeholder);
  ++p->open_rooms;
  Room room;
  room.pack_ = p;
  room.blob_ = p->blobs.size() - 1;
  room.bytes_ = MutableByteSpan(p->data.data() + offset, length);
  if (p->data.size() >= options_.target_size) RETURN_IF_ERROR(CloseCurrentLocked());
  return room;
}

Status PackWriter::Commit(const Room& room, const BlobEntry& entry) {
  std::lock_guard lock(mu_);
  OpenPack* p = room.pack_;
  BlobEntry& e = p->blobs[room.blob_];
  const uint32_t offset = e.offset, length = e.length;
  e = entry;
  e.offset = offset;
  e.length = length;
  --p->open_rooms;
  if (p->open_rooms == 0 && p != current_.get()) {
    std::unique_ptr<OpenPack> full = TakeClosingLocked(p);
    if (failed_) {
      RecycleBuffer(std::move(full->data));
      return FirstError();
    }
    return SealLocked(std::move(full));
  }
  return failed_ ? FirstError() : Status::Ok();
}

void PackWriter::Abandon(const Room& room) {
  Fail(Aborted("a blob reserved in a pack was never written (the backup failed with it)"));
  std::lock_guard lock(mu_);
  OpenPack* p = room.pack_;
  --p->open_rooms;
  if (p->open_rooms == 0 && p != current_.get()) {
    RecycleBuffer(std::move(TakeClosingLocked(p)->data));
  }
}

std::unique_ptr<PackWriter::OpenPack> PackWriter::TakeClosingLocked(OpenPack* pack) {
  for (auto it = closing_.begin(); it != closing_.end(); ++it) {
    if (it->get() == pack) {
      std::unique_ptr<OpenPack> p = std::move(*it);
      closing_.erase(it);
      return p;
    }
  }
  std::abort();  // a room's pack is current_ or closing until its last room closes
}

void PackWriter::Fail(Status st) {
  {
    std::lock_guard lock(done_mu_);
    if (error_.ok()) error_ = std::move(st);
    failed_ = true;
  }
  std::lock_guard lock(free_mu_);
  free_cv_.notify_all();
}

Status PackWriter::CloseCurrentLocked() {
  std::unique_ptr<OpenPack> p = std::move(current_);
  if (p->open_rooms == 0) return SealLocked(std::move(p));
  closing_.push_back(std::move(p));
  return Status::Ok();
}

Status PackWriter::SealLocked(std::unique_ptr<OpenPack> pack) {
  Bytes trailer;
  Status st = codec_->Seal(kAadTrailer, EncodeTrailer(pack->blobs), &trailer);
  if (!st.ok()) {
    // Sticky: the pack's blobs are lost, so no later Finish may succeed.
    st = st.Annotate("seal pack trailer");
    Fail(st);
    RecycleBuffer(std::move(pack->data));
    return st;
  }
  PutU32(&trailer, static_cast<uint32_t>(trailer.size()));
  trailer.insert(trailer.end(), kPackMagic, kPackMagic + 4);
  pack->data.Append(trailer);
  // The name hashes the sealed trailer and footer (unique: the trailer's nonce
  // is random); the blobs are protected by their own tags and ids.
  Pending p{crypto::Sha256(trailer), std::move(pack->data), std::move(pack->blobs)};
  if (!queue_.Push(std::move(p))) {
    st = FirstError();
    return st.ok() ? Aborted("pack upload stopped") : st;
  }
  return Status::Ok();
}

void PackWriter::UploadLoop() {
  while (std::optional<Pending> p = queue_.Pop()) {
    if (failed_) {  // drain without uploading
      RecycleBuffer(std::move(p->data));
      continue;
    }
    const ObjectId& id = p->id;
    Status st = Failpoint("pack.before_put");
    if (st.ok()) st = repo_->backend()->Put(PackName(id), p->data.span());
    if (st.ok()) st = Failpoint("pack.after_put");
    {
      std::lock_guard lock(done_mu_);
      if (st.ok()) {
        PackEntries entries{id, std::move(p->blobs), p->data.size()};
        repo_->index().AddPack(entries);
        bytes_uploaded_ += p->data.size();
        ++packs_uploaded_;
        done_.push_back(std::move(entries));
      } else {
        if (error_.ok()) error_ = st.Annotate("upload pack " + ShortHex(id));
        failed_ = true;
      }
    }
    RecycleBuffer(std::move(p->data));  // also wakes a TakeBuffer after a failure
  }
}

Status PackWriter::CopyBlobs(const ObjectId& pack, const std::vector<BlobEntry>& blobs,
                             BlobCodec* codec, const std::function<Status()>& before_add) {
  const std::string name = PackName(pack);
  Bytes sealed, plain;
  for (const BlobEntry& e : blobs) {
    RETURN_IF_ERROR(repo_->backend()->GetRangeInto(name, e.offset, e.length, &sealed));
    RETURN_IF_ERROR(codec->Decode(e, sealed, name, &plain));
    RETURN_IF_ERROR(before_add());
    RETURN_IF_ERROR(Add(e, sealed));
  }
  return Status::Ok();
}

Result<std::vector<PackEntries>> PackWriter::Finish() {
  {
    std::lock_guard lock(mu_);
    if (!failed_) {
      if (!closing_.empty() || (current_ && current_->open_rooms != 0)) {
        return Internal("pack writer finished with blobs still being written");
      }
      if (current_ && !current_->blobs.empty()) {
        RETURN_IF_ERROR(SealLocked(std::move(current_)));
      }
    }
  }
  queue_.Close();
  for (auto& t : uploaders_) t.join();
  uploaders_.clear();
  RETURN_IF_ERROR(FirstError());
  std::lock_guard lock(done_mu_);
  return std::move(done_);
}

}  // namespace bunker::repo
