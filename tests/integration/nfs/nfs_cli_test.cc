// bunker-agent end to end on a real nfs-ganesha export (tests/harness): every
// verb through nfs:// URLs, the objects seen by libnfs-utils' nfs-ls, and a
// server killed and restarted in the middle of a backup.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/harness/nfs_server.h"
#include "tests/integration/nfs/remote_cli_scenario.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kRepoPath = "backups/cluster-a";

class NfsCliTest : public RemoteRepoCliTest {
 protected:
  void SetUp() override {
    RemoteRepoCliTest::SetUp();
    Result<std::unique_ptr<NfsServer>> server = NfsServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    nfs_ = std::move(server).value();
  }

  void TearDown() override {
    if (nfs_ != nullptr && HasFailure()) {
      std::cerr << "[harness] nfs-ganesha log after a failure:\n" << nfs_->LogTail() << "\n";
    }
    nfs_.reset();
  }

  std::vector<std::string> RepoArgs() const override { return {"--repo", nfs_->Url(kRepoPath)}; }

  // `nfs-ls -R` of the repository directory. Its lines look like `ls -l`'s,
  // the last field the path relative to the listed directory.
  std::vector<std::string> ListWithIndependentClient() override {
    Result<RunResult> r = RunCommand({"nfs-ls", "-R", nfs_->Url(kRepoPath)});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->ok()) << r->Describe();
    std::vector<std::string> names;
    for (const std::string& line : Lines(r->out)) {
      if (line.empty() || line[0] == 'd') continue;  // directories
      std::string name = line.substr(line.find_last_of(' ') + 1);
      while (!name.empty() && name.front() == '/') name.erase(0, 1);
      names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  size_t PacksOnServer() override {
    return ObjectNames(nfs_->export_dir() / kRepoPath, "data").size();
  }

  std::string ServerAddress() const override { return "NFS server 127.0.0.1"; }
  void KillServer() override { nfs_->Kill(); }
  Status RestartServer() override { return nfs_->Restart(); }

  std::unique_ptr<NfsServer> nfs_;
};

TEST_F(NfsCliTest, EveryVerbWorksOnAnNfsExport) { RunLifecycle(); }

TEST_F(NfsCliTest, ServerKilledAndRestartedMidBackup) { RunServerKilledMidBackup(); }

// The NFS backend's own write point: a crash between writing a temporary
// object and renaming it into place.
TEST_F(NfsCliTest, CrashBeforeARenameLosesNothing) { RunCrashAt("nfs.put.before_rename"); }

}  // namespace
}  // namespace bunker::testing
