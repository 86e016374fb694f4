// Lease fencing through the CLI (FORMAT.md, "Leases"). A backup frozen with
// SIGSTOP (failpoint action `stop`) past its lease's expiry while a prune from
// another pid namespace — another pod on the node — takes the stale lease
// over: on SIGCONT the backup must stop before its commit point ("lease
// lost"), write no index and no snapshot, and lose nothing committed before.
// And two prunes on one host: the second refuses (exit 4) while the first is
// alive, however long the first has been frozen. And commit leases: backups
// held together before their commit points commit one at a time, the later
// dropping what the earlier stored (shared chunks stored once, block and
// file mode), and one killed while it rewrites its packs loses nothing.
//
// Lease timings are shortened with BUNKER_TEST_LEASE_TIMING ("ttl,refresh,skew").

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
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
  void FrozenBackupCommitsNothing(const std::string& failpoint, size_t leases_held);
  void CrashDuringCommit(const std::string& point);

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
// `leases_held`: the frozen backup's shared lease, and its commit lease once
// it holds one.
void AgentFencingTest::FrozenBackupCommitsNothing(const std::string& failpoint,
                                                  size_t leases_held) {
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
  EXPECT_EQ(ObjectNames(repo_, "locks").size(), leases_held);

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
  EXPECT_EQ(ObjectNames(repo_, "locks").size(), 0u) << "a stale lease was not removed";
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
  FrozenBackupCommitsNothing("pack.after_put:stop@1", 1);
}

// Frozen at the last step before its commit point, every pack uploaded and
// the commit lease held: the lease checks come after the failpoint, so the
// resumed backup meets them.
TEST_F(AgentFencingTest, BackupStoppedBeforeItsIndexCommitsNothing) {
  if (!HaveUnshare()) GTEST_SKIP() << "unshare --pid is not permitted here";
  FrozenBackupCommitsNothing("backup.before_index:stop", 2);
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
  RunResult forget = InRepo({"forget", "--keep-last", "1"});
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

// Bytes of every pack in the repository's data/ directory.
uint64_t PackBytes(const fs::path& repo) {
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(repo / "data")) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

// Two images sharing 24 chunks (random, every sixth text-like), at other
// positions in the second, with 4 chunks of their own each.
void SharingImages(const fs::path& x, const fs::path& y) {
  std::vector<Region> rx, ry;
  for (uint64_t i = 0; i < 24; ++i) rx.push_back(i % 6 == 5 ? Text(100 + i) : Random(100 + i));
  for (uint64_t i = 0; i < 4; ++i) rx.push_back(Random(200 + i));
  for (uint64_t i = 0; i < 4; ++i) ry.push_back(Random(300 + i));
  for (uint64_t i = 0; i < 24; ++i) ry.push_back(rx[23 - i]);
  ASSERT_NO_FATAL_FAILURE(WriteImage(x, rx));
  ASSERT_NO_FATAL_FAILURE(WriteImage(y, ry));
}

// Both backups are held before their commit (failpoint `stop`) until both
// have uploaded every pack, so each stored the 24 shared chunks. Resumed
// together, they commit one at a time (the commit lease); the second drops
// what the first committed from its packs. The location ends up holding each
// chunk once, the two snapshots' new bytes add up to the union, and a prune
// finds nothing to remove.
TEST_F(AgentFencingTest, BackupsHeldTogetherBeforeCommitStoreSharedChunksOnce) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path x = dir() / "x.img", y = dir() / "y.img";
  ASSERT_NO_FATAL_FAILURE(SharingImages(x, y));
  const fs::path log_x = dir() / "x.log", log_y = dir() / "y.log";
  const std::string hold = "BUNKER_FAILPOINT=backup.before_commit:stop";
  Result<Process> px =
      Spawn({"backup", "--volume", x.string(), "--volume-id", "pvc-x"}, {hold}, log_x);
  Result<Process> py =
      Spawn({"backup", "--volume", y.string(), "--volume-id", "pvc-y"}, {hold}, log_y);
  ASSERT_TRUE(px.ok() && py.ok());
  ASSERT_TRUE(WaitStopped(&*px)) << LogText(log_x);
  ASSERT_TRUE(WaitStopped(&*py)) << LogText(log_y);
  const uint64_t held = PackBytes(repo_);
  // Each stored the shared chunks: more than the union (32 MiB) is stored.
  EXPECT_GT(held, 48 * kMiB) << "the backups did not overlap";
  ASSERT_EQ(::kill(px->pid(), SIGCONT), 0);
  ASSERT_EQ(::kill(py->pid(), SIGCONT), 0);
  EXPECT_EQ(WaitExit(&*px), "exit 0") << LogText(log_x);
  EXPECT_EQ(WaitExit(&*py), "exit 0") << LogText(log_y);
  EXPECT_EQ(ObjectNames(repo_, "locks").size(), 0u);

  std::optional<json> snaps = Snapshots(repo_);
  ASSERT_TRUE(snaps);
  ASSERT_EQ((*snaps)["snapshots"].size(), 2u) << snaps->dump(2);
  uint64_t bytes_new = 0, bytes_reused = 0, bytes_stored = 0;
  std::map<std::string, std::string> ids;  // volume id -> snapshot id
  for (const json& s : (*snaps)["snapshots"]) {
    ids[s["volume_id"].get<std::string>()] = s["id"].get<std::string>();
    bytes_new += s["stats"]["bytes_new"].get<uint64_t>();
    bytes_reused += s["stats"]["bytes_reused"].get<uint64_t>();
    bytes_stored += s["stats"]["bytes_stored"].get<uint64_t>();
  }
  EXPECT_EQ(bytes_new, 32 * kMiB) << "each chunk is new in exactly one snapshot\n"
                                  << snaps->dump(2);
  EXPECT_EQ(bytes_reused, 24 * kMiB) << snaps->dump(2);

  std::optional<json> st = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(st);
  const uint64_t stored = (*st)["stored_bytes"];
  // 28 random chunks stored as they are, 4 text-like ones compressed, plus
  // per-blob and per-pack overhead and two content lists.
  EXPECT_LE(stored, 32 * kMiB + 256 * kKiB) << st->dump(2);
  EXPECT_EQ(PackBytes(repo_), stored) << "a pack in no index was left behind";
  // The later commit's statistics subtract the packs it replaced and add
  // those it wrote instead: together the snapshots account for every byte
  // the location holds, no more.
  EXPECT_EQ(bytes_stored, stored) << snaps->dump(2);
  std::cout << "[ info  ] held before commit: " << held << " pack bytes; committed: " << stored
            << std::endl;

  EXPECT_EQ(CheckHealthy(repo_, true), 0);
  EXPECT_EQ(RestoreAndCompare(repo_, ids["pvc-x"], x), "");
  EXPECT_EQ(RestoreAndCompare(repo_, ids["pvc-y"], y), "");
  std::optional<json> pruned = JsonOk(repo_, {"prune"});
  ASSERT_TRUE(pruned);
  EXPECT_EQ((*pruned)["blobs_removed"], 0) << pruned->dump(2);
  EXPECT_EQ(PackBytes(repo_), stored);
}

// The later of two backups crashes at `point` in its commit, after the
// earlier committed: before it rewrote its packs (backup.commit.rewrite) or
// after its snapshot, before it deleted the packs it replaced
// (backup.commit.delete_pack). Nothing committed is lost. Its commit lease,
// left behind, holds up another pod's commit (another pid namespace, where
// only expiry can judge it) until it expires, and no longer. A prune then
// leaves each chunk stored once.
void AgentFencingTest::CrashDuringCommit(const std::string& point) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path x = dir() / "x.img", y = dir() / "y.img";
  ASSERT_NO_FATAL_FAILURE(SharingImages(x, y));
  const fs::path log_y = dir() / "y.log";
  Result<Process> py =
      Spawn({"backup", "--volume", y.string(), "--volume-id", "pvc-y"},
            {kTiming, "BUNKER_FAILPOINT=backup.before_commit:stop," + point + ":crash"}, log_y);
  ASSERT_TRUE(py.ok());
  ASSERT_TRUE(WaitStopped(&*py)) << LogText(log_y);
  // Meanwhile x is backed up and committed (y's packs are in no index yet).
  std::optional<json> bx = Backup(repo_, x, "pvc-x");
  ASSERT_TRUE(bx);
  ASSERT_EQ(::kill(py->pid(), SIGCONT), 0);
  const std::string how = WaitExit(&*py);
  std::cout << "[ crash ] " << point << std::endl;
  ASSERT_EQ(how, "exit 86") << "the failpoint's crash exit\n" << LogText(log_y);
  ASSERT_EQ(ObjectNames(repo_, "locks").size(), 2u) << "the crashed backup's leases";
  const bool committed = point == "backup.commit.delete_pack";

  // Another pod backs y up: it waits for the dead commit lease to expire.
  if (HaveUnshare()) {
    RunResult again = InOtherPidNamespace(
        {"--log-level", "info", "backup", "--volume", y.string(), "--volume-id", "pvc-y", "--json"},
        {kTiming});
    ASSERT_TRUE(again.ok()) << again.Describe();
    if (!committed) {  // (after a committed snapshot it stores nothing, so it commits nothing)
      EXPECT_NE(again.err.find("waiting for commit lease"), std::string::npos) << again.Describe();
      EXPECT_NE(again.err.find("after waiting"), std::string::npos) << again.Describe();
      std::optional<json> j = StdoutJson(again);
      ASSERT_TRUE(j);
      EXPECT_EQ((*j)["stats"]["bytes_new"], 4 * kMiB) << j->dump(2);
    }
  } else {
    std::cout << "[ info  ] unshare --pid is not permitted here: the waiting is not checked"
              << std::endl;
    ASSERT_TRUE(Backup(repo_, y, "pvc-y"));
  }

  std::optional<json> snaps = Snapshots(repo_);
  ASSERT_TRUE(snaps);
  EXPECT_EQ((*snaps)["snapshots"].size(), committed ? 3u : 2u) << snaps->dump(2);
  for (const json& s : (*snaps)["snapshots"]) {
    EXPECT_EQ(RestoreAndCompare(repo_, s["id"], s["volume_id"] == "pvc-x" ? x : y), "");
  }
  // The crashed backup's packs (all of them, or the ones it replaced) are
  // in no index.
  EXPECT_GT(CheckHealthy(repo_, true), 0);
  WaitUntilPacksAreOlderThanNow(repo_);
  ASSERT_TRUE(JsonOk(repo_, {"prune"}));
  EXPECT_EQ(CheckHealthy(repo_, true), 0);
  std::optional<json> st = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(st);
  EXPECT_LE((*st)["stored_bytes"].get<uint64_t>(), 32 * kMiB + 256 * kKiB) << st->dump(2);
  EXPECT_EQ(PackBytes(repo_), (*st)["stored_bytes"].get<uint64_t>());
  for (const json& s : (*snaps)["snapshots"]) {
    EXPECT_EQ(RestoreAndCompare(repo_, s["id"], s["volume_id"] == "pvc-x" ? x : y), "");
  }
}

TEST_F(AgentFencingTest, BackupCrashWhileRewritingItsPacksLosesNothing) {
  CrashDuringCommit("backup.commit.rewrite");
}

TEST_F(AgentFencingTest, BackupCrashBeforeDeletingReplacedPacksLosesNothing) {
  CrashDuringCommit("backup.commit.delete_pack");
}

// File mode commits the same way: two trees sharing four files (under other
// names), backed up at once and held before their commits, store the shared
// files' chunks once.
TEST_F(AgentFencingTest, FileModeBackupsHeldTogetherStoreSharedFilesOnce) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path a = dir() / "tree-a", b = dir() / "tree-b";
  fs::create_directories(a / "sub");
  fs::create_directories(b);
  auto put = [](const fs::path& p, const std::vector<Region>& regions) {
    std::ofstream(p, std::ios::binary) << ImageBytes(regions);
  };
  // Seeds far apart: the generator's streams for nearby seeds are the same
  // bytes shifted by a few words, which content-defined chunks would find.
  auto seed = [](uint64_t k) { return k << 40; };
  uint64_t shared = 0;
  for (uint64_t i = 0; i < 4; ++i) {
    std::vector<Region> content = {Random(seed(1 + i), 2 * kMiB), Text(seed(5 + i), kMiB / 2)};
    put(a / "sub" / ("shared-" + std::to_string(i)), content);
    put(b / ("copy-" + std::to_string(i)), content);
    shared += 2 * kMiB + kMiB / 2;
  }
  put(a / "own", {Random(seed(9), 3 * kMiB)});
  put(b / "own", {Random(seed(10), 3 * kMiB)});

  const fs::path log_a = dir() / "a.log", log_b = dir() / "b.log";
  const std::string hold = "BUNKER_FAILPOINT=backup.before_commit:stop";
  Result<Process> pa = Spawn({"backup", "--volume", a.string(), "--volume-id", "a"}, {hold}, log_a);
  Result<Process> pb = Spawn({"backup", "--volume", b.string(), "--volume-id", "b"}, {hold}, log_b);
  ASSERT_TRUE(pa.ok() && pb.ok());
  ASSERT_TRUE(WaitStopped(&*pa)) << LogText(log_a);
  ASSERT_TRUE(WaitStopped(&*pb)) << LogText(log_b);
  const uint64_t held = PackBytes(repo_);
  ASSERT_EQ(::kill(pa->pid(), SIGCONT), 0);
  ASSERT_EQ(::kill(pb->pid(), SIGCONT), 0);
  EXPECT_EQ(WaitExit(&*pa), "exit 0") << LogText(log_a);
  EXPECT_EQ(WaitExit(&*pb), "exit 0") << LogText(log_b);

  std::optional<json> snaps = Snapshots(repo_);
  ASSERT_TRUE(snaps);
  ASSERT_EQ((*snaps)["snapshots"].size(), 2u) << snaps->dump(2);
  uint64_t bytes_new = 0, bytes_reused = 0;
  for (const json& s : (*snaps)["snapshots"]) {
    bytes_new += s["stats"]["bytes_new"].get<uint64_t>();
    bytes_reused += s["stats"]["bytes_reused"].get<uint64_t>();
  }
  // The shared files count as reused in one snapshot; new bytes are both
  // trees' own bytes once (plus their small tree blobs).
  EXPECT_EQ(bytes_reused, shared) << snaps->dump(2);
  EXPECT_GE(bytes_new, shared + 6 * kMiB) << snaps->dump(2);
  EXPECT_LE(bytes_new, shared + 6 * kMiB + 64 * kKiB) << snaps->dump(2);
  std::optional<json> st = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(st);
  // File mode counts trees in its new bytes too: the two snapshots' new
  // bytes are every distinct blob once.
  EXPECT_EQ(bytes_new, (*st)["unique_raw_bytes"].get<uint64_t>()) << st->dump(2);
  const uint64_t stored = (*st)["stored_bytes"];
  EXPECT_LT(stored, held - 7 * kMiB) << "the shared files' chunks are still stored twice";
  EXPECT_EQ(PackBytes(repo_), stored);
  std::cout << "[ info  ] file mode, held before commit: " << held
            << " pack bytes; committed: " << stored << std::endl;
  EXPECT_EQ(CheckHealthy(repo_, true), 0);
  for (const json& s : (*snaps)["snapshots"]) {
    const fs::path target = dir() / ("restored-" + s["volume_id"].get<std::string>());
    RunResult r = InRepo({"restore", "--snapshot", s["id"], "--target", target.string()});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(DiffTrees(ListTree(s["volume_id"] == "a" ? a : b), ListTree(target)), "");
  }
}

// One tree backed up under two volume ids at once: its tree blobs are the
// same too (they record inodes and ctimes), so the later commit drops every
// blob and its snapshot counts everything, trees included, as reused.
TEST_F(AgentFencingTest, SameTreeBackedUpTwiceAtOnceIsStoredOnce) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path tree = dir() / "tree";
  fs::create_directories(tree / "sub");
  std::ofstream(tree / "one", std::ios::binary) << ImageBytes({Random(uint64_t{21} << 40, kMiB)});
  std::ofstream(tree / "sub" / "two", std::ios::binary)
      << ImageBytes({Text(uint64_t{22} << 40, 2 * kMiB)});
  const std::string hold = "BUNKER_FAILPOINT=backup.before_commit:stop";
  std::vector<Process> procs;
  for (const std::string id : {"first", "second"}) {
    Result<Process> p = Spawn({"backup", "--volume", tree.string(), "--volume-id", id}, {hold},
                              dir() / (id + ".log"));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    procs.push_back(std::move(*p));
  }
  for (Process& p : procs) ASSERT_TRUE(WaitStopped(&p));
  for (Process& p : procs) ASSERT_EQ(::kill(p.pid(), SIGCONT), 0);
  for (Process& p : procs) EXPECT_EQ(WaitExit(&p), "exit 0");

  std::optional<json> snaps = Snapshots(repo_);
  ASSERT_TRUE(snaps);
  ASSERT_EQ((*snaps)["snapshots"].size(), 2u) << snaps->dump(2);
  const json& a = (*snaps)["snapshots"][0]["stats"];
  const json& b = (*snaps)["snapshots"][1]["stats"];
  // One of them stored everything, the other nothing.
  const json& stored_all = a["bytes_new"] > b["bytes_new"] ? a : b;
  const json& stored_none = a["bytes_new"] > b["bytes_new"] ? b : a;
  EXPECT_EQ(stored_none["bytes_new"], 0) << snaps->dump(2);
  EXPECT_EQ(stored_none["blobs_new"], 0) << snaps->dump(2);
  EXPECT_EQ(stored_none["bytes_stored"], 0) << snaps->dump(2);
  EXPECT_EQ(stored_none["bytes_reused"], stored_all["bytes_new"]) << snaps->dump(2);
  EXPECT_EQ(stored_none["blobs_reused"], stored_all["blobs_new"]) << snaps->dump(2);
  std::optional<json> st = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)["unique_raw_bytes"], stored_all["bytes_new"]) << st->dump(2);
  EXPECT_EQ(PackBytes(repo_), (*st)["stored_bytes"].get<uint64_t>());
  EXPECT_EQ(CheckHealthy(repo_, true), 0);
}

// A backup frozen while it holds the commit lease (failpoint `stop` before its
// index), on this host: its pid is alive, so its lease is never judged
// stale. Another backup waits for it twice the commit lease's ttl, then
// commits without it, with a warning, and loses nothing. The frozen one,
// resumed, finds its own lease lost and commits nothing.
TEST_F(AgentFencingTest, CommitLeaseHeldByAFrozenBackupDelaysOthersButFailsNone) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path x = dir() / "x.img", y = dir() / "y.img";
  ASSERT_NO_FATAL_FAILURE(SharingImages(x, y));
  const fs::path log_x = dir() / "x.log";
  Result<Process> px = Spawn({"backup", "--volume", x.string(), "--volume-id", "pvc-x"},
                             {kTiming, "BUNKER_FAILPOINT=backup.before_index:stop"}, log_x);
  ASSERT_TRUE(px.ok());
  ASSERT_TRUE(WaitStopped(&*px)) << LogText(log_x);
  ASSERT_EQ(ObjectNames(repo_, "locks").size(), 2u) << "its shared and commit leases";

  const auto t0 = std::chrono::steady_clock::now();
  RunResult ry =
      InRepo({"backup", "--volume", y.string(), "--volume-id", "pvc-y", "--json"}, {kTiming});
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(ry.ok()) << ry.Describe();
  EXPECT_NE(ry.err.find("still waiting for commit lease"), std::string::npos) << ry.Describe();
  EXPECT_NE(ry.err.find("committing without it"), std::string::npos) << ry.Describe();
  EXPECT_NE(ry.err.find("commit lease"), std::string::npos) << "names the holder\n"
                                                            << ry.Describe();
  // Twice the ttl of 6 s (the test timing).
  EXPECT_GE(waited, std::chrono::seconds(12)) << ry.Describe();
  std::optional<json> jy = StdoutJson(ry);
  ASSERT_TRUE(jy);

  ASSERT_EQ(::kill(px->pid(), SIGCONT), 0);
  EXPECT_NE(WaitExit(&*px), "exit 0") << LogText(log_x);
  EXPECT_NE(LogText(log_x).find("lease lost"), std::string::npos) << LogText(log_x);
  std::optional<json> snaps = Snapshots(repo_);
  ASSERT_TRUE(snaps);
  ASSERT_EQ((*snaps)["snapshots"].size(), 1u) << snaps->dump(2);
  EXPECT_EQ(RestoreAndCompare(repo_, (*jy)["id"], y), "");
  EXPECT_GE(CheckHealthy(repo_, true), 0);
}

}  // namespace
}  // namespace bunker::testing
