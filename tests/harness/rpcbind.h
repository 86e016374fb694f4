#pragma once

// rpcbind for test NFS servers.
//
// ganesha.nfsd refuses to start unless it can register with the portmapper,
// so every NfsServer holds an RpcbindLease while it runs. Clients do not need
// rpcbind: NfsServer URLs carry explicit ports (several test servers register
// the same RPC programs, so portmapper answers would be wrong anyway).
//
// rpcbind is a machine-wide singleton (port 111) shared by every test process.
// A running rpcbind is reused and never stopped unless the harness started it.
// When none is running, the first lease starts `rpcbind -f -w` in its own
// session and records its PID and start time; the last lease to be released,
// in whichever process, stops it. Users are counted across processes with
// flock(2) on files in /run/lock (or the temp directory), so a test process
// that dies releases its share automatically.

#include <chrono>

#include "nodeagent/core/util/status.h"

namespace bunker::testing {

// One user's share of rpcbind. Move-only; not thread-safe (one owner).
class RpcbindLease {
 public:
  // Ensures rpcbind answers on 127.0.0.1:111, starting it if needed.
  static Result<RpcbindLease> Acquire(
      std::chrono::milliseconds start_timeout = std::chrono::seconds(10));

  RpcbindLease() = default;
  RpcbindLease(RpcbindLease&& other) noexcept;
  RpcbindLease& operator=(RpcbindLease&& other) noexcept;
  RpcbindLease(const RpcbindLease&) = delete;
  RpcbindLease& operator=(const RpcbindLease&) = delete;
  ~RpcbindLease();

  // Drops this share; stops a harness-started rpcbind if it was the last one.
  // Idempotent.
  void Release() noexcept;

 private:
  explicit RpcbindLease(int users_fd) : users_fd_(users_fd) {}
  void ReleaseShare();

  int users_fd_ = -1;  // holds LOCK_SH on the users file while leased
};

// Serializes RPC program registration among the test servers of this machine:
// ganesha.nfsd unregisters and then registers NFS and MOUNT as it starts, and
// rpcbind refuses a registration that exists already, so two servers starting
// at once make one of them fail ("Cannot register NFS V3 on TCP"). Hold one
// from spawning a server until it answers. Move-only.
class RpcRegistrationLock {
 public:
  // Waits up to `timeout` for the lock (Unavailable after that).
  static Result<RpcRegistrationLock> Acquire(std::chrono::milliseconds timeout);

  RpcRegistrationLock() = default;
  RpcRegistrationLock(RpcRegistrationLock&& other) noexcept;
  RpcRegistrationLock& operator=(RpcRegistrationLock&& other) noexcept;
  RpcRegistrationLock(const RpcRegistrationLock&) = delete;
  RpcRegistrationLock& operator=(const RpcRegistrationLock&) = delete;
  ~RpcRegistrationLock();

  // Idempotent.
  void Release() noexcept;

 private:
  explicit RpcRegistrationLock(int fd) : fd_(fd) {}

  int fd_ = -1;  // holds LOCK_EX on the registration lock file
};

}  // namespace bunker::testing
