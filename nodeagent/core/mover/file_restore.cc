// File-mode restore (RestoreFileTree).
//
// The repository is hostile input here. One walker thread reads the trees
// depth-first and creates every entry through directory descriptors only
// (mkdirat, openat with O_CREAT|O_EXCL|O_NOFOLLOW, symlinkat, mknodat,
// linkat), so no name from the snapshot is ever resolved by the kernel as a
// path and no symlink is ever followed: a tree can only create entries below
// the target. Names are validated by the tree decoder (single components,
// sorted, unique). The content of regular files goes to worker threads in
// batches (pieces of several small files, or a stretch of a big one) that
// they fetch with ranged pack reads covering neighbouring blobs, verify
// (every blob's MAC and id), write with pwrite and, when a file's last piece
// is written, finish with its owner, xattrs, mode and times. Directory metadata is applied after
// the directory's children; holes are left sparse (ftruncate).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "nodeagent/core/mover/file_restore.h"

#include "nodeagent/core/mover/file_backup.h"
#include "nodeagent/core/mover/file_os.h"
#include "nodeagent/core/mover/file_tree.h"
#include "nodeagent/core/util/bounded_queue.h"

namespace bunker::mover {

using repo::BlobCodec;
using repo::BlobId;
using repo::BlobType;

namespace {

constexpr int kMaxDepth = 512;
constexpr uint64_t kBatchBytes = 16u << 20;  // content bytes per worker task
constexpr size_t kBatchFiles = 32;           // files per worker task
constexpr int kMaxOpenFiles = 256;           // files created and not yet finished (descriptors)
constexpr uint64_t kMaxRange = 8u << 20;     // bytes fetched per ranged read
constexpr uint64_t kMaxGap = 256u << 10;     // unneeded bytes a range may span
constexpr int kMaxWarnings = 20;

std::string JoinPath(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string p = dir;
  p.push_back('/');
  p.append(name);
  return p;
}

struct timespec Timespec(int64_t ns) {
  struct timespec ts;
  int64_t sec = ns / 1'000'000'000;
  int64_t rem = ns % 1'000'000'000;
  if (rem < 0) {
    rem += 1'000'000'000;
    --sec;
  }
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>(rem);
  return ts;
}

// A regular file being restored. `pending` counts the walker's hold plus the
// pieces not yet written; whoever brings it to zero applies the metadata and
// closes the file.
struct OpenFile {
  explicit OpenFile(std::function<void()> on_close) : on_close(std::move(on_close)) {}
  ~OpenFile() { on_close(); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  std::function<void()> on_close;  // gives back the open-file slot
  Fd fd;
  Node meta;  // without content
  std::string path;
  std::atomic<int64_t> pending{1};
};

// One data blob to write at `offset` of `file`.
struct Piece {
  std::shared_ptr<OpenFile> file;
  repo::BlobLocation loc;
  uint64_t offset = 0;
};

// A worker's task: pieces of one or (small files) many files, so that blobs
// lying close together in a pack are fetched with one ranged read whichever
// files they belong to.
struct Batch {
  std::vector<Piece> pieces;
  uint64_t bytes = 0;
  size_t files = 0;
};

class FileRestore {
 public:
  FileRestore(repo::Repository* repo, const repo::Snapshot& snapshot,
              const FileRestoreOptions& options)
      : repo_(repo),
        snapshot_(snapshot),
        options_(options),
        workers_(WorkerCount(options.workers, 2)),
        queue_(static_cast<size_t>(workers_)),
        is_root_(::geteuid() == 0) {}

  Result<RestoreResult> Run();
  SpecialSkipped skipped() const { return {devices_skipped_, setid_stripped_}; }

 private:
  std::string What(const std::string& path) const {
    return "snapshot of " + snapshot_.volume_id + ", \"" + (path.empty() ? "." : path) + "\"";
  }
  Status RestoreDir(int dirfd, const BlobId& tree, const std::string& path, int depth);
  Status RestoreNode(int dirfd, const Node& node, const std::string& path, int depth);
  Status ClearSlot(int dirfd, const Node& node, const std::string& path, bool* reuse_dir);
  Status CreateFile(int dirfd, const Node& node, const std::string& path);
  Status AddContent(const ContentRef& c, const std::string& path, const Node& node,
                    const std::shared_ptr<OpenFile>& file, uint64_t* off);
  Status PushBatch();
  Status CreateLink(int dirfd, const Node& node, const std::string& path);
  Status CreateSpecial(int dirfd, const Node& node, const std::string& path);

  uint32_t SafeMode(const Node& node, const std::string& path);
  Status ApplyFdMeta(int fd, const Node& node, const std::string& path);
  Status ApplyPathMeta(int dirfd, const Node& node, const std::string& path);
  Status XattrError(int err, const std::string& name, const std::string& path);
  void Warn(const std::string& msg);

  void Worker();
  Status WriteBatch(Batch* batch, BlobCodec* codec);
  void Release(const std::shared_ptr<OpenFile>& file);
  Status FinishFile(OpenFile* file);

  repo::Repository* repo_;
  const repo::Snapshot& snapshot_;
  const FileRestoreOptions& options_;
  const int workers_;
  // Open-file slots: bounds the descriptors held by files in flight. Declared
  // before the batches, whose files give their slots back when destroyed.
  std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  int open_files_ = 0;  // guarded by slots_mu_
  BoundedQueue<Batch> queue_;
  Batch batch_;  // being filled by the walker
  const bool is_root_;
  ErrorSlot error_;
  std::unique_ptr<BlobCodec> walker_codec_;
  int root_fd_ = -1;
  std::optional<Node> root_meta_;
  // Regular files with more than one link restored so far: the only paths a
  // hardlink node may name. Walker only.
  std::unordered_set<std::string> linkable_;
  std::atomic<uint64_t> written_{0}, holes_{0}, fetched_{0};
  std::atomic<int> warnings_{0};
  std::atomic<uint64_t> devices_skipped_{0}, setid_stripped_{0};
};

Result<Tree> LoadTree(repo::Repository* repo, BlobCodec* codec, const BlobId& id,
                      const std::string& what) {
  std::optional<repo::BlobLocation> loc = repo->index().Find(id);
  if (!loc) {
    return Corruption(what + ": tree " + repo::ShortHex(id) +
                      " is in no index: the repository is missing data");
  }
  if (loc->entry.type != BlobType::kMeta) {
    return Corruption(what + ": tree " + repo::ShortHex(id) + " is not a meta blob");
  }
  ASSIGN_OR_RETURN(Bytes plain, repo->ReadBlob(id, codec));
  return DecodeTree(plain, what + " (tree " + repo::ShortHex(id) + ")");
}

void FileRestore::Warn(const std::string& msg) {
  int n = ++warnings_;
  if (n <= kMaxWarnings) {
    spdlog::warn("restore to {}: {}", options_.target, msg);
  } else if (n == kMaxWarnings + 1) {
    spdlog::warn("restore to {}: more warnings suppressed", options_.target);
  }
}

Result<RestoreResult> FileRestore::Run() {
  if (snapshot_.mode != "file" || !snapshot_.tree) {
    return InvalidArgument("snapshot of volume " + snapshot_.volume_id + " is a " + snapshot_.mode +
                           "-mode snapshot, not a file-mode one");
  }
  if (options_.target.empty()) return InvalidArgument("file restore: no target given");
  walker_codec_ = repo_->NewCodec();

  // The target itself is the operator's path: created if missing, else it
  // must be a directory, empty unless overwriting.
  struct stat st;
  if (::stat(options_.target.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoStatus("target " + options_.target, errno);
    std::error_code ec;
    std::filesystem::path parent = std::filesystem::path(options_.target).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (::mkdir(options_.target.c_str(), 0700) != 0) {
      return ErrnoStatus("create target " + options_.target, errno);
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return AlreadyExists("target " + options_.target + " exists and is not a directory");
  }
  Fd root(::open(options_.target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("open target " + options_.target, errno);
  if (!options_.overwrite) {
    ASSIGN_OR_RETURN(std::vector<std::string> existing, ListDirectory(root.get(), options_.target));
    if (!existing.empty()) {
      return AlreadyExists("target " + options_.target +
                           " is not empty; pass overwrite to restore into it");
    }
  }
  root_fd_ = root.get();

  std::vector<std::thread> threads;
  for (int i = 0; i < workers_; ++i) threads.emplace_back([this] { Worker(); });
  Status walked = RestoreDir(root.get(), *snapshot_.tree, "", 0);
  if (walked.ok()) walked = PushBatch();
  if (walked.ok() && root_meta_) walked = ApplyFdMeta(root.get(), *root_meta_, "");
  queue_.Close();
  for (auto& t : threads) t.join();
  if (!walked.ok()) error_.Set(walked);
  if (error_.failed()) return error_.Get();
  if (warnings_ > kMaxWarnings) {
    spdlog::warn("restore to {}: {} warnings in all", options_.target, warnings_.load());
  }
  RestoreResult result;
  result.bytes_written = written_;
  result.bytes_hole = holes_;
  result.blobs_fetched = fetched_;
  result.io_engine = "pwrite";
  return result;
}

Status FileRestore::RestoreDir(int dirfd, const BlobId& tree, const std::string& path, int depth) {
  std::optional<BlobId> page = tree;
  std::string last;
  bool first = true;
  while (page) {
    ASSIGN_OR_RETURN(Tree t, LoadTree(repo_, walker_codec_.get(), *page, What(path)));
    if (!first && !t.nodes.empty() && !(last < t.nodes.front().name)) {
      return Corruption(What(path) + ": the pages of the tree are out of order");
    }
    if (first && depth == 0) root_meta_ = std::move(t.root);
    for (const Node& n : t.nodes) {
      if (error_.failed()) return error_.Get();
      RETURN_IF_ERROR(RestoreNode(dirfd, n, path, depth));
    }
    if (!t.nodes.empty()) last = t.nodes.back().name;
    first = false;
    page = t.next;
  }
  return Status::Ok();
}

Status FileRestore::ClearSlot(int dirfd, const Node& node, const std::string& path,
                              bool* reuse_dir) {
  struct stat st;
  if (::fstatat(dirfd, node.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("stat " + path, errno);
  }
  if (node.type == NodeType::kDir && S_ISDIR(st.st_mode)) {
    *reuse_dir = true;
    return Status::Ok();
  }
  return RemoveTreeAt(dirfd, node.name, path);
}

Status FileRestore::RestoreNode(int dirfd, const Node& node, const std::string& parent_path,
                                int depth) {
  const std::string path = JoinPath(parent_path, node.name);
  if (!IsValidName(node.name)) {  // the decoder refuses these; never rely on one check
    return Corruption(What(parent_path) + ": a node name is not a single path component");
  }
  bool reuse_dir = false;
  if (options_.overwrite) RETURN_IF_ERROR(ClearSlot(dirfd, node, path, &reuse_dir));
  switch (node.type) {
    case NodeType::kDir: {
      if (!node.subtree) return Corruption(What(path) + ": directory without a tree");
      if (depth + 1 >= kMaxDepth) {
        return Corruption(What(path) + ": nested deeper than " + std::to_string(kMaxDepth) +
                          " levels");
      }
      if (!reuse_dir && ::mkdirat(dirfd, node.name.c_str(), 0700) != 0) {
        return ErrnoStatus("create directory " + path, errno);
      }
      Fd sub(::openat(dirfd, node.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoStatus("open directory " + path, errno);
      RETURN_IF_ERROR(RestoreDir(sub.get(), *node.subtree, path, depth + 1));
      return ApplyFdMeta(sub.get(), node, path);
    }
    case NodeType::kFile:
      return CreateFile(dirfd, node, path);
    case NodeType::kSymlink:
      if (::symlinkat(node.target.c_str(), dirfd, node.name.c_str()) != 0) {
        return ErrnoStatus("create symlink " + path, errno);
      }
      return ApplyPathMeta(dirfd, node, path);
    case NodeType::kHardlink:
      return CreateLink(dirfd, node, path);
    case NodeType::kFifo:
    case NodeType::kSocket:
    case NodeType::kCharDev:
    case NodeType::kBlockDev:
      return CreateSpecial(dirfd, node, path);
  }
  return Corruption(What(path) + ": unknown node type");
}

Status FileRestore::CreateFile(int dirfd, const Node& node, const std::string& path) {
  {
    // Workers always make progress on queued batches (which hold fewer files
    // than the limit), so this wait ends.
    std::unique_lock lock(slots_mu_);
    slots_cv_.wait(lock, [this] { return open_files_ < kMaxOpenFiles; });
    ++open_files_;
  }
  auto file = std::make_shared<OpenFile>([this] {
    std::lock_guard lock(slots_mu_);
    --open_files_;
    slots_cv_.notify_one();
  });
  int fd = ::openat(dirfd, node.name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                    0600);
  if (fd < 0) return ErrnoStatus("create " + path, errno);
  file->fd = Fd(fd);
  file->path = path;
  file->meta.name = node.name;
  file->meta.type = node.type;
  file->meta.mode = node.mode;
  file->meta.uid = node.uid;
  file->meta.gid = node.gid;
  file->meta.mtime_ns = node.mtime_ns;
  file->meta.xattrs = node.xattrs;
  if (node.links > 1) linkable_.insert(path);
  // Holes are left unwritten; the size covers a trailing one. (Writes never
  // go past the size, so this may run while pieces are being written.)
  if (node.size > 0 && ::ftruncate(fd, static_cast<off_t>(node.size)) != 0) {
    return ErrnoStatus("size " + path + " to " + std::to_string(node.size) + " bytes", errno);
  }
  if (!node.content.empty() || !node.content_blobs.empty()) ++batch_.files;

  uint64_t off = 0;
  for (const ContentRef& c : node.content) {
    RETURN_IF_ERROR(AddContent(c, path, node, file, &off));
  }
  for (const BlobId& list : node.content_blobs) {
    std::optional<repo::BlobLocation> loc = repo_->index().Find(list);
    if (!loc || loc->entry.type != BlobType::kMeta) {
      return Corruption(What(path) + ": content list " + repo::ShortHex(list) +
                        " is in no index or not a meta blob");
    }
    ASSIGN_OR_RETURN(Bytes plain, repo_->ReadBlob(list, walker_codec_.get()));
    ASSIGN_OR_RETURN(
        std::vector<ContentRef> content,
        DecodeContentBlob(plain, What(path) + " (content list " + repo::ShortHex(list) + ")"));
    for (const ContentRef& c : content) {
      RETURN_IF_ERROR(AddContent(c, path, node, file, &off));
    }
  }
  if (off != node.size) {
    return Corruption(What(path) + ": the content covers " + std::to_string(off) +
                      " bytes, the file has " + std::to_string(node.size));
  }
  if (batch_.files >= kBatchFiles) RETURN_IF_ERROR(PushBatch());
  Release(file);
  return Status::Ok();
}

Status FileRestore::AddContent(const ContentRef& c, const std::string& path, const Node& node,
                               const std::shared_ptr<OpenFile>& file, uint64_t* off) {
  const uint64_t left = node.size - *off;
  if (c.is_hole()) {
    if (c.hole > left) return Corruption(What(path) + ": the content is longer than the file");
    *off += c.hole;
    holes_ += c.hole;
    if (options_.progress) options_.progress->bytes_done += c.hole;
    return Status::Ok();
  }
  std::optional<repo::BlobLocation> loc = repo_->index().Find(c.id);
  if (!loc) {
    return Corruption(What(path) + ": blob " + repo::ShortHex(c.id) +
                      " is in no index: the repository is missing data");
  }
  if (loc->entry.type != BlobType::kData || loc->entry.raw_length == 0) {
    return Corruption(What(path) + ": blob " + repo::ShortHex(c.id) + " is not a data blob");
  }
  if (loc->entry.raw_length > left) {
    return Corruption(What(path) + ": the content is longer than the file");
  }
  file->pending.fetch_add(1, std::memory_order_relaxed);
  batch_.pieces.push_back(Piece{file, *loc, *off});
  *off += loc->entry.raw_length;
  batch_.bytes += loc->entry.raw_length;
  if (batch_.bytes >= kBatchBytes) {
    RETURN_IF_ERROR(PushBatch());
    batch_.files = 1;  // the file goes on in the next batch
  }
  return Status::Ok();
}

Status FileRestore::PushBatch() {
  Batch out = std::move(batch_);
  batch_ = Batch();
  if (out.pieces.empty()) return Status::Ok();
  if (!queue_.Push(std::move(out))) {
    return error_.failed() ? error_.Get() : Aborted("restore stopped");
  }
  return Status::Ok();
}

Status FileRestore::CreateLink(int dirfd, const Node& node, const std::string& path) {
  if (!linkable_.contains(node.link_to)) {
    return Corruption(What(path) + ": hard link to \"" + node.link_to.substr(0, 256) +
                      "\", which is not a regular file restored before it from this snapshot");
  }
  Result<std::vector<std::string_view>> parts = SplitLinkPath(node.link_to);
  if (!parts.ok()) return Corruption(What(path) + ": bad hard link target");
  // Resolve the link target one component at a time from the root, never
  // following a symlink.
  int base = root_fd_;
  Fd holder;
  for (size_t i = 0; i + 1 < parts->size(); ++i) {
    std::string comp((*parts)[i]);
    int next = ::openat(base, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      return Corruption(What(path) + ": hard link target \"" + node.link_to.substr(0, 256) +
                        "\" cannot be reached without following a link (" +
                        ErrnoStatus("open", errno).message() + ")");
    }
    holder = Fd(next);
    base = next;
  }
  std::string last(parts->back());
  struct stat st;
  if (::fstatat(base, last.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
    return Corruption(What(path) + ": hard link target \"" + node.link_to.substr(0, 256) +
                      "\" is not a regular file");
  }
  if (::linkat(base, last.c_str(), dirfd, node.name.c_str(), 0) != 0) {
    return ErrnoStatus("create hard link " + path, errno);
  }
  return Status::Ok();
}

Status FileRestore::CreateSpecial(int dirfd, const Node& node, const std::string& path) {
  mode_t type = 0;
  dev_t rdev = 0;
  switch (node.type) {
    case NodeType::kFifo:
      type = S_IFIFO;
      break;
    case NodeType::kSocket:
      type = S_IFSOCK;
      break;
    case NodeType::kCharDev:
    case NodeType::kBlockDev:
      if (!options_.allow_special || !is_root_) {
        ++devices_skipped_;
        Warn("skipping device node " + path + " (needs allow_special, as root)");
        return Status::Ok();
      }
      type = node.type == NodeType::kCharDev ? S_IFCHR : S_IFBLK;
      rdev = static_cast<dev_t>(node.rdev);
      break;
    default:
      return Internal("CreateSpecial on a " + std::string(NodeTypeName(node.type)));
  }
  if (::mknodat(dirfd, node.name.c_str(), type | 0600, rdev) != 0) {
    return ErrnoStatus("create " + std::string(NodeTypeName(node.type)) + " " + path, errno);
  }
  return ApplyPathMeta(dirfd, node, path);
}

uint32_t FileRestore::SafeMode(const Node& node, const std::string& path) {
  uint32_t mode = node.mode & kMaxMode;
  if (options_.allow_special && is_root_) return mode;
  // setgid on a directory only makes new entries inherit its group (how
  // Kubernetes fsGroup volumes work): it grants nothing, so it is kept.
  uint32_t risky = node.type == NodeType::kDir ? S_ISUID : (S_ISUID | S_ISGID);
  if (mode & risky) {
    ++setid_stripped_;
    Warn("dropping the setuid/setgid bits of " + (path.empty() ? "." : path) +
         " (needs allow_special, as root)");
    mode &= ~risky;
  }
  return mode;
}

Status FileRestore::XattrError(int err, const std::string& name, const std::string& path) {
  if (err == ENOTSUP || err == EPERM || err == EACCES || err == ENOSPC || err == E2BIG ||
      err == ERANGE) {
    Warn("cannot set extended attribute " + name + " on " + (path.empty() ? "." : path) + ": " +
         ErrnoStatus("", err).message());
    return Status::Ok();
  }
  return ErrnoStatus("set extended attribute " + name + " on " + path, err);
}

Status FileRestore::ApplyFdMeta(int fd, const Node& node, const std::string& path) {
  const std::string shown = path.empty() ? options_.target : path;
  if (options_.restore_owner && is_root_ && ::fchown(fd, node.uid, node.gid) != 0) {
    return ErrnoStatus("set the owner of " + shown, errno);
  }
  for (const auto& [name, value] : node.xattrs) {
    if (int err = SetXattrFd(fd, name, value); err != 0) {
      RETURN_IF_ERROR(XattrError(err, name, path));
    }
  }
  if (::fchmod(fd, SafeMode(node, path)) != 0) {
    return ErrnoStatus("set the mode of " + shown, errno);
  }
  struct timespec ts[2] = {{0, UTIME_OMIT}, Timespec(node.mtime_ns)};
  if (::futimens(fd, ts) != 0) return ErrnoStatus("set the times of " + shown, errno);
  return Status::Ok();
}

Status FileRestore::ApplyPathMeta(int dirfd, const Node& node, const std::string& path) {
  const char* name = node.name.c_str();
  if (options_.restore_owner && is_root_ &&
      ::fchownat(dirfd, name, node.uid, node.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("set the owner of " + path, errno);
  }
  if (!node.xattrs.empty()) {
    const std::string proc = ProcFdPath(dirfd, node.name);
    for (const auto& [xname, value] : node.xattrs) {
      if (int err = SetXattrPath(proc, xname, value); err != 0) {
        RETURN_IF_ERROR(XattrError(err, xname, path));
      }
    }
  }
  if (node.type != NodeType::kSymlink) {
    // The node was just created by mknodat; AT_SYMLINK_NOFOLLOW keeps a
    // swapped-in symlink from redirecting the chmod.
    if (::fchmodat(dirfd, name, SafeMode(node, path), AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("set the mode of " + path, errno);
    }
  }
  struct timespec ts[2] = {{0, UTIME_OMIT}, Timespec(node.mtime_ns)};
  if (::utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("set the times of " + path, errno);
  }
  return Status::Ok();
}

void FileRestore::Worker() {
  std::unique_ptr<BlobCodec> codec = repo_->NewCodec();
  while (std::optional<Batch> batch = queue_.Pop()) {
    if (error_.failed()) continue;
    Status st = WriteBatch(&*batch, codec.get());
    if (!st.ok()) {
      error_.Set(std::move(st));
      queue_.Close();
    }
  }
}

Status FileRestore::WriteBatch(Batch* batch, BlobCodec* codec) {
  std::vector<Piece>& pieces = batch->pieces;
  std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
    return a.loc.pack != b.loc.pack ? a.loc.pack < b.loc.pack
                                    : a.loc.entry.offset < b.loc.entry.offset;
  });
  Bytes plain;
  for (size_t i = 0; i < pieces.size();) {
    // One ranged read for a run of blobs that sit close together in a pack.
    const repo::BlobLocation& first = pieces[i].loc;
    uint64_t start = first.entry.offset;
    uint64_t end = start + first.entry.length;
    size_t j = i + 1;
    while (j < pieces.size()) {
      const repo::BlobLocation& l = pieces[j].loc;
      // Sorted by offset; the same blob may come twice (files sharing a chunk).
      if (l.pack != first.pack || l.entry.offset > end + kMaxGap ||
          uint64_t{l.entry.offset} + l.entry.length - start > kMaxRange) {
        break;
      }
      end = std::max<uint64_t>(end, uint64_t{l.entry.offset} + l.entry.length);
      ++j;
    }
    const std::string name = repo::PackName(first.pack);
    Result<Bytes> range = repo_->backend()->GetRange(name, start, end - start);
    if (!range.ok()) return range.Annotated("fetch pack " + repo::ShortHex(first.pack));
    if (range->size() != end - start) {
      return Corruption("pack " + repo::ShortHex(first.pack) + " is shorter than its index says");
    }
    for (; i < j; ++i) {
      const Piece& p = pieces[i];
      RETURN_IF_ERROR(codec->Decode(
          p.loc.entry, ByteSpan(range->data() + (p.loc.entry.offset - start), p.loc.entry.length),
          name, &plain));
      ++fetched_;
      size_t done = 0;
      while (done < plain.size()) {
        ssize_t w = ::pwrite(p.file->fd.get(), plain.data() + done, plain.size() - done,
                             static_cast<off_t>(p.offset + done));
        if (w < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus("write " + p.file->path, errno);
        }
        done += static_cast<size_t>(w);
      }
      written_ += plain.size();
      if (options_.progress) options_.progress->bytes_done += plain.size();
      Release(p.file);
      if (error_.failed()) return Status::Ok();  // Release reported it
    }
  }
  return Status::Ok();
}

void FileRestore::Release(const std::shared_ptr<OpenFile>& file) {
  if (file->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (error_.failed()) return;
  Status st = FinishFile(file.get());
  if (!st.ok()) {
    error_.Set(std::move(st));
    queue_.Close();
  }
}

Status FileRestore::FinishFile(OpenFile* file) {
  RETURN_IF_ERROR(ApplyFdMeta(file->fd.get(), file->meta, file->path));
  RETURN_IF_ERROR(file->fd.Close(file->path));
  if (options_.progress) ++options_.progress->files_done;
  return Status::Ok();
}

}  // namespace

Result<RestoreResult> RestoreFileTree(repo::Repository* repo, const repo::Snapshot& snapshot,
                                      const FileRestoreOptions& options) {
  return RestoreFileTree(repo, snapshot, options, nullptr);
}

Result<RestoreResult> RestoreFileTree(repo::Repository* repo, const repo::Snapshot& snapshot,
                                      const FileRestoreOptions& options, SpecialSkipped* skipped) {
  FileRestore restore(repo, snapshot, options);
  Result<RestoreResult> r = restore.Run();
  if (r.ok() && skipped != nullptr) *skipped = restore.skipped();
  return r;
}

}  // namespace bunker::mover
