#pragma once

// Temporary directories for tests, created with mkdtemp and removed with
// everything in them when the owning TempDir is destroyed.
//
// Set BUNKER_TEST_KEEP_TMP=1 in the environment to keep them for a post-mortem
// (their paths are printed when kept).

#include <filesystem>
#include <string>
#include <string_view>

#include "nodeagent/core/util/status.h"

namespace bunker::testing {

// Owns one directory. Move-only; not thread-safe.
class TempDir {
 public:
  // Creates "<base>/<prefix>-XXXXXX" where base is $TMPDIR, else the system
  // temp directory. The path is canonical (no symlinks), so it can be used
  // verbatim as an NFS export path.
  static Result<TempDir> Create(std::string_view prefix = "bunker-test");

  TempDir() = default;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

  // path() / name, creating it as a directory (and its parents).
  Result<std::filesystem::path> MakeSubdir(std::string_view name) const;

  // Leaves the directory on disk at destruction.
  void Keep() { keep_ = true; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  void Remove();

  std::filesystem::path path_;
  bool keep_ = false;
};

// Reads a whole file; NotFound / IOError on failure.
Result<std::string> ReadFile(const std::filesystem::path& path);

// Creates or truncates `path` and writes `contents`.
Status WriteFile(const std::filesystem::path& path, std::string_view contents);

}  // namespace bunker::testing
