#pragma once

// Helpers shared by the nodeagent/core/io tests: temp dirs, deterministic
// content, scoped environment variables, log capture, loop devices and the
// fault-injection hook.

#include <fcntl.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "nodeagent/core/io/fault_injection.h"
#include "nodeagent/core/util/bytes.h"

namespace bunker::io::test {

// A fresh directory under `base` (default: the system temp dir), removed
// with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    std::string tmpl = (base / "bunker-io-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// `size` pseudo-random bytes, the same for the same seed (splitmix64).
inline Bytes MakeContent(size_t size, uint64_t seed) {
  Bytes out(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < size; i += 8) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    std::memcpy(out.data() + i, &z, std::min<size_t>(8, size - i));
  }
  return out;
}

inline void WriteFile(const std::string& path, const Bytes& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      std::perror("write");
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

inline Bytes ReadFile(const std::string& path) {
  Bytes out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return out;
  }
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

// Sets (or, with nullopt, unsets) an environment variable for a scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Captures what spdlog's default logger writes while in scope.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    sink_->set_pattern("%l %v");
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    std::erase(sinks, sink_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return out_.str(); }
  int Count(const std::string& needle) const {
    std::string s = out_.str();
    int n = 0;
    for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

// Installs a fault hook for a scope.
class ScopedFaultHook {
 public:
  explicit ScopedFaultHook(internal::FaultHook hook) {
    internal::SetFaultHookForTest(std::move(hook));
  }
  ~ScopedFaultHook() { internal::SetFaultHookForTest(nullptr); }
  ScopedFaultHook(const ScopedFaultHook&) = delete;
  ScopedFaultHook& operator=(const ScopedFaultHook&) = delete;
};

// Runs a shell command, returning its exit status and output (stdout+stderr).
inline std::pair<int, std::string> RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    return {-1, std::strerror(errno)};
  }
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) {
    out += buf;
  }
  int rc = ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  return {rc, out};
}

// A loop device over a backing file, detached on destruction. Attach()
// returns nullopt and the reason when the environment has no loop devices
// (not root, no /dev/loop-control, a container without them).
class LoopDevice {
 public:
  static std::unique_ptr<LoopDevice> Attach(const std::string& backing_file, std::string* why) {
    if (::geteuid() != 0) {
      *why = "loop devices need root";
      return nullptr;
    }
    auto [rc, out] = RunCommand("losetup -f --show '" + backing_file + "'");
    if (rc != 0 || out.rfind("/dev/", 0) != 0) {
      *why = "losetup -f --show failed: " + out;
      return nullptr;
    }
    return std::unique_ptr<LoopDevice>(new LoopDevice(out));
  }
  ~LoopDevice() { RunCommand("losetup -d '" + device_ + "'"); }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  const std::string& device() const { return device_; }

 private:
  explicit LoopDevice(std::string device) : device_(std::move(device)) {}
  std::string device_;
};

// The st_blocks of a file, in bytes.
inline uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return 0;
  }
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace bunker::io::test
