#include "nodeagent/core/mover/file_os.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace bunker::mover {

namespace {

constexpr int kMaxRemoveDepth = 4096;

bool NoXattrSupport(int err) { return err == ENOTSUP || err == ENOSYS; }

// Lists and reads attributes through `list(buf, size)` and
// `get(name, buf, size)` (the f* or l* calls), retrying on ERANGE when an
// attribute grows between the size query and the read.
template <typename ListFn, typename GetFn>
Result<Xattrs> ReadXattrs(ListFn list, GetFn get, std::string_view what) {
  Xattrs out;
  std::string names;
  for (int attempt = 0;; ++attempt) {
    ssize_t n = list(nullptr, 0);
    if (n < 0) {
      if (NoXattrSupport(errno)) return out;
      return ErrnoStatus("list extended attributes of " + std::string(what), errno);
    }
    if (n == 0) return out;
    names.resize(static_cast<size_t>(n));
    n = list(names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno != ERANGE || attempt > 8) {
      return ErrnoStatus("list extended attributes of " + std::string(what), errno);
    }
  }
  Bytes value;
  for (size_t pos = 0; pos < names.size();) {
    size_t end = names.find('\0', pos);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(pos, end - pos);
    pos = end + 1;
    if (name.empty()) continue;
    for (int attempt = 0;; ++attempt) {
      ssize_t n = get(name.c_str(), nullptr, 0);
      if (n >= 0) {
        value.resize(static_cast<size_t>(n));
        n = get(name.c_str(), value.data(), value.size());
      }
      if (n >= 0) {
        value.resize(static_cast<size_t>(n));
        out.emplace_back(std::move(name), value);
        break;
      }
      if (errno == ENODATA) break;  // removed since the listing
      if (errno != ERANGE || attempt > 8) {
        return ErrnoStatus("read extended attribute " + name + " of " + std::string(what), errno);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void Fd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status Fd::Close(std::string_view what) {
  if (fd_ < 0) return Status::Ok();
  int rc = ::close(std::exchange(fd_, -1));
  if (rc != 0 && errno != EINTR) return ErrnoStatus("close " + std::string(what), errno);
  return Status::Ok();
}

int WorkerCount(int requested, int min) {
  if (requested > 0) return requested;
  return std::max(min, static_cast<int>(std::thread::hardware_concurrency()));
}

Result<std::vector<std::string>> ListDirectory(int dirfd, std::string_view what) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus("list directory " + std::string(what), errno);
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup);
    return ErrnoStatus("list directory " + std::string(what), err);
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(dir);
    if (e == nullptr) {
      int err = errno;
      ::closedir(dir);
      if (err != 0) return ErrnoStatus("list directory " + std::string(what), err);
      break;
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<Xattrs> ReadXattrsFd(int fd, std::string_view what) {
  return ReadXattrs(
      [fd](char* buf, size_t size) { return ::flistxattr(fd, buf, size); },
      [fd](const char* name, void* buf, size_t size) { return ::fgetxattr(fd, name, buf, size); },
      what);
}

Result<Xattrs> ReadXattrsPath(const std::string& path, std::string_view what) {
  const char* p = path.c_str();
  return ReadXattrs(
      [p](char* buf, size_t size) { return ::llistxattr(p, buf, size); },
      [p](const char* name, void* buf, size_t size) { return ::lgetxattr(p, name, buf, size); },
      what);
}

int SetXattrFd(int fd, const std::string& name, ByteSpan value) {
  return ::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) == 0 ? 0 : errno;
}

int SetXattrPath(const std::string& path, const std::string& name, ByteSpan value) {
  return ::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) == 0 ? 0 : errno;
}

std::string ProcFdPath(int dirfd, std::string_view name) {
  std::string p = "/proc/self/fd/" + std::to_string(dirfd) + "/";
  p.append(name);
  return p;
}

Status RemoveTreeAt(int dirfd, const std::string& name, std::string_view what, int depth) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("stat " + std::string(what), errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0) {
      return ErrnoStatus("remove " + std::string(what), errno);
    }
    return Status::Ok();
  }
  if (depth > kMaxRemoveDepth) return IOError("remove " + std::string(what) + ": nested too deep");
  {
    Fd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.valid()) return ErrnoStatus("open " + std::string(what), errno);
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(sub.get(), what));
    for (const std::string& child : names) {
      RETURN_IF_ERROR(RemoveTreeAt(sub.get(), child, std::string(what) + "/" + child, depth + 1));
    }
  }
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoStatus("remove directory " + std::string(what), errno);
  }
  return Status::Ok();
}

}  // namespace bunker::mover
