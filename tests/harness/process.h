#pragma once

// Child processes for tests: run a command to completion and capture its
// output (RunCommand), or start a long-lived server and stop it by PID
// (Process). No shell is involved anywhere: arguments are an argv vector and
// reach the program verbatim.
//
// Children are started with fork + execve. Each child gets its own process
// group, so stopping or timing out also reaches its own children. By default a
// child is also sent SIGKILL when the thread that started it dies
// (PR_SET_PDEATHSIG), so a crashed or killed test process does not leave
// servers behind; start children from a thread that outlives them (the test's
// main thread does).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nodeagent/core/util/status.h"

namespace bunker::testing {

// Environment changes applied on top of the inherited environment:
// "KEY=VALUE" sets (or overrides) KEY, a bare "KEY" removes it.
using EnvChanges = std::vector<std::string>;

// Finds an executable: `name` itself when it contains a '/', else the first
// match in $PATH, then in /usr/local/sbin, /usr/sbin and /sbin (system daemons
// such as rpcbind live there and PATH may not include them). NotFound if none.
Result<std::filesystem::path> FindExecutable(const std::string& name);

struct RunOptions {
  // The child is killed (SIGKILL, whole process group) after this long.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  EnvChanges env;
  // Working directory; empty keeps the caller's.
  std::filesystem::path cwd;
  // Written to the child's stdin, which is then closed. Empty: /dev/null.
  std::string stdin_data;
};

struct RunResult {
  int exit_code = -1;      // exit status when the child exited, else -1
  int term_signal = 0;     // the signal that killed it, else 0
  bool timed_out = false;  // killed by RunCommand because of RunOptions::timeout
  std::chrono::milliseconds elapsed{0};
  std::string out;  // everything the child wrote to stdout
  std::string err;  // everything the child wrote to stderr

  // Exited by itself with status 0.
  bool ok() const { return !timed_out && term_signal == 0 && exit_code == 0; }
  // One paragraph for assertion messages: how it ended, stdout and stderr.
  std::string Describe() const;
};

// Runs argv to completion and returns how it ended with its full output. A
// non-zero exit, a signal or a timeout is reported in RunResult, not as an
// error: the Status is non-OK only when the command could not be started
// (executable missing or not executable, fork or pipe failure).
// Thread-safe (no global state besides the environment it reads).
Result<RunResult> RunCommand(const std::vector<std::string>& argv, const RunOptions& options = {});

struct SpawnOptions {
  EnvChanges env;
  std::filesystem::path cwd;
  // stdout and stderr are appended to this file (created if needed); empty
  // discards them. stdin is always /dev/null.
  std::filesystem::path log_path;
  // SIGKILL the child when the starting thread dies. Turn off only for
  // processes deliberately shared beyond this process (see rpcbind).
  bool die_with_parent = true;
};

// A started child process, owned: the destructor stops it. Stop() and Kill()
// signal the child's whole process group and reap the child, so once they
// return no process of it is left. Move-only; not thread-safe (one owner).
class Process {
 public:
  static Result<Process> Start(const std::vector<std::string>& argv,
                               const SpawnOptions& options = {});

  Process() = default;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // The child's PID (also its process group id); 0 when there is none.
  pid_t pid() const { return pid_; }

  // True while the child has not exited. Does not reap it (Stop() does), so
  // the PID stays reserved for Stop()'s signals.
  bool Running();

  // SIGTERM to the process group, waits up to `grace` for the child to exit,
  // then SIGKILL to the group; reaps the child. Idempotent. Returns how the
  // child ended ("exit 0", "signal 9", …) for logs.
  std::string Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

  // SIGKILL to the process group at once (simulates a crash) and reaps.
  std::string Kill() { return Stop(std::chrono::milliseconds(0)); }

  // Forgets the child without stopping it: it keeps running, nobody reaps it
  // from this object any more. Returns its PID.
  pid_t Release();

  // How the child ended, once it has been reaped.
  const std::optional<std::string>& exit_description() const { return exit_description_; }

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  void Reap(int wait_flags);

  // pid_ is ours until reaped_: no other code may wait for it.

  pid_t pid_ = 0;
  bool reaped_ = false;
  std::optional<std::string> exit_description_;
};

}  // namespace bunker::testing
