#include "nodeagent/core/backend/file_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "nodeagent/core/util/failpoint.h"

namespace bunker::backend {

namespace {

constexpr std::string_view kTempPrefix = ".tmp-";

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// Writes `data` into the new, empty file `fd` from offset 0. When the buffer
// is 4 KiB-aligned and large (pack buffers are), its aligned prefix is written
// with O_DIRECT: the device reads our pages, so the bytes are neither copied
// into the page cache nor written back from it later (for a backup, half of
// the kernel's CPU time). The tail goes through the page cache. Any refusal
// of O_DIRECT (EINVAL from tmpfs, some FUSE file systems, stricter alignment)
// falls back to buffered writes; the fdatasync that follows covers both.
Status WriteNewFile(int fd, ByteSpan data, const std::string& path) {
  constexpr size_t kAlign = 4096;
  constexpr size_t kDirectFrom = 1 << 20;
  size_t done = 0;
  if (data.size() >= kDirectFrom && reinterpret_cast<uintptr_t>(data.data()) % kAlign == 0) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_DIRECT) == 0) {
      const size_t aligned = data.size() / kAlign * kAlign;
      while (done < aligned) {
        ssize_t n = ::pwrite(fd, data.data() + done, aligned - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EINVAL) break;  // alignment refused: the rest goes buffered
        if (n < 0) {
          const int err = errno;
          ::fcntl(fd, F_SETFL, flags);
          return ErrnoStatus("write " + path, err);
        }
        done += static_cast<size_t>(n);
        if (done % kAlign != 0) break;  // a short write leaves an unaligned offset
      }
      if (::fcntl(fd, F_SETFL, flags) != 0) return ErrnoStatus("fcntl " + path, errno);
    }
  }
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : FailedPrecondition(dir + " is not a directory");
  }
  size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir " + dir, errno);
  }
  return Status::Ok();
}

std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(rng() & 0xffffffff);
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory " + dir, errno);
  Fd guard(fd);
  if (::fsync(fd) != 0 && errno != EINVAL) return ErrnoStatus("fsync directory " + dir, errno);
  return Status::Ok();
}

Status ValidateName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') {
    return InvalidArgument("invalid object name \"" + std::string(name) + "\"");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.starts_with(kTempPrefix) ||
        part.find('\0') != std::string_view::npos) {
      return InvalidArgument("invalid object name \"" + std::string(name) + "\"");
    }
    start = end + 1;
  }
  return Status::Ok();
}

Status Walk(const std::string& dir, const std::string& rel,
            const std::function<Status(const ObjectInfo&)>& visit) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT && !rel.empty()) return Status::Ok();
    return ErrnoStatus("list " + dir, errno);
  }
  std::vector<std::pair<std::string, bool>> entries;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == ".." || n.starts_with(kTempPrefix)) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        is_dir = S_ISDIR(st.st_mode);
      }
    }
    entries.emplace_back(std::string(n), is_dir);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus("list " + dir, err);
  for (const auto& [n, is_dir] : entries) {
    std::string path = dir + "/" + n;
    std::string name = rel.empty() ? n : rel + "/" + n;
    if (is_dir) {
      RETURN_IF_ERROR(Walk(path, name, visit));
      continue;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // deleted while listing
      return ErrnoStatus("stat " + path, errno);
    }
    if (!S_ISREG(st.st_mode)) continue;
    RETURN_IF_ERROR(visit(ObjectInfo{name, static_cast<uint64_t>(st.st_size), st.st_mtime}));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Backend>> FileBackend::Open(const std::string& root, bool create) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) {
    if (errno == ENOENT && create) {
      RETURN_IF_ERROR(MakeDirs(root));
    } else {
      return ErrnoStatus("repository directory " + root, errno);
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument("repository path " + root + " is not a directory");
  }
  return std::unique_ptr<Backend>(new FileBackend(root));
}

Result<std::string> FileBackend::PathOf(std::string_view name) const {
  RETURN_IF_ERROR(ValidateName(name));
  return root_ + "/" + std::string(name);
}

Status FileBackend::Put(std::string_view name, ByteSpan data) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  std::string dir = path.substr(0, path.rfind('/'));
  std::string tmp = dir + "/" + std::string(kTempPrefix) + TempSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT) {
    RETURN_IF_ERROR(MakeDirs(dir));
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  }
  if (fd < 0) return ErrnoStatus("create " + tmp, errno);
  Fd guard(fd);
  Status st = WriteNewFile(fd, data, tmp);
  if (st.ok() && ::fdatasync(fd) != 0) st = ErrnoStatus("fsync " + tmp, errno);
  if (st.ok()) st = Failpoint("file.put.before_rename");
  if (st.ok() && ::close(guard.Release()) != 0) st = ErrnoStatus("close " + tmp, errno);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = ErrnoStatus("rename " + tmp + " to " + path, errno);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return SyncDir(dir);
}

Result<Bytes> FileBackend::Get(std::string_view name) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  Fd guard(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat " + path, errno);
  Bytes out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

Result<Bytes> FileBackend::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  Bytes out;
  RETURN_IF_ERROR(GetRangeInto(name, offset, length, &out));
  return out;
}

Status FileBackend::GetRangeInto(std::string_view name, uint64_t offset, uint64_t length,
                                 Bytes* out) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  Fd guard(fd);
  // Ranges of packs are read once (restore, check, repack): no LRU promotion.
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_NOREUSE);
  out->resize(length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out->data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path, errno);
    }
    if (n == 0) {
      return Corruption(path + " is shorter than expected: wanted bytes " + std::to_string(offset) +
                        "+" + std::to_string(length) + ", object ends at " +
                        std::to_string(offset + done));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<ObjectInfo> FileBackend::Stat(std::string_view name) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  return ObjectInfo{std::string(name), static_cast<uint64_t>(st.st_size), st.st_mtime};
}

Status FileBackend::Delete(std::string_view name) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("delete " + path, errno);
  }
  return Status::Ok();
}

Status FileBackend::List(std::string_view prefix,
                         const std::function<Status(const ObjectInfo&)>& visit) {
  // Listing is by directory: "data/" walks data/, "" walks everything, and a
  // prefix that is not a directory filters the parent directory's entries.
  std::string p(prefix);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) return Walk(root_, "", visit);
  RETURN_IF_ERROR(ValidateName(p));
  struct stat st;
  std::string path = root_ + "/" + p;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Walk(path, p, visit);
  }
  size_t slash = p.rfind('/');
  std::string parent = slash == std::string::npos ? "" : p.substr(0, slash);
  std::string parent_path = parent.empty() ? root_ : root_ + "/" + parent;
  if (::stat(parent_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("stat " + parent_path, errno);
  }
  return Walk(parent_path, parent, [&](const ObjectInfo& info) -> Status {
    if (info.name.starts_with(std::string(prefix))) return visit(info);
    return Status::Ok();
  });
}

Result<uint64_t> FileBackend::RemoveStaleTemporaries(int64_t older_than_unix) {
  uint64_t removed = 0;
  std::vector<std::string> dirs = {root_};
  while (!dirs.empty()) {
    std::string dir = std::move(dirs.back());
    dirs.pop_back();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("list " + dir, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    for (const std::string& n : names) {
      std::string path = dir + "/" + n;
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        dirs.push_back(path);
      } else if (std::string_view(n).starts_with(kTempPrefix) && st.st_mtime < older_than_unix) {
        if (::unlink(path.c_str()) == 0) ++removed;
      }
    }
  }
  return removed;
}

}  // namespace bunker::backend
