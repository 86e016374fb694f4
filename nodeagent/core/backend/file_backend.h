#pragma once

// FileBackend: a repository in a local directory (file:// locations, and the
// embedded default). Objects are files under the root; a name's slashes are
// directories. Put writes a hidden temporary file in the target directory,
// fsyncs it, renames it over the name and fsyncs the directory, so an object
// is either absent or complete even across a crash. Listing skips temporary
// files. Thread-safe: no mutable state beyond the file system.

#include <memory>
#include <string>

#include "nodeagent/core/backend/backend.h"

namespace bunker::backend {

class FileBackend final : public Backend {
 public:
  // `root` must be an existing directory (absolute path).
  static Result<std::unique_ptr<Backend>> Open(const std::string& root, bool create);

  std::string Describe() const override { return "file://" + root_; }
  // A rename is visible to the next readdir on a local file system.
  std::chrono::milliseconds ListSettleTime() const override { return std::chrono::milliseconds(0); }
  Status Put(std::string_view name, ByteSpan data) override;
  Result<Bytes> Get(std::string_view name) override;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  Status GetRangeInto(std::string_view name, uint64_t offset, uint64_t length, Bytes* out) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  Status Delete(std::string_view name) override;
  Status List(std::string_view prefix,
              const std::function<Status(const ObjectInfo&)>& visit) override;
  Result<uint64_t> RemoveStaleTemporaries(int64_t older_than_unix) override;

 private:
  explicit FileBackend(std::string root) : root_(std::move(root)) {}
  Result<std::string> PathOf(std::string_view name) const;

  const std::string root_;
};

}  // namespace bunker::backend
