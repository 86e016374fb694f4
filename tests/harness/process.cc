#include "tests/harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

#include "tests/harness/fd.h"

extern char** environ;  // NOLINT: POSIX global

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool IsExecutableFile(const fs::path& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// The inherited environment with `changes` applied, as "KEY=VALUE" strings.
std::vector<std::string> BuildEnvironment(const EnvChanges& changes) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    env.emplace_back(*e);
  }
  for (const std::string& change : changes) {
    const std::string key = change.substr(0, change.find('='));
    std::erase_if(env, [&key](const std::string& entry) {
      return entry.size() > key.size() && entry.compare(0, key.size(), key) == 0 &&
             entry[key.size()] == '=';
    });
    if (change.find('=') != std::string::npos) {
      env.push_back(change);
    }
  }
  return env;
}

std::vector<char*> CStringArray(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// What the child failed at before or during exec, reported through a pipe.
enum class ChildStage : int { kSetup = 1, kChdir = 2, kExec = 3 };
struct ChildError {
  ChildStage stage;
  int err;
};

[[noreturn]] void ChildFail(int error_fd, ChildStage stage) {
  const ChildError e{stage, errno};
  // Nothing useful to do if this write fails: the parent then sees EOF and
  // the exit status 127.
  [[maybe_unused]] ssize_t n = write(error_fd, &e, sizeof(e));
  _exit(127);
}

struct ChildStdio {
  int in;
  int out;
  int err;
};

// fork + execve with the given stdio. Only async-signal-safe calls happen
// between fork and exec, so this is safe in a multi-threaded process.
Result<pid_t> ForkExec(const std::vector<std::string>& argv, const EnvChanges& env_changes,
                       const fs::path& cwd, ChildStdio stdio, bool die_with_parent) {
  if (argv.empty()) {
    return InvalidArgument("empty argv");
  }
  ASSIGN_OR_RETURN(const fs::path exe, FindExecutable(argv[0]));

  std::vector<std::string> args = argv;
  std::vector<std::string> env = BuildEnvironment(env_changes);
  std::vector<char*> c_args = CStringArray(args);
  std::vector<char*> c_env = CStringArray(env);
  const std::string exe_str = exe.string();
  const std::string cwd_str = cwd.string();

  std::array<int, 2> error_pipe{};
  if (pipe2(error_pipe.data(), O_CLOEXEC) != 0) {
    return ErrnoStatus("pipe", errno);
  }
  Fd error_read(error_pipe[0]);
  Fd error_write(error_pipe[1]);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    return ErrnoStatus("fork", errno);
  }
  if (pid == 0) {
    // Child.
    const int efd = error_write.get();
    if (die_with_parent) {
      if (setpgid(0, 0) != 0) {
        ChildFail(efd, ChildStage::kSetup);
      }
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        ChildFail(efd, ChildStage::kSetup);
      }
      if (getppid() != parent) {
        _exit(127);  // the parent died before prctl took effect
      }
    } else if (setsid() < 0) {
      ChildFail(efd, ChildStage::kSetup);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig :
         {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2}) {
      signal(sig, SIG_DFL);
    }
    const std::array<int, 3> from{stdio.in, stdio.out, stdio.err};
    for (int target = 0; target < 3; ++target) {
      const int source = from[static_cast<size_t>(target)];
      if (source == target) {
        if (fcntl(target, F_SETFD, 0) != 0) {
          ChildFail(efd, ChildStage::kSetup);
        }
      } else if (dup2(source, target) < 0) {
        ChildFail(efd, ChildStage::kSetup);
      }
    }
    if (!cwd_str.empty() && chdir(cwd_str.c_str()) != 0) {
      ChildFail(efd, ChildStage::kChdir);
    }
    // Nothing but stdio crosses exec.
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 65536; ++fd) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    execve(exe_str.c_str(), c_args.data(), c_env.data());
    ChildFail(efd, ChildStage::kExec);
  }

  // Parent. Also set the child's group here so that signalling -pid works
  // even before the child has run (the classic race shells close this way).
  if (die_with_parent) {
    setpgid(pid, pid);
  }
  error_write.Reset();
  ChildError child_error{};
  ssize_t n;
  do {
    n = read(error_read.get(), &child_error, sizeof(child_error));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(child_error))) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    switch (child_error.stage) {
      case ChildStage::kChdir:
        return ErrnoStatus("chdir " + cwd_str + " for " + exe_str, child_error.err);
      case ChildStage::kExec:
        return ErrnoStatus("exec " + exe_str, child_error.err);
      case ChildStage::kSetup:
        break;
    }
    return ErrnoStatus("set up child for " + exe_str, child_error.err);
  }
  return pid;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) {
    return "exit " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "signal " + std::to_string(WTERMSIG(status)) +
           (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "status " + std::to_string(status);
}

enum class ChildState { kRunning, kExited, kGone };

// Whether `pid` (our child) runs, has exited (a zombie: not reaped here, so
// its PID and process group id stay reserved), or is gone: reaped by someone
// else (e.g. SIGCHLD ignored), after which its PID may name another process.
ChildState CheckChild(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD ? ChildState::kGone : ChildState::kRunning;
  }
  return info.si_pid == pid ? ChildState::kExited : ChildState::kRunning;
}

bool HasExited(pid_t pid) { return CheckChild(pid) != ChildState::kRunning; }

// Signals the child's process group, or the child alone when it has no group
// of its own yet.
void SignalGroup(pid_t pid, int sig) {
  if (kill(-pid, sig) != 0) {
    kill(pid, sig);
  }
}

// Appends what is available on `fd` to `out`; false at EOF or on error.
bool DrainInto(int fd, std::string& out) {
  std::array<char, 65536> buf{};
  const ssize_t n = read(fd, buf.data(), buf.size());
  if (n > 0) {
    out.append(buf.data(), static_cast<size_t>(n));
    return true;
  }
  return n < 0 && (errno == EINTR || errno == EAGAIN);
}

std::string Truncated(const std::string& s) {
  constexpr size_t kMax = 8192;
  if (s.size() <= kMax) {
    return s;
  }
  return "[… " + std::to_string(s.size() - kMax) + " bytes omitted …]\n" +
         s.substr(s.size() - kMax);
}

}  // namespace

Result<fs::path> FindExecutable(const std::string& name) {
  if (name.empty()) {
    return InvalidArgument("empty executable name");
  }
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(name)) {
      return fs::path(name);
    }
    return NotFound("executable " + name + " does not exist or is not executable");
  }
  std::string dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    dirs = path;
  }
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin";
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    const std::string_view dir(dirs.data() + begin, end - begin);
    if (!dir.empty()) {
      fs::path candidate = fs::path(dir) / name;
      if (IsExecutableFile(candidate)) {
        return candidate;
      }
    }
    begin = end + 1;
  }
  return NotFound("executable " + name + " not found in PATH or the sbin directories");
}

std::string RunResult::Describe() const {
  std::string s;
  if (timed_out) {
    s = "timed out after " + std::to_string(elapsed.count()) + " ms and was killed";
  } else if (term_signal != 0) {
    s = "killed by signal " + std::to_string(term_signal);
  } else {
    s = "exited with " + std::to_string(exit_code);
  }
  s += "\n--- stdout ---\n" + Truncated(out) + "\n--- stderr ---\n" + Truncated(err);
  return s;
}

Result<RunResult> RunCommand(const std::vector<std::string>& argv, const RunOptions& options) {
  const auto start = Clock::now();
  std::array<int, 2> out_pipe{};
  std::array<int, 2> err_pipe{};
  if (pipe2(out_pipe.data(), O_CLOEXEC) != 0) {
    return ErrnoStatus("pipe", errno);
  }
  Fd out_read(out_pipe[0]);
  Fd out_write(out_pipe[1]);
  if (pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    return ErrnoStatus("pipe", errno);
  }
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);
  // stdin is a socket so that writing to a child that already exited fails
  // with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE in the test.
  Fd in_parent;
  Fd in_child;
  if (options.stdin_data.empty()) {
    in_child.Reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_child.valid()) {
      return ErrnoStatus("open /dev/null", errno);
    }
  } else {
    std::array<int, 2> sv{};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv.data()) != 0) {
      return ErrnoStatus("socketpair", errno);
    }
    in_parent.Reset(sv[0]);
    in_child.Reset(sv[1]);
    shutdown(in_parent.get(), SHUT_RD);
  }

  ASSIGN_OR_RETURN(const pid_t pid, ForkExec(argv, options.env, options.cwd,
                                             {in_child.get(), out_write.get(), err_write.get()},
                                             /*die_with_parent=*/true));
  in_child.Reset();
  out_write.Reset();
  err_write.Reset();

  // Readable once the child exits. (glibc 2.36's <sys/pidfd.h> lacks C
  // linkage for C++, hence the raw syscall.) Without it, exits are polled.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  RunResult result;
  size_t stdin_written = 0;
  bool exited = false;
  bool killed = false;
  auto deadline = start + options.timeout;
  while (!(exited && !out_read.valid() && !err_read.valid())) {
    auto now = Clock::now();
    if (now >= deadline) {
      if (killed) {
        break;  // something outside the group holds the pipes: stop draining
      }
      SignalGroup(pid, SIGKILL);
      killed = true;
      result.timed_out = true;
      deadline = now + std::chrono::seconds(2);
    }
    std::array<pollfd, 4> fds{};
    nfds_t nfds = 0;
    int out_index = -1;
    int err_index = -1;
    int in_index = -1;
    int pid_index = -1;
    if (out_read.valid()) {
      out_index = static_cast<int>(nfds);
      fds[nfds++] = {out_read.get(), POLLIN, 0};
    }
    if (err_read.valid()) {
      err_index = static_cast<int>(nfds);
      fds[nfds++] = {err_read.get(), POLLIN, 0};
    }
    if (in_parent.valid()) {
      in_index = static_cast<int>(nfds);
      fds[nfds++] = {in_parent.get(), POLLOUT, 0};
    }
    if (!exited) {
      if (pidfd.valid()) {
        pid_index = static_cast<int>(nfds);
        fds[nfds++] = {pidfd.get(), POLLIN, 0};
      } else if (HasExited(pid)) {
        exited = true;
      }
    }
    auto wait_ms = std::chrono::duration_cast<milliseconds>(deadline - now).count() + 1;
    if (!exited && !pidfd.valid()) {
      wait_ms = std::min<int64_t>(wait_ms, 20);  // no pidfd: poll for the exit
    }
    const int ready = poll(fds.data(), nfds, static_cast<int>(wait_ms));
    if (ready < 0 && errno != EINTR) {
      return ErrnoStatus("poll", errno);
    }
    if (ready <= 0) {
      continue;
    }
    auto fired = [&fds](int index) {
      return index >= 0 && fds[static_cast<size_t>(index)].revents != 0;
    };
    if (fired(out_index) && !DrainInto(out_read.get(), result.out)) {
      out_read.Reset();
    }
    if (fired(err_index) && !DrainInto(err_read.get(), result.err)) {
      err_read.Reset();
    }
    if (fired(in_index)) {
      const std::string& data = options.stdin_data;
      const ssize_t n = send(in_parent.get(), data.data() + stdin_written,
                             data.size() - stdin_written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        stdin_written += static_cast<size_t>(n);
      }
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_written == data.size()) {
        in_parent.Reset();  // EOF for the child (or it stopped reading)
      }
    }
    if (fired(pid_index)) {
      exited = true;
    }
  }
  if (!exited && !killed) {
    SignalGroup(pid, SIGKILL);  // left the loop early (draining gave up)
  }
  if (exited && (out_read.valid() || err_read.valid())) {
    SignalGroup(pid, SIGKILL);  // stragglers in the group still hold the pipes
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return result;
}

Result<Process> Process::Start(const std::vector<std::string>& argv, const SpawnOptions& options) {
  Fd in(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!in.valid()) {
    return ErrnoStatus("open /dev/null", errno);
  }
  Fd out;
  if (options.log_path.empty()) {
    out.Reset(open("/dev/null", O_WRONLY | O_CLOEXEC));
  } else {
    out.Reset(open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  }
  if (!out.valid()) {
    return ErrnoStatus("open log " + options.log_path.string(), errno);
  }
  ASSIGN_OR_RETURN(const pid_t pid,
                   ForkExec(argv, options.env, options.cwd, {in.get(), out.get(), out.get()},
                            options.die_with_parent));
  return Process(pid);
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, 0)),
      reaped_(std::exchange(other.reaped_, false)),
      exit_description_(std::move(other.exit_description_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Stop();
    pid_ = std::exchange(other.pid_, 0);
    reaped_ = std::exchange(other.reaped_, false);
    exit_description_ = std::move(other.exit_description_);
  }
  return *this;
}

Process::~Process() { Stop(); }

bool Process::Running() { return pid_ != 0 && !reaped_ && !HasExited(pid_); }

std::string Process::Stop(milliseconds grace) {
  if (pid_ == 0 || reaped_) {
    return exit_description_.value_or("not started");
  }
  if (CheckChild(pid_) == ChildState::kGone) {
    reaped_ = true;  // its PID may be reused already: signal nothing
    exit_description_ = "reaped elsewhere";
    return *exit_description_;
  }
  if (!HasExited(pid_) && grace.count() > 0) {
    SignalGroup(pid_, SIGTERM);
    const auto deadline = Clock::now() + grace;
    while (!HasExited(pid_) && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  // The child is not reaped yet, so its PID (the group id) cannot have been
  // reused: this reaches only its own group, including anything it left.
  SignalGroup(pid_, SIGKILL);
  Reap(0);
  return exit_description_.value_or("unknown");
}

pid_t Process::Release() {
  const pid_t pid = pid_;
  pid_ = 0;
  reaped_ = false;
  return pid;
}

void Process::Reap(int wait_flags) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, wait_flags);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    reaped_ = true;
    exit_description_ = DescribeWaitStatus(status);
  } else if (r < 0) {
    reaped_ = true;  // ECHILD: reaped elsewhere
    exit_description_ = "reaped elsewhere";
  }
}

}  // namespace bunker::testing
