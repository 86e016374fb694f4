// File-mode backup (BackupFileTree) and the tree walk shared with check and
// prune (VisitTreeBlobs).
//
// Pipeline: one walker thread lists directories depth-first in name order
// (openat, never following symlinks), stats every entry, takes files that are
// unchanged since the parent snapshot from the parent's tree, and queues the
// others (already open) on a bounded queue. Worker threads chunk one file at
// a time (FastCDC, streaming through a buffer of 2 × the largest chunk,
// skipping holes with SEEK_DATA/SEEK_HOLE), deduplicate through
// Index::Claim, seal and self-check each new blob and hand it to the
// PackWriter. A directory's tree is encoded and stored as soon as its last
// file and subdirectory are done (by whichever thread finishes last), so only
// the directories in progress are held in memory. Then the index file and the
// snapshot are written, each after checking the lease.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "nodeagent/core/chunk/chunker.h"
#include "nodeagent/core/mover/commit.h"
#include "nodeagent/core/mover/file_backup.h"
#include "nodeagent/core/mover/file_os.h"
#include "nodeagent/core/mover/file_tree.h"
#include "nodeagent/core/repo/pack_writer.h"
#include "nodeagent/core/util/bounded_queue.h"
#include "nodeagent/core/util/failpoint.h"

namespace bunker::mover {

using repo::BlobCodec;
using repo::BlobEntry;
using repo::BlobId;
using repo::BlobType;
using repo::Id;
using repo::ObjectId;

namespace {

constexpr int kMaxDepth = 512;  // directory levels (one open descriptor each)
constexpr size_t kDefaultTreePageBytes = 4u << 20;
constexpr size_t kDefaultInlineContent = 8192;    // entries kept in a file node
constexpr size_t kDefaultContentPerBlob = 65536;  // entries per content-list blob

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void FillMeta(const struct stat& st, Node* n) {
  n->mode = st.st_mode & kMaxMode;
  n->uid = st.st_uid;
  n->gid = st.st_gid;
  n->mtime_ns = Nanos(st.st_mtim);
  n->ctime_ns = Nanos(st.st_ctim);
  n->inode = st.st_ino;
  n->links = st.st_nlink;
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string p = dir;
  p.push_back('/');
  p.append(name);
  return p;
}

// One directory being backed up. `pending` counts what must finish before its
// tree can be written: the walker's listing (1) plus every queued file and
// every subdirectory not yet written. Whoever brings it to zero writes the
// tree. `nodes` is sized once by the walker before any file is queued; each
// worker then writes only the node of its own file.
struct DirState {
  std::shared_ptr<DirState> parent;  // null for the root
  size_t index_in_parent = 0;
  std::string path;  // from the root, for messages ("" for the root)
  std::vector<Node> nodes;
  std::vector<uint8_t> keep;  // 0 for entries skipped (vanished during the walk)
  std::optional<Node> self;   // the root's own metadata
  std::atomic<int64_t> pending{1};
};

struct FileJob {
  std::shared_ptr<DirState> dir;
  size_t index = 0;
  Fd fd;
  struct stat st {};
  std::string path;
};

// The parent snapshot's version of one directory, for the unchanged-file check.
struct ParentDir {
  std::vector<Node> nodes;  // every page, in order

  const Node* Find(std::string_view name) const {
    auto it = std::lower_bound(nodes.begin(), nodes.end(), name,
                               [](const Node& n, std::string_view v) { return n.name < v; });
    return it != nodes.end() && it->name == name ? &*it : nullptr;
  }
};

struct InodeKey {
  dev_t dev;
  ino_t ino;
  bool operator==(const InodeKey&) const = default;
};
struct InodeKeyHash {
  size_t operator()(const InodeKey& k) const {
    return std::hash<uint64_t>()(static_cast<uint64_t>(k.ino) * 0x9e3779b97f4a7c15ULL ^
                                 static_cast<uint64_t>(k.dev));
  }
};

// Reads a tree blob, checking the index calls it a tree.
Result<Tree> LoadTree(repo::Repository* repo, BlobCodec* codec, const BlobId& id,
                      std::string_view what) {
  std::optional<repo::BlobLocation> loc = repo->index().Find(id);
  if (!loc) return NotFound(std::string(what) + ": tree " + repo::ShortHex(id) + " is in no index");
  if (loc->entry.type != BlobType::kMeta) {
    return Corruption(std::string(what) + ": tree " + repo::ShortHex(id) + " is not a meta blob");
  }
  ASSIGN_OR_RETURN(Bytes plain, repo->ReadBlob(id, codec));
  return DecodeTree(plain, std::string(what) + " (tree " + repo::ShortHex(id) + ")");
}

class FileBackup {
 public:
  FileBackup(repo::Repository* repo, const FileBackupOptions& options)
      : repo_(repo),
        options_(options),
        cdc_(repo->config().cdc, repo->Gear()),
        packer_(repo, repo::PackWriterOptions{}),
        workers_(WorkerCount(options.workers)),
        queue_(static_cast<size_t>(workers_) * 2),
        page_bytes_(options.tree_page_bytes ? options.tree_page_bytes : kDefaultTreePageBytes),
        inline_content_(options.inline_content_max ? options.inline_content_max
                                                   : kDefaultInlineContent),
        content_per_blob_(options.content_per_blob ? options.content_per_blob
                                                   : kDefaultContentPerBlob) {}

  Result<BackupResult> Run(repo::Lease* lease);

 private:
  Status WalkDir(int dirfd, const std::shared_ptr<DirState>& dir, const ParentDir* parent,
                 int depth);
  Status AddEntry(int dirfd, const std::shared_ptr<DirState>& dir, size_t i,
                  const ParentDir* parent, int depth);
  Status AddFile(int dirfd, const std::shared_ptr<DirState>& dir, size_t i, const struct stat& st,
                 const std::string& path, const ParentDir* parent);
  Status AddDir(int dirfd, const std::shared_ptr<DirState>& dir, size_t i, const std::string& path,
                const ParentDir* parent, int depth);
  Status NodeXattrs(int fd, const std::string& path, Node* node);
  void Vanished(const std::string& path, std::string_view how);
  Result<std::unique_ptr<ParentDir>> LoadParentDir(const BlobId& tree, const std::string& path);

  void Worker();
  Status ChunkFile(FileJob* job, BlobCodec* codec, Bytes* buf, Bytes* stored);
  Status ChunkRegion(const FileJob& job, uint64_t end, uint64_t* off, bool* eof,
                     std::vector<ContentRef>* out, BlobCodec* codec, Bytes* buf, Bytes* stored);
  void AddHole(std::vector<ContentRef>* out, uint64_t len);
  Status StoreChunk(ByteSpan data, std::vector<ContentRef>* out, BlobCodec* codec, Bytes* stored);
  // Stores a meta blob unless the repository has it; returns its id.
  Result<BlobId> StoreMeta(std::string_view plain, BlobCodec* codec, Bytes* stored);
  bool ShouldStore(const BlobId& id);

  // Drops one pending count of `dir`; writes the trees that become complete.
  void Release(std::shared_ptr<DirState> dir, BlobCodec* codec);
  Result<BlobId> WriteTree(DirState* dir, BlobCodec* codec);

  repo::Repository* repo_;
  const FileBackupOptions& options_;
  const chunk::FastCdc cdc_;
  repo::PackWriter packer_;
  const int workers_;
  BoundedQueue<std::unique_ptr<FileJob>> queue_;
  const size_t page_bytes_;
  const size_t inline_content_;
  const size_t content_per_blob_;
  ErrorSlot error_;
  std::unordered_set<ObjectId, repo::IdHash> existing_packs_;  // --full store check
  std::unique_ptr<BlobCodec> walker_codec_;
  std::unordered_map<InodeKey, std::string, InodeKeyHash> first_path_;  // walker only
  std::optional<BlobId> root_tree_;  // set by whoever writes the root tree

  std::atomic<uint64_t> bytes_read_{0}, bytes_new_{0}, bytes_reused_{0}, bytes_hole_{0},
      blobs_new_{0}, blobs_reused_{0}, files_new_{0}, files_unchanged_{0}, vanished_{0},
      total_size_{0};  // logical bytes of every regular file in the tree
};

Result<std::unique_ptr<ParentDir>> FileBackup::LoadParentDir(const BlobId& tree,
                                                             const std::string& path) {
  auto out = std::make_unique<ParentDir>();
  std::optional<BlobId> page = tree;
  std::string what = "parent snapshot, directory \"" + (path.empty() ? "." : path) + "\"";
  while (page) {
    ASSIGN_OR_RETURN(Tree t, LoadTree(repo_, walker_codec_.get(), *page, what));
    for (Node& n : t.nodes) out->nodes.push_back(std::move(n));
    page = t.next;
  }
  return out;
}

Result<BackupResult> FileBackup::Run(repo::Lease* lease) {
  auto start = std::chrono::steady_clock::now();
  walker_codec_ = repo_->NewCodec();

  repo::Snapshot snap;
  snap.volume_id = options_.volume_id.empty() ? options_.root : options_.volume_id;
  snap.mode = "file";
  snap.host = repo::HostName();
  snap.tags = options_.tags;

  // Parent: explicit, else the latest file-mode snapshot of this volume.
  std::optional<repo::Snapshot> parent_snap;
  if (!options_.full) {
    if (options_.parent) {
      Result<repo::Snapshot> p = repo_->LoadSnapshot(*options_.parent, walker_codec_.get());
      if (!p.ok()) return p.Annotated("parent snapshot " + repo::ShortHex(*options_.parent));
      if (p->mode != "file" || !p->tree) {
        return InvalidArgument("parent snapshot " + repo::ShortHex(*options_.parent) +
                               " is not a file-mode snapshot");
      }
      snap.parent = options_.parent;
      parent_snap = std::move(*p);
    } else {
      std::vector<repo::Repository::DamagedSnapshot> damaged;  // skipped as parents
      ASSIGN_OR_RETURN(std::vector<repo::SnapshotRef> all, repo_->ListSnapshots(&damaged));
      for (auto it = all.rbegin(); it != all.rend(); ++it) {
        if (it->snapshot.volume_id == snap.volume_id && it->snapshot.mode == "file" &&
            it->snapshot.tree) {
          snap.parent = it->id;
          parent_snap = std::move(it->snapshot);
          break;
        }
      }
    }
  }
  std::unique_ptr<ParentDir> parent_root;
  if (parent_snap) {
    Result<std::unique_ptr<ParentDir>> p = LoadParentDir(*parent_snap->tree, "");
    if (!p.ok()) {
      if (options_.parent) return p.status();
      spdlog::warn("backup of {}: cannot read the parent snapshot {} ({}); reading every file",
                   options_.root, repo::ShortHex(*snap.parent), p.status().ToString());
      snap.parent.reset();
    } else {
      parent_root = std::move(*p);
    }
  }
  snap.kind = snap.parent ? "incremental" : "full";
  if (options_.full) RETURN_IF_ERROR(ListStoredPacks(repo_, &existing_packs_));

  Fd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("open directory " + options_.root, errno);
  struct stat rst;
  if (::fstat(root.get(), &rst) != 0) return ErrnoStatus("stat " + options_.root, errno);
  auto rootdir = std::make_shared<DirState>();
  rootdir->self.emplace();
  rootdir->self->type = NodeType::kDir;
  FillMeta(rst, &*rootdir->self);
  RETURN_IF_ERROR(NodeXattrs(root.get(), ".", &*rootdir->self));

  std::vector<std::thread> threads;
  for (int i = 0; i < workers_; ++i) threads.emplace_back([this] { Worker(); });
  Status walked = WalkDir(root.get(), rootdir, parent_root.get(), 0);
  if (walked.ok()) Release(rootdir, walker_codec_.get());
  rootdir.reset();
  queue_.Close();
  for (auto& t : threads) t.join();
  if (!walked.ok()) error_.Set(walked);
  if (error_.failed()) return error_.Get();
  if (!root_tree_) {
    return Internal("the root tree of " + options_.root + " was not written");
  }
  snap.tree = root_tree_;
  if (vanished_ > 0) {
    spdlog::warn("backup of {}: {} entries vanished during the walk and are not in the snapshot",
                 options_.root, vanished_.load());
  }

  ASSIGN_OR_RETURN(std::vector<repo::PackEntries> packs, packer_.Finish());

  // Commit point (commit.h): under the commit lease, what another backup
  // committed meanwhile is dropped from this one's packs; then the index and
  // the snapshot, each only while the leases hold (checked after the
  // failpoints, so a process stopped at one meets the check when it resumes).
  ASSIGN_OR_RETURN(
      std::unique_ptr<BackupCommit> commit,
      BackupCommit::Begin(repo_, lease, std::move(packs), "backup of " + snap.volume_id));
  if (!commit->packs().empty()) {
    RETURN_IF_ERROR(Failpoint("backup.before_index"));
    RETURN_IF_ERROR(commit->CheckValid());
    RETURN_IF_ERROR(repo_->SaveIndex(commit->packs(), walker_codec_.get()).status());
  }
  snap.time = repo::NowRfc3339();
  snap.size = total_size_;
  repo::SnapshotStats& s = snap.stats;
  s.bytes_read = bytes_read_;
  s.bytes_new = bytes_new_;
  s.bytes_reused = bytes_reused_;
  s.bytes_hole = bytes_hole_;
  s.bytes_stored = packer_.bytes_uploaded();
  s.blobs_new = blobs_new_;
  s.blobs_reused = blobs_reused_;
  s.files_new = files_new_;
  s.files_unchanged = files_unchanged_;
  commit->AdjustStats(&s, /*with_meta=*/true);
  if (options_.progress) {
    options_.progress->bytes_new = s.bytes_new;
    options_.progress->bytes_stored = s.bytes_stored;
  }
  s.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RETURN_IF_ERROR(Failpoint("backup.before_snapshot"));
  RETURN_IF_ERROR(commit->CheckValid());
  ASSIGN_OR_RETURN(ObjectId sid, repo_->SaveSnapshot(snap, walker_codec_.get()));
  RETURN_IF_ERROR(Failpoint("backup.after_snapshot"));
  commit->Finish();
  return BackupResult{sid, std::move(snap), "pread"};
}

Status FileBackup::WalkDir(int dirfd, const std::shared_ptr<DirState>& dir, const ParentDir* parent,
                           int depth) {
  ASSIGN_OR_RETURN(
      std::vector<std::string> names,
      ListDirectory(dirfd, dir->path.empty() ? options_.root : options_.root + "/" + dir->path));
  dir->nodes.resize(names.size());
  dir->keep.assign(names.size(), 0);
  for (size_t i = 0; i < names.size(); ++i) {
    if (!IsValidName(names[i])) {
      return Internal("directory " + dir->path + " lists an impossible name");
    }
    dir->nodes[i].name = std::move(names[i]);
  }
  for (size_t i = 0; i < dir->nodes.size(); ++i) {
    if (error_.failed()) return error_.Get();
    RETURN_IF_ERROR(AddEntry(dirfd, dir, i, parent, depth));
  }
  return Status::Ok();
}

void FileBackup::Vanished(const std::string& path, std::string_view how) {
  ++vanished_;
  spdlog::warn("backup of {}: skipping {}: {} during the backup", options_.root, path, how);
}

Status FileBackup::NodeXattrs(int fd, const std::string& path, Node* node) {
  ASSIGN_OR_RETURN(Xattrs x, ReadXattrsFd(fd, path));
  uint64_t total = 0;
  for (auto& [name, value] : x) {
    if (!IsUtf8(name) || name.size() > kMaxXattrNameBytes) {
      spdlog::warn("backup of {}: {}: skipping an extended attribute whose name is not UTF-8",
                   options_.root, path);
      continue;
    }
    total += value.size();
    if (value.size() > kMaxXattrValueBytes || total > kMaxXattrBytesPerNode) {
      return InvalidArgument(path + ": extended attributes larger than the format allows");
    }
    node->xattrs.emplace_back(std::move(name), std::move(value));
  }
  return Status::Ok();
}

Status FileBackup::AddEntry(int dirfd, const std::shared_ptr<DirState>& dir, size_t i,
                            const ParentDir* parent, int depth) {
  Node& n = dir->nodes[i];
  const std::string path = JoinPath(dir->path, n.name);
  struct stat st;
  if (::fstatat(dirfd, n.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      Vanished(path, "removed");
      return Status::Ok();
    }
    return ErrnoStatus("stat " + path, errno);
  }
  FillMeta(st, &n);
  if (S_ISREG(st.st_mode)) return AddFile(dirfd, dir, i, st, path, parent);
  if (S_ISDIR(st.st_mode)) return AddDir(dirfd, dir, i, path, parent, depth);
  if (S_ISLNK(st.st_mode)) {
    n.type = NodeType::kSymlink;
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    for (;;) {
      ssize_t len = ::readlinkat(dirfd, n.name.c_str(), target.data(), target.size());
      if (len < 0) {
        if (errno == ENOENT || errno == EINVAL) {
          Vanished(path, "removed or replaced");
          return Status::Ok();
        }
        return ErrnoStatus("read symlink " + path, errno);
      }
      if (static_cast<size_t>(len) < target.size()) {
        target.resize(static_cast<size_t>(len));
        break;
      }
      if (target.size() > kMaxSymlinkTargetBytes) {
        return InvalidArgument("symlink " + path + " has a target longer than the format allows");
      }
      target.resize(target.size() * 2);
    }
    if (target.empty() || target.size() > kMaxSymlinkTargetBytes) {
      return InvalidArgument("symlink " + path + " has an empty or too long target");
    }
    n.target = std::move(target);
  } else if (S_ISFIFO(st.st_mode)) {
    n.type = NodeType::kFifo;
  } else if (S_ISSOCK(st.st_mode)) {
    n.type = NodeType::kSocket;
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    n.type = S_ISCHR(st.st_mode) ? NodeType::kCharDev : NodeType::kBlockDev;
    n.rdev = st.st_rdev;
  } else {
    spdlog::warn("backup of {}: skipping {}: unknown file type {:o}", options_.root, path,
                 st.st_mode & S_IFMT);
    return Status::Ok();
  }
  // Symlinks and special files cannot be opened for reading: their attributes
  // (security labels mostly) are read by a no-follow path under /proc.
  Result<Xattrs> x = ReadXattrsPath(ProcFdPath(dirfd, n.name), path);
  if (x.ok()) {
    for (auto& [name, value] : *x) {
      if (IsUtf8(name) && value.size() <= kMaxXattrValueBytes) {
        n.xattrs.emplace_back(std::move(name), std::move(value));
      }
    }
  } else if (x.status().code() != Code::kNotFound) {
    spdlog::warn("backup of {}: {}: {}", options_.root, path, x.status().ToString());
  }
  dir->keep[i] = 1;
  return Status::Ok();
}

Status FileBackup::AddFile(int dirfd, const std::shared_ptr<DirState>& dir, size_t i,
                           const struct stat& st, const std::string& path,
                           const ParentDir* parent) {
  Node& n = dir->nodes[i];
  n.type = NodeType::kFile;
  const InodeKey key{st.st_dev, st.st_ino};
  if (st.st_nlink > 1) {
    auto it = first_path_.find(key);
    if (it != first_path_.end()) {
      n.type = NodeType::kHardlink;
      n.link_to = it->second;
      dir->keep[i] = 1;
      return Status::Ok();
    }
  }
  // Unchanged since the parent: take its content without reading.
  const Node* prev = parent ? parent->Find(n.name) : nullptr;
  if (prev && prev->type == NodeType::kFile && prev->size == static_cast<uint64_t>(st.st_size) &&
      prev->mtime_ns == n.mtime_ns && prev->ctime_ns == n.ctime_ns &&
      prev->inode == static_cast<uint64_t>(st.st_ino)) {
    bool known = true;
    uint64_t data_bytes = 0, blobs = 0;
    for (const ContentRef& c : prev->content) {
      if (c.is_hole()) continue;
      ++blobs;
      if (!repo_->index().Has(c.id)) known = false;
    }
    for (const BlobId& id : prev->content_blobs) {
      if (!repo_->index().Has(id)) known = false;
    }
    if (known) {
      uint64_t holes = 0;
      for (const ContentRef& c : prev->content) holes += c.hole;
      data_bytes = prev->size >= holes ? prev->size - holes : 0;
      n.size = prev->size;
      total_size_ += prev->size;
      n.content = prev->content;
      n.content_blobs = prev->content_blobs;
      n.xattrs = prev->xattrs;  // an xattr change moves ctime
      ++files_unchanged_;
      bytes_reused_ += data_bytes;
      bytes_hole_ += holes;
      blobs_reused_ += blobs;
      if (options_.progress) {
        options_.progress->bytes_done += prev->size;
        ++options_.progress->files_done;
      }
      if (st.st_nlink > 1) first_path_.emplace(key, path);
      dir->keep[i] = 1;
      return Status::Ok();
    }
  }

  int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  int fd = ::openat(dirfd, n.name.c_str(), flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(dirfd, n.name.c_str(), flags);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP) {
      Vanished(path, "removed or replaced");
      return Status::Ok();
    }
    return ErrnoStatus("open " + path, errno);
  }
  auto job = std::make_unique<FileJob>();
  job->fd = Fd(fd);
  if (::fstat(fd, &job->st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISREG(job->st.st_mode)) {
    Vanished(path, "replaced");
    return Status::Ok();
  }
  FillMeta(job->st, &n);
  RETURN_IF_ERROR(NodeXattrs(fd, path, &n));
  n.size = static_cast<uint64_t>(job->st.st_size);
  if (job->st.st_nlink > 1) first_path_.emplace(InodeKey{job->st.st_dev, job->st.st_ino}, path);
  dir->keep[i] = 1;
  job->dir = dir;
  job->index = i;
  job->path = path;
  dir->pending.fetch_add(1, std::memory_order_relaxed);
  if (!queue_.Push(std::move(job))) return error_.failed() ? error_.Get() : Aborted("stopped");
  return Status::Ok();
}

Status FileBackup::AddDir(int dirfd, const std::shared_ptr<DirState>& dir, size_t i,
                          const std::string& path, const ParentDir* parent, int depth) {
  Node& n = dir->nodes[i];
  if (depth + 1 >= kMaxDepth) {
    return InvalidArgument("directory " + path + " is nested deeper than " +
                           std::to_string(kMaxDepth) + " levels");
  }
  Fd sub(::openat(dirfd, n.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub.valid()) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
      Vanished(path, "removed or replaced");
      return Status::Ok();
    }
    return ErrnoStatus("open directory " + path, errno);
  }
  struct stat st;
  if (::fstat(sub.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  FillMeta(st, &n);
  n.type = NodeType::kDir;
  RETURN_IF_ERROR(NodeXattrs(sub.get(), path, &n));
  dir->keep[i] = 1;

  std::unique_ptr<ParentDir> child_parent;
  const Node* prev = parent ? parent->Find(n.name) : nullptr;
  if (prev && prev->type == NodeType::kDir && prev->subtree) {
    Result<std::unique_ptr<ParentDir>> p = LoadParentDir(*prev->subtree, path);
    if (p.ok()) {
      child_parent = std::move(*p);
    } else {
      spdlog::warn("backup of {}: {}: {}; reading its files again", options_.root, path,
                   p.status().ToString());
    }
  }
  auto child = std::make_shared<DirState>();
  child->parent = dir;
  child->index_in_parent = i;
  child->path = path;
  dir->pending.fetch_add(1, std::memory_order_relaxed);
  RETURN_IF_ERROR(WalkDir(sub.get(), child, child_parent.get(), depth + 1));
  sub.Reset();
  child_parent.reset();
  Release(std::move(child), walker_codec_.get());
  return Status::Ok();
}

void FileBackup::Worker() {
  std::unique_ptr<BlobCodec> codec = repo_->NewCodec();
  Bytes buf(2 * static_cast<size_t>(cdc_.params().max_size));
  Bytes stored;
  while (std::optional<std::unique_ptr<FileJob>> job = queue_.Pop()) {
    if (error_.failed()) continue;
    Status st = ChunkFile(job->get(), codec.get(), &buf, &stored);
    if (st.ok()) st = (*job)->fd.Close((*job)->path);
    if (!st.ok()) {
      error_.Set(std::move(st));
      queue_.Close();
      continue;
    }
    ++files_new_;
    if (options_.progress) ++options_.progress->files_done;
    Release(std::move((*job)->dir), codec.get());
  }
}

bool FileBackup::ShouldStore(const BlobId& id) {
  if (repo_->index().Claim(id)) return true;
  if (options_.full) {
    // Store check: a blob whose pack is gone from the location is stored again.
    std::optional<repo::BlobLocation> loc = repo_->index().Find(id);
    if (loc && !existing_packs_.contains(loc->pack)) return true;
  }
  return false;
}

void FileBackup::AddHole(std::vector<ContentRef>* out, uint64_t len) {
  if (len == 0) return;
  if (!out->empty() && out->back().is_hole()) {
    out->back().hole += len;
  } else {
    out->push_back(ContentRef{repo::kHoleId, len});
  }
  bytes_hole_ += len;
  if (options_.progress) options_.progress->bytes_done += len;
}

Status FileBackup::StoreChunk(ByteSpan data, std::vector<ContentRef>* out, BlobCodec* codec,
                              Bytes* stored) {
  if (chunk::IsAllZero(data)) {
    AddHole(out, data.size());  // counts progress too
    return Status::Ok();
  }
  if (options_.progress) options_.progress->bytes_done += data.size();
  BlobId id = codec->ComputeId(data);
  out->push_back(ContentRef{id, 0});
  if (!ShouldStore(id)) {
    bytes_reused_ += data.size();
    ++blobs_reused_;
    return Status::Ok();
  }
  stored->clear();
  uint8_t flags = 0;
  RETURN_IF_ERROR(
      codec->Encode(BlobType::kData, id, data, options_.verify_before_upload, stored, &flags));
  RETURN_IF_ERROR(packer_.Add(
      BlobEntry{id, BlobType::kData, flags, 0, 0, static_cast<uint32_t>(data.size())}, *stored));
  bytes_new_ += data.size();
  ++blobs_new_;
  if (options_.progress) options_.progress->bytes_new += data.size();
  return Status::Ok();
}

Result<BlobId> FileBackup::StoreMeta(std::string_view plain, BlobCodec* codec, Bytes* stored) {
  if (plain.size() > repo::kMaxBlobSize) {
    return Internal("a tree blob of " + std::to_string(plain.size()) +
                    " bytes exceeds the blob size limit");
  }
  ByteSpan data = AsBytes(plain);
  BlobId id = codec->ComputeId(data);
  if (!ShouldStore(id)) {
    bytes_reused_ += data.size();
    ++blobs_reused_;
    return id;
  }
  stored->clear();
  uint8_t flags = 0;
  RETURN_IF_ERROR(codec->Encode(BlobType::kMeta, id, data, true, stored, &flags));
  RETURN_IF_ERROR(packer_.Add(
      BlobEntry{id, BlobType::kMeta, flags, 0, 0, static_cast<uint32_t>(data.size())}, *stored));
  bytes_new_ += data.size();
  ++blobs_new_;
  return id;
}

// Chunks [*off, end) of the file (or up to EOF, whichever comes first) as one
// stream; advances *off; sets *eof when the file ended first.
Status FileBackup::ChunkRegion(const FileJob& job, uint64_t end, uint64_t* off, bool* eof,
                               std::vector<ContentRef>* out, BlobCodec* codec, Bytes* buf,
                               Bytes* stored) {
  const size_t max = cdc_.params().max_size;
  size_t begin = 0, fill = 0;  // buf[begin, fill) holds unchunked bytes starting at *off
  uint64_t read_pos = *off;
  bool at_end = false;
  for (;;) {
    if (!at_end && fill - begin < max) {
      if (begin > 0) {
        std::memmove(buf->data(), buf->data() + begin, fill - begin);
        fill -= begin;
        begin = 0;
      }
      while (fill < buf->size()) {
        uint64_t want = std::min<uint64_t>(buf->size() - fill, end - read_pos);
        if (want == 0) {
          at_end = true;
          break;
        }
        ssize_t r = ::pread(job.fd.get(), buf->data() + fill, want, static_cast<off_t>(read_pos));
        if (r < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus("read " + job.path + " at offset " + std::to_string(read_pos), errno);
        }
        if (r == 0) {
          at_end = true;
          *eof = true;
          break;
        }
        fill += static_cast<size_t>(r);
        read_pos += static_cast<uint64_t>(r);
        bytes_read_ += static_cast<uint64_t>(r);
      }
    }
    if (begin == fill) {
      if (at_end) return Status::Ok();
      continue;
    }
    size_t n = cdc_.FindBoundary(ByteSpan(buf->data() + begin, fill - begin), at_end);
    if (n == 0) {
      if (at_end) return Internal("the chunker found no boundary at the end of " + job.path);
      continue;
    }
    RETURN_IF_ERROR(StoreChunk(ByteSpan(buf->data() + begin, n), out, codec, stored));
    begin += n;
    *off += n;
  }
}

Status FileBackup::ChunkFile(FileJob* job, BlobCodec* codec, Bytes* buf, Bytes* stored) {
  Node& n = job->dir->nodes[job->index];
  std::vector<ContentRef> content;
  const int fd = job->fd.get();
  const uint64_t size = static_cast<uint64_t>(job->st.st_size);
  // Only files with fewer blocks than their size can have holes worth seeking.
  bool sparse = static_cast<uint64_t>(job->st.st_blocks) * 512 < size;
  // Read once: no LRU promotion of the file's cached pages (Linux >= 6.3).
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_NOREUSE);
  if (size >= (4u << 20)) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t off = 0;
  // A file is read up to the size it had when opened (the metadata recorded
  // with it): that spares the read that would only find EOF.
  while (off < size) {
    uint64_t end = size;
    if (sparse) {
      off_t data = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
      if (data < 0 && errno == ENXIO) {
        // No data after off: the rest (to the current size) is a hole.
        struct stat now;
        if (::fstat(fd, &now) != 0) return ErrnoStatus("stat " + job->path, errno);
        uint64_t stop = std::min(size, static_cast<uint64_t>(now.st_size));
        if (stop > off) {
          AddHole(&content, stop - off);
          off = stop;
        }
        break;
      }
      if (data < 0) {
        sparse = false;  // not supported here: read everything
      } else {
        uint64_t start = std::min(size, static_cast<uint64_t>(data));
        AddHole(&content, start - off);
        off = start;
        if (off == size) break;
        off_t hole = ::lseek(fd, data, SEEK_HOLE);
        if (hole < 0) return ErrnoStatus("seek in " + job->path, errno);
        end = std::min(size, static_cast<uint64_t>(hole));
      }
    }
    bool eof = false;
    RETURN_IF_ERROR(ChunkRegion(*job, end, &off, &eof, &content, codec, buf, stored));
    if (eof || !sparse) break;
  }
  n.size = off;
  total_size_ += off;
  if (content.size() > inline_content_) {
    // Very large file: its content list goes into meta blobs.
    for (size_t i = 0; i < content.size(); i += content_per_blob_) {
      size_t len = std::min(content_per_blob_, content.size() - i);
      std::string plain = EncodeContentBlob(std::span<const ContentRef>(content.data() + i, len));
      ASSIGN_OR_RETURN(BlobId id, StoreMeta(plain, codec, stored));
      n.content_blobs.push_back(id);
    }
  } else {
    n.content = std::move(content);
  }
  return Status::Ok();
}

void FileBackup::Release(std::shared_ptr<DirState> dir, BlobCodec* codec) {
  while (dir) {
    if (dir->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (error_.failed()) return;
    Result<BlobId> id = WriteTree(dir.get(), codec);
    if (!id.ok()) {
      error_.Set(id.Annotated("write the tree of " + (dir->path.empty() ? "." : dir->path)));
      queue_.Close();
      return;
    }
    std::shared_ptr<DirState> parent = std::move(dir->parent);
    if (!parent) {
      root_tree_ = *id;
      return;
    }
    parent->nodes[dir->index_in_parent].subtree = *id;
    dir = std::move(parent);
  }
}

Result<BlobId> FileBackup::WriteTree(DirState* dir, BlobCodec* codec) {
  std::vector<std::string> jsons;
  jsons.reserve(dir->nodes.size());
  for (size_t i = 0; i < dir->nodes.size(); ++i) {
    if (dir->keep[i]) jsons.push_back(EncodeNodeJson(dir->nodes[i]));
  }
  std::vector<Node>().swap(dir->nodes);
  // Pages of about page_bytes_ each (at least one node a page, one page at least).
  std::vector<size_t> starts{0};
  size_t bytes = 0;
  for (size_t j = 0; j < jsons.size(); ++j) {
    if (j > starts.back() && bytes + jsons[j].size() > page_bytes_) {
      starts.push_back(j);
      bytes = 0;
    }
    bytes += jsons[j].size() + 1;
  }
  Bytes stored;
  std::optional<BlobId> next;
  for (size_t p = starts.size(); p-- > 0;) {
    size_t end = p + 1 < starts.size() ? starts[p + 1] : jsons.size();
    std::string page =
        EncodeTreePage(std::span<const std::string>(jsons.data() + starts[p], end - starts[p]),
                       p == 0 && dir->self ? &*dir->self : nullptr, next ? &*next : nullptr);
    ASSIGN_OR_RETURN(BlobId id, StoreMeta(page, codec, &stored));
    next = id;
  }
  return *next;
}

}  // namespace

Result<BackupResult> BackupFileTree(repo::Repository* repo, repo::Lease* lease,
                                    const FileBackupOptions& options) {
  if (options.root.empty()) return InvalidArgument("file backup: no directory given");
  FileBackup backup(repo, options);
  return backup.Run(lease);
}

Status VisitTreeBlobs(repo::Repository* repo, BlobCodec* codec, const BlobId& root,
                      const std::function<Status(const BlobId&, BlobType)>& visit) {
  std::unordered_set<BlobId, repo::IdHash> seen;  // trees and content-list blobs
  std::vector<BlobId> stack{root};
  while (!stack.empty()) {
    BlobId id = stack.back();
    stack.pop_back();
    if (!seen.insert(id).second) continue;
    RETURN_IF_ERROR(visit(id, BlobType::kMeta));
    ASSIGN_OR_RETURN(Tree tree, LoadTree(repo, codec, id, "tree walk"));
    for (const Node& n : tree.nodes) {
      if (n.type == NodeType::kFile) {
        for (const ContentRef& c : n.content) {
          if (!c.is_hole()) RETURN_IF_ERROR(visit(c.id, BlobType::kData));
        }
        for (const BlobId& list : n.content_blobs) {
          if (!seen.insert(list).second) continue;
          RETURN_IF_ERROR(visit(list, BlobType::kMeta));
          ASSIGN_OR_RETURN(Bytes plain, repo->ReadBlob(list, codec));
          ASSIGN_OR_RETURN(std::vector<ContentRef> content,
                           DecodeContentBlob(plain, "content list " + repo::ShortHex(list)));
          for (const ContentRef& c : content) {
            if (!c.is_hole()) RETURN_IF_ERROR(visit(c.id, BlobType::kData));
          }
        }
      } else if (n.type == NodeType::kDir && n.subtree) {
        stack.push_back(*n.subtree);
      }
    }
    if (tree.next) stack.push_back(*tree.next);
  }
  return Status::Ok();
}

}  // namespace bunker::mover
