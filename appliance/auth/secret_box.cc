#include "appliance/auth/secret_box.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace bunker::auth {
namespace {

Status ReadAll(int fd, MutableByteSpan out, const std::string& path) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return ErrnoStatus("read key file " + path, errno);
    }
    if (n == 0) {
      return Corruption("key file " + path + " is shorter than 32 bytes");
    }
    done += static_cast<size_t>(n);
  }
  char extra;
  if (read(fd, &extra, 1) != 0) {
    return Corruption("key file " + path + " is not 32 bytes");
  }
  return Status::Ok();
}

Result<crypto::Key> LoadKey(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return ErrnoStatus("open key file " + path, errno);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus("stat key file " + path, err);
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return PermissionDenied("key file " + path + " is accessible by group or others; chmod 600 it");
  }
  crypto::Key key{};
  Status read_status = ReadAll(fd, key, path);
  close(fd);
  RETURN_IF_ERROR(read_status);
  return key;
}

Result<crypto::Key> CreateKey(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return ErrnoStatus("create key file " + path, errno);
  }
  crypto::Key key = crypto::RandomKey();
  ssize_t n = write(fd, key.data(), key.size());
  int err = errno;
  bool synced = n == static_cast<ssize_t>(key.size()) && fsync(fd) == 0;
  close(fd);
  if (!synced) {
    unlink(path.c_str());
    return ErrnoStatus("write key file " + path, err == 0 ? EIO : err);
  }
  return key;
}

}  // namespace

Result<std::unique_ptr<SecretBox>> SecretBox::OpenOrCreate(const std::string& path) {
  Result<crypto::Key> key = LoadKey(path);
  if (!key.ok() && key.status().code() == Code::kNotFound) {
    key = CreateKey(path);
    if (!key.ok() && key.status().code() == Code::kAlreadyExists) {
      key = LoadKey(path);  // another process created it meanwhile
    }
  }
  if (!key.ok()) {
    return key.status();
  }
  return std::make_unique<SecretBox>(*key);
}

Result<Bytes> SecretBox::Seal(std::string_view plaintext, std::string_view aad) const {
  crypto::Aead aead(key_);
  Bytes out;
  RETURN_IF_ERROR(aead.Seal(AsBytes(plaintext), AsBytes(aad), &out));
  return out;
}

Result<std::string> SecretBox::Open(ByteSpan sealed, std::string_view aad) const {
  crypto::Aead aead(key_);
  Bytes out;
  RETURN_IF_ERROR_CTX(aead.Open(sealed, AsBytes(aad), &out), "open sealed secret");
  return std::string(AsChars(out));
}

}  // namespace bunker::auth
