#pragma once

// The operating-system side of file mode: owned descriptors, directory
// listing, extended attributes and recursive removal, all relative to
// directory descriptors (never by resolving a caller's path string), plus the
// small concurrency helpers the backup and restore pipelines share.
//
// Thread-safety: free functions are safe from any thread; Fd is owned by one
// object; ErrorSlot is safe from any thread.

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/error_slot.h"
#include "nodeagent/core/util/status.h"

namespace bunker::mover {

// Owns a file descriptor; closes it on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1);
  // Closes now and reports the error close() returned (e.g. a deferred
  // write error on NFS). The Fd is empty afterwards.
  Status Close(std::string_view what);

 private:
  int fd_ = -1;
};

// Workers to run: `requested` if positive, else one per core (at least `min`).
int WorkerCount(int requested, int min = 1);

// The names in the directory open at `dirfd` (without "." and ".."), sorted
// bytewise. `what` names the directory in errors.
Result<std::vector<std::string>> ListDirectory(int dirfd, std::string_view what);

using Xattrs = std::vector<std::pair<std::string, Bytes>>;

// Extended attributes, sorted by name. On file systems without xattr support
// the list is empty. An attribute removed between listing and reading is
// skipped. `path` variants do not follow a final symlink (l*xattr).
Result<Xattrs> ReadXattrsFd(int fd, std::string_view what);
Result<Xattrs> ReadXattrsPath(const std::string& path, std::string_view what);

// Sets one attribute; returns the raw errno (0 on success) so callers decide
// which failures are warnings.
int SetXattrFd(int fd, const std::string& name, ByteSpan value);
int SetXattrPath(const std::string& path, const std::string& name, ByteSpan value);

// "/proc/self/fd/<dirfd>/<name>": a path that reaches `name` in the directory
// open at dirfd without resolving any caller-controlled directory component.
// Used only with the no-follow (l*) calls.
std::string ProcFdPath(int dirfd, std::string_view name);

// Removes `name` in `dirfd` and, if it is a directory, everything below it,
// never following symlinks. NotFound if it does not exist.
Status RemoveTreeAt(int dirfd, const std::string& name, std::string_view what, int depth = 0);

}  // namespace bunker::mover
