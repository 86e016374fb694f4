// Lease fencing through the CLI (FORMAT.md, "Leases"). A backup frozen with
// SIGSTOP (failpoint action `stop`) past its lease's expiry while a prune from
// another pid namespace — another pod on the node — takes the stale lease
// over: on SIGCONT the backup must stop before its commit point ("lease
// lost"), write no index and no snapshot, and lose nothing committed before.
// And two prunes on one host: the second refuses (exit 4) while the first is
// alive, however long the first has been frozen.
//
// Lease timings are shortened with BUNKER_TEST_LEASE_TIMING ("ttl,refresh,skew").

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/agent/agent_test_util.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kTiming[] = "BUNKER_TEST_LEASE_TIMING=6,1,2";

// 'T' once the process is stopped (job control or SIGSTOP).
char ProcState(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() ? '?' : line[paren + 2];
}

// Waits (up to a minute) until `p` has stopped itself; false if it exited
// or never stopped.
bool WaitStopped(Process* p) {
  for (int i = 0; i < 6000; ++i) {
    if (ProcState(p->pid()) == 'T') return true;
    if (!p->Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Waits (up to two minutes) for `p` to exit; returns Stop()'s description.
std::string WaitExit(Process* p) {
  for (int i = 0; i < 12000 && p->Running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p->Stop();
}

std::string LogText(const fs::path& log) {
  Result<std::string> text = ReadFile(log);
  return text.ok() ? *text : "(no log: " + text.status().ToString() + ")";
}

bool HaveUnshare() {
  Result<RunResult> r = RunCommand({"unshare", "--pid", "--fork", "true"});
  return r.ok() && r->ok();
}

class AgentFencingTest : public AgentTest {
 protected:
  void FrozenBackupCommitsNothing(const std::string& failpoint);

  Result<Process> Spawn(const std::vector<std::string>& args, const EnvChanges& env,
                        const fs::path& log) {
    std::vector<std::string> argv = {AgentBinary().string(), "--repo", Url()};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions o;
    o.env = Env(env);
    o.cwd = dir();
    o.log_path = log;
    return Process::Start(argv, o);
  }

  // bunker-agent in a fresh pid namespace: its lease cannot be judged by pid
  // from here (nor ours from there), as between two pods of one node.
  RunResult InOtherPidNamespace(const std::vector<std::string>& args, const EnvChanges& env) {
    std::vector<std::string> argv = {"unshare", "--pid", "--fork", AgentBinary().string(),
                                     "--repo",  Url()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions o;
    o.env = Env(env);
    o.cwd = dir();
    o.timeout = std::chrono::seconds(120);
    Result<RunResult> r = RunCommand(argv, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RunResult{};
  }
};

// A backup frozen (SIGSTOP) at `failpoint` past its lease's expiry; a prune
// from another pid namespace takes the lease over and deletes the packs no
// index names; resumed, the backup must commit nothing.
void AgentFencingTest::FrozenBackupCommitsNothing(const std::string& failpoint) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path image_a = dir() / "a.img", image_b = dir() / "b.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image_a, {Random(1), Text(2), Zero(), Random(3)}));
  std::vector<Region> b;
  for (uint64_t i = 0; i < 20; ++i) b.push_back(Random(100 + i));  // two packs at least
  ASSERT_NO_FATAL_FAILURE(WriteImage(image_b, b));
  std::optional<json> a = Backup(repo_, image_a, "pvc-a");
  ASSERT_TRUE(a);
  const std::string snap_a = (*a)["id"];
  const auto packs_before = ObjectNames(repo_, "data");
  const auto index_before = ObjectNames(repo_, "index");

  // The backup freezes at the failpoint.
  const fs::path log = dir() / "backup.log";
  Result<Process> backup = Spawn({"backup", "--volume", image_b.string(), "--volume-id", "pvc-b"},
                                 {kTiming, "BUNKER_FAILPOINT=" + failpoint}, log);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  ASSERT_TRUE(WaitStopped(&*backup)) << LogText(log);
  // Uploads run in parallel: another pack may have landed before the stop.
  const int uploaded = static_cast<int>(ObjectNames(repo_, "data").size() - packs_before.size());
  EXPECT_GE(uploaded, 1);
  EXPECT_EQ(ObjectNames(repo_, "locks").size(), 1u);

  // Prune (another pid namespace) refuses while the lease may be live, and
  // takes it over once it is past expiry + skew. It deletes the frozen
  // backup's pack: in no index, older than the prune.
  int refusals = 0;
  RunResult pruned;
  for (int i = 0; i < 60; ++i) {
    pruned = InOtherPidNamespace({"prune", "--json"}, {kTiming});
    if (pruned.ok()) break;
    ASSERT_EQ(pruned.exit_code, 4) << pruned.Describe();
    EXPECT_NE(pruned.err.find("is locked"), std::string::npos) << pruned.Describe();
    EXPECT_NE(pruned.err.find("backup"), std::string::npos) << "names the holder\n"
                                                            << pruned.Describe();
    ++refusals;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(pruned.ok()) << "prune never took the stale lease over:\n" << pruned.Describe();
  std::cout << "[ info  ] prune refused " << refusals << " times before the lease went stale"
            << std::endl;
  std::optional<json> rep = StdoutJson(pruned);
  ASSERT_TRUE(rep);
  EXPECT_EQ((*rep)["packs_unreferenced_deleted"], uploaded) << rep->dump(2);
  EXPECT_EQ(ObjectNames(repo_, "data"), packs_before);
  EXPECT_EQ(ObjectNames(repo_, "locks").size(), 0u) << "the stale lease was not removed";
  const auto index_after_prune = ObjectNames(repo_, "index");

  // Resumed, the backup finds its lease lost and stops before its commit point.
  ASSERT_EQ(::kill(backup->pid(), SIGCONT), 0);
  const std::string how = WaitExit(&*backup);
  const std::string out = LogText(log);
  EXPECT_NE(how, "exit 0") << out;
  EXPECT_NE(how.find("exit"), std::string::npos) << how << "\n" << out;
  // It stops at its lease check ("lease lost") — or earlier, when an upload
  // that was in flight at the freeze lost its temporary file to the prune
  // (which removes what writers without a live lease left). Either way its
  // refresher saw the lease lapse and did not renew it.
  EXPECT_TRUE(out.find("lease lost") != std::string::npos ||
              out.find("lapsed before it could be refreshed") != std::string::npos)
      << out;
  EXPECT_EQ(ObjectNames(repo_, "index"), index_after_prune) << "an index was written after the "
                                                               "lease was lost";
  std::optional<json> snaps = Snapshots(repo_);
  ASSERT_TRUE(snaps);
  ASSERT_EQ((*snaps)["snapshots"].size(), 1u) << snaps->dump(2);
  EXPECT_EQ((*snaps)["snapshots"][0]["id"], snap_a);

  // Nothing committed was lost; the packs the aborted backup uploaded after
  // the prune are unreferenced (harmless, the next prune removes them).
  EXPECT_GE(CheckHealthy(repo_, true), 0);
  EXPECT_EQ(RestoreAndCompare(repo_, snap_a, image_a), "");
  std::optional<json> again = Backup(repo_, image_b, "pvc-b");
  ASSERT_TRUE(again);
  EXPECT_EQ(RestoreAndCompare(repo_, (*again)["id"], image_b), "");
  EXPECT_EQ(CheckHealthy(repo_, true), CheckHealthy(repo_, false));
}

// Frozen right after its first pack upload, other uploads still running.
TEST_F(AgentFencingTest, StoppedBackupLosesItsLeaseAndCommitsNothing) {
  if (!HaveUnshare()) GTEST_SKIP() << "unshare --pid is not permitted here";
  FrozenBackupCommitsNothing("pack.after_put:stop@1");
}

// Frozen at the last step before its commit point, every pack uploaded: the
// lease check comes after the failpoint, so the resumed backup meets it.
TEST_F(AgentFencingTest, BackupStoppedBeforeItsIndexCommitsNothing) {
  if (!HaveUnshare()) GTEST_SKIP() << "unshare --pid is not permitted here";
  FrozenBackupCommitsNothing("backup.before_index:stop");
}

TEST_F(AgentFencingTest, SecondPruneOnTheSameHostRefuses) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path image = dir() / "a.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, {Random(7), Text(8), Random(9)}));
  std::optional<json> a = Backup(repo_, image, "pvc-a");
  ASSERT_TRUE(a);

  // The first prune freezes while holding its exclusive lease, just before
  // its commit point (writing the new index).
  const fs::path log = dir() / "prune1.log";
  Result<Process> first =
      Spawn({"prune"},
            {"BUNKER_TEST_LEASE_TIMING=6,1,0", "BUNKER_FAILPOINT=prune.before_index:stop"}, log);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(WaitStopped(&*first)) << LogText(log);

  // Frozen past its expiry (ttl 6 s, no skew), but alive in this pid
  // namespace: never stale. The second prune refuses, naming the holder.
  std::this_thread::sleep_for(std::chrono::seconds(7));
  RunResult second = InRepo({"prune"}, {"BUNKER_TEST_LEASE_TIMING=6,1,0"});
  EXPECT_EQ(second.exit_code, 4) << second.Describe();
  EXPECT_NE(second.err.find("is locked"), std::string::npos) << second.Describe();
  EXPECT_NE(second.err.find("prune"), std::string::npos) << second.Describe();
  RunResult forget = InRepo({"forget", "--keep-last", "0"});
  EXPECT_EQ(forget.exit_code, 4) << forget.Describe();
  const auto before = ListTree(repo_ / "index");

  // The first, resumed, has lost its lease (it lapsed while frozen) and
  // stops before writing anything; the repository is as it was.
  ASSERT_EQ(::kill(first->pid(), SIGCONT), 0);
  const std::string how = WaitExit(&*first);
  const std::string out = LogText(log);
  EXPECT_NE(how, "exit 0") << out;
  EXPECT_NE(out.find("lease lost"), std::string::npos) << out;
  EXPECT_EQ(DiffTrees(before, ListTree(repo_ / "index")), "");
  EXPECT_EQ(CheckHealthy(repo_, true), 0);
  EXPECT_EQ(RestoreAndCompare(repo_, (*a)["id"], image), "");

  // Two prunes started together: a contest (both wrote their lease before
  // seeing the other's) ends with one proceeding and the other refusing
  // with exit 4 — or with both succeeding one after the other when the
  // first was done before the second looked. Never both refusing.
  for (int round = 0; round < 3; ++round) {
    Result<Process> p1 = Spawn({"prune"}, {}, dir() / "p1.log");
    Result<Process> p2 = Spawn({"prune"}, {}, dir() / "p2.log");
    ASSERT_TRUE(p1.ok() && p2.ok());
    const std::string h1 = WaitExit(&*p1), h2 = WaitExit(&*p2);
    int ok = (h1 == "exit 0") + (h2 == "exit 0");
    EXPECT_GE(ok, 1) << h1 << " / " << h2;
    for (const std::string& h : {h1, h2}) {
      EXPECT_TRUE(h == "exit 0" || h == "exit 4") << h;
    }
    std::cout << "[ info  ] two prunes at once: " << h1 << ", " << h2 << std::endl;
  }
  EXPECT_EQ(ObjectNames(repo_, "locks").size(), 0u);
}

}  // namespace
}  // namespace bunker::testing
