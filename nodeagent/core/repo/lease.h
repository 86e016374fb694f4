#pragma once

// Leases: locks stored in the repository itself (FORMAT.md, "Leases"), so
// they hold across hosts. Backups take shared leases; forget and prune take an
// exclusive one. A backup also takes a commit lease around its commit point,
// so that backups commit one at a time (see AcquireCommit).
//
// A Lease refreshes itself on a background thread. Before its commit point
// (index and snapshot writes) an operation calls CheckValid(): if the lease
// could not be refreshed and its expiry has passed, the operation must abort.
// Destroying a Lease stops the refresher and deletes the lease object.
//
// Thread-safety: CheckValid may be called from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nodeagent/core/repo/repository.h"

namespace bunker::repo {

struct LeaseOptions {
  std::chrono::seconds ttl{300};     // expiry written in the lease
  std::chrono::seconds refresh{60};  // how often it is renewed
  std::chrono::seconds skew{60};     // clock-skew allowance for others' leases
  // Wait between writing our lease and re-listing; -1 takes the backend's
  // ListSettleTime().
  std::chrono::milliseconds settle{-1};

  // The defaults, unless BUNKER_TEST_LEASE_TIMING="ttl,refresh,skew" (whole
  // seconds, e.g. "6,1,2") overrides them: for tests that let a lease expire
  // (FORMAT.md, "Leases"). Malformed values are ignored with a warning.
  static LeaseOptions FromEnvironment();
};

struct LeaseInfo {
  std::string name;  // locks/<id>
  std::string holder;
  std::string host;
  // Where `pid` means something: the kernel boot and the pid namespace. Two
  // pods can share a host name (and pid numbers); only a lease written from
  // this very boot and pid namespace can be judged by looking up its pid.
  std::string boot_id;
  std::string pid_ns;
  int64_t pid = 0;
  std::string operation;
  bool exclusive = false;
  // A commit lease: shared towards everything but other commit leases.
  bool commit = false;
  int64_t created = 0;  // unix seconds
  int64_t expires = 0;
};

class Lease {
 public:
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Takes a lease: list, write ours, settle, list again. FailedPrecondition
  // naming the holder when a conflicting live lease exists.
  static Result<std::unique_ptr<Lease>> Acquire(Repository* repo, bool exclusive,
                                                const std::string& operation,
                                                const LeaseOptions& options = {});
  // Takes the repository's commit lease, which one backup at a time holds
  // while it writes its index and snapshot (and, first, drops what another
  // backup committed meanwhile: mover/commit.h). It conflicts only with
  // other commit leases and exclusive ones, and instead of refusing it waits
  // for them, up to `max_wait` (then FailedPrecondition naming the holder).
  // Its timings are at most 60 s ttl and 15 s refresh, so a holder that died
  // on another host delays others for a minute or two, not five.
  static Result<std::unique_ptr<Lease>> AcquireCommit(Repository* repo,
                                                      const std::string& operation,
                                                      const LeaseOptions& options,
                                                      std::chrono::milliseconds max_wait);

  // OK while the lease is known to be held: last successful write + ttl is
  // still ahead (minus a margin). Aborted ("lease lost") otherwise. Once
  // lost, a lease stays lost: a refresh that comes too late (the process was
  // frozen, the store was unreachable) does not revive it, because another
  // process may have taken over meanwhile.
  Status CheckValid() const;

  // Releases now (deletes the object). Idempotent.
  Status Release();

  // Every lease object in the repository, decoded (unreadable ones skipped
  // with their name in `unreadable`).
  static Result<std::vector<LeaseInfo>> ListAll(Repository* repo,
                                                std::vector<std::string>* unreadable);
  // True if `l` is past expiry + skew, or was written in this boot and pid
  // namespace by a process that no longer runs.
  static bool IsStale(const LeaseInfo& l, std::chrono::seconds skew);
  // This process's host, boot id and pid namespace, as a lease records them.
  static LeaseInfo LocalIdentity();

 private:
  Lease(Repository* repo, LeaseInfo info, const LeaseOptions& options);
  // Acquire and AcquireCommit. Until `deadline`, a conflict seen before
  // writing is waited out; after it (or always, when `deadline` is null),
  // refused. Contests (a conflict seen only after writing) are retried,
  // `attempts` times (0: until the deadline).
  static Result<std::unique_ptr<Lease>> Take(
      Repository* repo, bool exclusive, bool commit, const std::string& operation,
      const LeaseOptions& options, int attempts,
      std::optional<std::chrono::steady_clock::time_point> deadline);
  Status Write();
  void RefreshLoop();

  Repository* repo_;
  LeaseInfo info_;
  LeaseOptions options_;
  std::string nonce_;
  std::atomic<int64_t> valid_until_ms_{0};  // steady clock ms
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::atomic<bool> released_{false};
  std::atomic<bool> lost_{false};  // validity lapsed before a refresh: never renewed again
  std::thread refresher_;
};

}  // namespace bunker::repo
