#pragma once

// Opening, classifying and sizing the files and block devices that hold
// volumes (internal to nodeagent/core/io).
//
// Thread-safety: free functions; UniqueFd is a value owned by one object.

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "nodeagent/core/util/status.h"

namespace bunker::io::internal {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Take()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Take() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset();
  // close(2), reporting its error (deferred write-back errors show up here).
  Status Close(std::string_view what);

 private:
  int fd_ = -1;
};

// "regular file", "directory", "character device", "FIFO", ...
std::string_view FileTypeName(mode_t mode);

// InvalidArgument naming the path and what it is, for anything that is
// neither a regular file nor a block device.
Status NotAVolume(const std::string& path, mode_t mode);

// Size in bytes of the open block device `fd` (ioctl BLKGETSIZE64).
Result<uint64_t> BlockDeviceSize(int fd, const std::string& path);

struct OpenedVolume {
  UniqueFd fd;
  uint64_t size = 0;
  bool is_block_device = false;
  bool direct = false;  // O_DIRECT in effect
};

// Opens a regular file or block device read-only, with O_DIRECT when
// `direct` and the file system accepts it (EINVAL at open: buffered, logged at
// info). Never opens other kinds of file (a FIFO would block, a tape device
// rewind): they are InvalidArgument. NotFound / PermissionDenied from errno.
Result<OpenedVolume> OpenVolumeForRead(const std::string& path, bool direct);

// Clears O_DIRECT on `fd` after the file system refused an O_DIRECT read, so
// later reads are buffered. In-flight reads keep the flags they started with.
Status ClearDirect(int fd, const std::string& path);

}  // namespace bunker::io::internal
