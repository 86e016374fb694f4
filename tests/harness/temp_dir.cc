#include "tests/harness/temp_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>
#include <vector>

namespace bunker::testing {

namespace fs = std::filesystem;

Result<TempDir> TempDir::Create(std::string_view prefix) {
  std::error_code ec;
  fs::path base;
  if (const char* tmpdir = std::getenv("TMPDIR"); tmpdir != nullptr && *tmpdir != '\0') {
    base = tmpdir;
  } else {
    base = fs::temp_directory_path(ec);
    if (ec) {
      base = "/tmp";
    }
  }
  std::string templ = (base / (std::string(prefix) + "-XXXXXX")).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return ErrnoStatus("mkdtemp " + templ, errno);
  }
  fs::path created(buf.data());
  fs::path canonical = fs::canonical(created, ec);
  if (ec) {
    fs::remove_all(created, ec);
    return IOError("canonical path of " + created.string() + ": " + ec.message());
  }
  return TempDir(std::move(canonical));
}

TempDir::TempDir(TempDir&& other) noexcept
    : path_(std::exchange(other.path_, fs::path())), keep_(std::exchange(other.keep_, false)) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, fs::path());
    keep_ = std::exchange(other.keep_, false);
  }
  return *this;
}

TempDir::~TempDir() { Remove(); }

Result<fs::path> TempDir::MakeSubdir(std::string_view name) const {
  fs::path dir = path_ / name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return IOError("create directory " + dir.string() + ": " + ec.message());
  }
  return dir;
}

void TempDir::Remove() {
  if (path_.empty()) {
    return;
  }
  const char* keep_env = std::getenv("BUNKER_TEST_KEEP_TMP");
  if (keep_ || (keep_env != nullptr && std::string_view(keep_env) == "1")) {
    std::fprintf(stderr, "[harness] keeping %s\n", path_.c_str());
  } else {
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (ec) {
      std::fprintf(stderr, "[harness] could not remove %s: %s\n", path_.c_str(),
                   ec.message().c_str());
    }
  }
  path_.clear();
}

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ErrnoStatus("open " + path.string(), errno);
  }
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return IOError("read " + path.string());
  }
  return contents;
}

Status WriteFile(const fs::path& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return ErrnoStatus("create " + path.string(), errno);
  }
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) {
    return IOError("write " + path.string());
  }
  return Status::Ok();
}

}  // namespace bunker::testing
