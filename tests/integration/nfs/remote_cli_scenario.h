#pragma once

// bunker-agent end to end on a remote backup location (NFS, S3): the real
// binary, run as a child process like tests/integration/agent does (its
// AgentTest fixture and helpers are reused), against a real server started by
// tests/harness. One scenario body per acceptance check of issue 4, shared by
// nfs_cli_test.cc and s3_cli_test.cc; each location fills in how to name the
// repository, how an independent client lists it, and how to kill and restart
// its server.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodeagent/core/util/status.h"
#include "tests/harness/process.h"
#include "tests/integration/agent/agent_test_util.h"

namespace bunker::testing {

class RemoteRepoCliTest : public AgentTest {
 protected:
  // ---- what a location provides ------------------------------------------

  // Global flags that name the repository: {"--repo", URL, …location flags}.
  virtual std::vector<std::string> RepoArgs() const = 0;
  // Environment bunker-agent needs for the location (credentials).
  virtual EnvChanges RepoEnv() const { return {}; }
  // The repository's objects as an independent client (nfs-ls, aws s3 ls)
  // lists them: names relative to the repository root ("config",
  // "data/3f/3f…", "snapshots/…"). Fails the test when the client fails.
  virtual std::vector<std::string> ListWithIndependentClient() = 0;
  // Pack objects the server has stored so far (read from its directory; to
  // tell that a backup is under way).
  virtual size_t PacksOnServer() = 0;
  // What an error about the server must name ("127.0.0.1:PORT").
  virtual std::string ServerAddress() const = 0;
  // SIGKILL the server; start it again on the same port and directory.
  virtual void KillServer() = 0;
  virtual Status RestartServer() = 0;

  // ---- running bunker-agent on the location --------------------------------

  // bunker-agent RepoArgs() `args`, with RepoEnv().
  RunResult Run(const std::vector<std::string>& args,
                std::chrono::milliseconds timeout = std::chrono::seconds(300)) const;
  // Run(args + --json): exit 0 and one JSON object on stdout, else a test
  // failure and nullopt.
  std::optional<nlohmann::json> RunJson(const std::vector<std::string>& args);
  // `check --read-data --json` exits 0 and reports no problem other than
  // unreferenced packs. Returns how many packs are unreferenced, -1 on failure.
  int CheckReadsEverything();
  // Restores `snapshot` to a new file or directory under dir() and returns
  // its path; empty (and a test failure) when the restore fails.
  std::filesystem::path Restore(const std::string& snapshot);

  // ---- the scenarios -------------------------------------------------------

  // repo init; block backup; incremental backup after a few blocks changed;
  // file-mode backup of a small tree; both restored identical; check
  // --read-data; the objects visible to an independent client; forget
  // --keep-last 1 + prune; check again; the kept snapshots restore identical.
  void RunLifecycle();

  // A backup of a 256 MiB image while the server is SIGKILLed and started
  // again: the backup completes or fails naming the server; either way check
  // --read-data passes, and the next backup succeeds and restores identical.
  void RunServerKilledMidBackup();

  // A backup crashes (failpoint `crash`, exit 86, like kill -9) the second
  // time it reaches `failpoint`: check --read-data passes, the snapshot
  // committed before it is the only one and restores identical, and the
  // next backup and a prune succeed.
  void RunCrashAt(const std::string& failpoint);

 private:
  int restores_ = 0;
};

// Object names under `sub` ("data", "snapshots"…) in a listing of
// ListWithIndependentClient().
std::vector<std::string> Under(const std::vector<std::string>& names, const std::string& sub);

}  // namespace bunker::testing
