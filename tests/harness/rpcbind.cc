#include "tests/harness/rpcbind.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "tests/harness/fd.h"
#include "tests/harness/ports.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint16_t kPortmapperPort = 111;

fs::path StateDir() {
  std::error_code ec;
  fs::path run_lock = "/run/lock";
  if (fs::is_directory(run_lock, ec) && access(run_lock.c_str(), W_OK) == 0) {
    return run_lock;
  }
  return fs::temp_directory_path(ec);
}

fs::path StatePath(const char* suffix) {
  return StateDir() / (std::string("bunker-test-rpcbind.") + suffix);
}

Result<Fd> OpenLocked(const fs::path& path, int operation) {
  Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (!fd.valid()) {
    return ErrnoStatus("open " + path.string(), errno);
  }
  int r;
  do {
    r = flock(fd.get(), operation);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    return ErrnoStatus("flock " + path.string(), errno);
  }
  return fd;
}

// Field 22 of /proc/PID/stat (start time in clock ticks) and the state letter;
// identifies a process across PID reuse. Empty if it does not exist.
struct ProcInfo {
  std::string comm;
  char state = '?';
  unsigned long long start_time = 0;
};

std::optional<ProcInfo> ReadProcInfo(pid_t pid) {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) {
    return std::nullopt;
  }
  const std::string& s = *stat;
  const size_t open_paren = s.find('(');
  const size_t close_paren = s.rfind(')');
  if (open_paren == std::string::npos || close_paren == std::string::npos ||
      close_paren < open_paren) {
    return std::nullopt;
  }
  ProcInfo info;
  info.comm = s.substr(open_paren + 1, close_paren - open_paren - 1);
  std::istringstream rest(s.substr(close_paren + 1));
  rest >> info.state;
  std::string field;
  // Fields 4..21 come before starttime (field 22); state was field 3.
  for (int i = 4; i <= 21 && rest; ++i) {
    rest >> field;
  }
  rest >> info.start_time;
  if (!rest) {
    return std::nullopt;
  }
  return info;
}

bool Gone(pid_t pid) {
  std::optional<ProcInfo> info = ReadProcInfo(pid);
  return !info || info->state == 'Z' || info->state == 'X';
}

// The rpcbind this process started, if any, so that it can be reaped here.
pid_t g_own_rpcbind = 0;

Status StartRpcbind(milliseconds timeout) {
  const fs::path log = StatePath("log");
  ASSIGN_OR_RETURN(const fs::path rpcbind, FindExecutable("rpcbind"));
  SpawnOptions options;
  options.log_path = log;
  options.die_with_parent = false;  // shared with other test processes
  // -f: stay in the foreground (this PID is rpcbind's); -w: warm start.
  ASSIGN_OR_RETURN(Process process, Process::Start({rpcbind.string(), "-f", "-w"}, options));
  const auto deadline = Clock::now() + timeout;
  while (!PortAcceptsConnections(kPortmapperPort)) {
    if (!process.Running() || Clock::now() >= deadline) {
      const std::string how = process.Stop(milliseconds(500));
      Result<std::string> text = ReadFile(log);
      return Unavailable("rpcbind did not listen on 127.0.0.1:111 (" + how + "); its log:\n" +
                         (text.ok() ? *text : text.status().ToString()));
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  const pid_t pid = process.pid();
  std::optional<ProcInfo> info = ReadProcInfo(pid);
  if (!info) {
    process.Stop(milliseconds(500));
    return Unavailable("rpcbind exited right after starting");
  }
  RETURN_IF_ERROR(WriteFile(StatePath("pid"),
                            std::to_string(pid) + " " + std::to_string(info->start_time) + "\n"));
  g_own_rpcbind = process.Release();
  return Status::Ok();
}

// Stops the rpcbind recorded in the pid file, if it is still that process.
void StopHarnessRpcbind() {
  const fs::path pid_file = StatePath("pid");
  Result<std::string> text = ReadFile(pid_file);
  if (!text.ok()) {
    return;  // the running rpcbind (if any) is not ours
  }
  std::istringstream in(*text);
  pid_t pid = 0;
  unsigned long long start_time = 0;
  in >> pid >> start_time;
  std::error_code ec;
  fs::remove(pid_file, ec);
  std::optional<ProcInfo> info = ReadProcInfo(pid);
  if (pid <= 0 || !info || info->comm != "rpcbind" || info->start_time != start_time) {
    return;  // gone, or the PID now belongs to someone else
  }
  kill(pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!Gone(pid) && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (!Gone(pid)) {
    kill(pid, SIGKILL);
  }
  if (pid == g_own_rpcbind) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    g_own_rpcbind = 0;
  }
}

}  // namespace

Result<RpcbindLease> RpcbindLease::Acquire(milliseconds start_timeout) {
  ASSIGN_OR_RETURN(Fd mutex, OpenLocked(StatePath("mutex"), LOCK_EX));
  ASSIGN_OR_RETURN(Fd users, OpenLocked(StatePath("users"), LOCK_SH));
  if (!PortAcceptsConnections(kPortmapperPort)) {
    RETURN_IF_ERROR(StartRpcbind(start_timeout));
  }
  return RpcbindLease(users.Release());
}

RpcbindLease::RpcbindLease(RpcbindLease&& other) noexcept
    : users_fd_(std::exchange(other.users_fd_, -1)) {}

RpcbindLease& RpcbindLease::operator=(RpcbindLease&& other) noexcept {
  if (this != &other) {
    Release();
    users_fd_ = std::exchange(other.users_fd_, -1);
  }
  return *this;
}

RpcbindLease::~RpcbindLease() { Release(); }

void RpcbindLease::Release() noexcept {
  if (users_fd_ < 0) {
    return;
  }
  try {
    ReleaseShare();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[harness] releasing rpcbind: %s\n", e.what());
  }
  if (users_fd_ >= 0) {
    close(std::exchange(users_fd_, -1));
  }
}

void RpcbindLease::ReleaseShare() {
  Result<Fd> mutex = OpenLocked(StatePath("mutex"), LOCK_EX);
  close(std::exchange(users_fd_, -1));
  if (!mutex.ok()) {
    std::fprintf(stderr, "[harness] rpcbind left running: %s\n", mutex.status().ToString().c_str());
    return;
  }
  if (OpenLocked(StatePath("users"), LOCK_EX | LOCK_NB).ok()) {
    StopHarnessRpcbind();  // nobody else holds a share
  }
}

Result<RpcRegistrationLock> RpcRegistrationLock::Acquire(milliseconds timeout) {
  const fs::path path = StatePath("register");
  Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (!fd.valid()) {
    return ErrnoStatus("open " + path.string(), errno);
  }
  const auto deadline = Clock::now() + timeout;
  while (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK && err != EINTR) {
      return ErrnoStatus("flock " + path.string(), err);
    }
    if (Clock::now() >= deadline) {
      return Unavailable("another test server held " + path.string() + " for " +
                         std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return RpcRegistrationLock(fd.Release());
}

RpcRegistrationLock::RpcRegistrationLock(RpcRegistrationLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

RpcRegistrationLock& RpcRegistrationLock::operator=(RpcRegistrationLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

RpcRegistrationLock::~RpcRegistrationLock() { Release(); }

void RpcRegistrationLock::Release() noexcept {
  if (fd_ >= 0) {
    close(std::exchange(fd_, -1));
  }
}

}  // namespace bunker::testing
