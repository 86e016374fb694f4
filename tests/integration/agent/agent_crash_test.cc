// bunker-agent killed mid-write: SIGKILL at random moments and failpoint
// crashes (BUNKER_FAILPOINT=<name>:crash[@N], exit 86) at every write point a
// backup or a prune passes. After each crash the repository must pass
// `check --read-data` (packs no index references are allowed: "unreferenced"),
// every snapshot in it must restore exactly, and the next backup or prune
// must work (FORMAT.md, "Order of writes").

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
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

constexpr char kVolume[] = "pvc-crash";
constexpr uint64_t kSeed = 20261125;  // fixed: every run kills at the same delays

// Files a writer left half-done (".tmp-…", never listed as objects).
int TempFiles(const fs::path& repo) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(repo)) {
    if (e.path().filename().string().starts_with(".tmp-")) ++n;
  }
  return n;
}

std::string Summary(const fs::path& repo) {
  return "packs=" + std::to_string(ObjectNames(repo, "data").size()) +
         " index=" + std::to_string(ObjectNames(repo, "index").size()) +
         " snapshots=" + std::to_string(ObjectNames(repo, "snapshots").size()) +
         " locks=" + std::to_string(ObjectNames(repo, "locks").size()) +
         " temp-files=" + std::to_string(TempFiles(repo));
}

// The point names a BUNKER_FAILPOINT_LIST file collected, in first-reached order.
std::vector<std::string> ReadPointList(const fs::path& file) {
  Result<std::string> text = ReadFile(file);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? Lines(*text) : std::vector<std::string>{};
}

class AgentCrashTest : public AgentTest {
 protected:
  // base_: a repository with one snapshot (snap_a_) of image_a_ in kVolume;
  // image_b_: the next state of the volume (starts like image A, then
  // `new_random` MiB of new incompressible data, some text and zeros).
  void MakeBase(uint64_t new_random) {
    image_a_ = dir() / "a.img";
    image_b_ = dir() / "b.img";
    std::vector<Region> a = {Random(1), Random(2), Text(3),   Random(4),
                             Zero(),    Random(5), Random(6), Text(7)};
    std::vector<Region> b(a.begin(), a.begin() + 6);
    for (uint64_t i = 0; i < new_random; ++i) {
      b.push_back(i % 16 == 7 ? Text(1000 + i) : (i % 16 == 11 ? Zero() : Random(1000 + i)));
    }
    b.push_back(Random(2000, 77777));
    ASSERT_NO_FATAL_FAILURE(WriteImage(image_a_, a));
    ASSERT_NO_FATAL_FAILURE(WriteImage(image_b_, b));
    base_ = dir() / "base";
    ASSERT_NO_FATAL_FAILURE(Init(base_));
    std::optional<json> s = Backup(base_, image_a_, kVolume);
    ASSERT_TRUE(s);
    snap_a_ = (*s)["id"];
    base_index_files_ = static_cast<int>(ObjectNames(base_, "index").size());
  }

  std::vector<std::string> BackupArgs() const {
    return {"backup", "--volume", image_b_.string(), "--volume-id", kVolume};
  }

  // The invariants after a backup of image B into `repo` was interrupted.
  // `expect_new`: whether the interrupted backup's snapshot must (true) or
  // must not (false) be there; nullopt when the crash moment is unknown.
  void VerifyAfterInterruptedBackup(const fs::path& repo, std::optional<bool> expect_new) {
    const std::string state = Summary(repo);
    json report;
    const int unreferenced = CheckHealthy(repo, true, &report);
    ASSERT_GE(unreferenced, 0) << state;
    EXPECT_EQ(RestoreAndCompare(repo, snap_a_, image_a_), "") << "the earlier snapshot broke";

    // Any snapshot the interrupted backup left must be complete.
    int fresh = 0;
    if (report.value("snapshots", 0) > 1) {
      std::optional<json> snaps = Snapshots(repo, kVolume);
      ASSERT_TRUE(snaps);
      for (const json& s : (*snaps)["snapshots"]) {
        if (s["id"] == snap_a_) continue;
        ++fresh;
        EXPECT_EQ(RestoreAndCompare(repo, s["id"], image_b_), "")
            << "a snapshot left by the interrupted backup does not restore exactly";
      }
    }
    if (expect_new) {
      EXPECT_EQ(fresh, *expect_new ? 1 : 0) << "snapshot of the interrupted backup; " << state;
    }

    // The next backup works. Where the crashed run got as far as an index
    // file, the next one deduplicates against the chunks it lists: then it
    // must restore exactly too. (Otherwise it reuses only what snapshot A
    // stored, which the restore of A above has covered.)
    const bool crashed_run_indexed = report.value("index_files", 0) > base_index_files_;
    std::optional<json> next = Backup(repo, image_b_, kVolume);
    ASSERT_TRUE(next) << "backup after the crash failed; " << state;
    EXPECT_EQ((*next)["kind"], "incremental");
    if (crashed_run_indexed) {
      EXPECT_EQ(RestoreAndCompare(repo, (*next)["id"], image_b_), "")
          << "a backup reusing the crashed run's chunks does not restore exactly";
    }
    std::cout << "    after the crash: " << state << ", unreferenced packs " << unreferenced
              << ", snapshots left by the crashed backup " << fresh << std::endl;
  }

  fs::path base_, image_a_, image_b_;
  std::string snap_a_;
  int base_index_files_ = 0;
};

TEST_F(AgentCrashTest, FailpointCrashAtEveryBackupWritePoint) {
  // 18 new chunks, 16 of them incompressible: two packs.
  ASSERT_NO_FATAL_FAILURE(MakeBase(18));

  // Which points does an uninterrupted backup pass?
  const fs::path ref = dir() / "ref";
  ASSERT_NO_FATAL_FAILURE(CopyTree(base_, ref));
  const fs::path list_file = dir() / "points.txt";
  RunResult r = In(ref, BackupArgs(), {"BUNKER_FAILPOINT_LIST=" + list_file.string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  ASSERT_EQ(ObjectNames(ref, "data").size(), ObjectNames(base_, "data").size() + 2)
      << "expected the backup to write two packs";
  const std::vector<std::string> points = ReadPointList(list_file);
  const std::set<std::string> passed(points.begin(), points.end());
  for (const char* expected :
       {"lease.before_put", "pack.before_put", "pack.after_put", "file.put.before_rename",
        "backup.before_index", "index.before_put", "backup.before_snapshot", "snapshot.before_put",
        "backup.after_snapshot"}) {
    EXPECT_TRUE(passed.contains(expected)) << "a backup no longer passes " << expected;
  }
  fs::remove_all(ref);

  // Crash at the N-th pass of every point, N = 1, 2, … until the backup
  // completes (the point is passed fewer than N times).
  int crashes = 0;
  for (const std::string& point : points) {
    for (int n = 1; n <= 10; ++n) {
      const std::string spec = point + ":crash@" + std::to_string(n);
      SCOPED_TRACE(spec);
      const fs::path repo = dir() / "case";
      ASSERT_NO_FATAL_FAILURE(CopyTree(base_, repo));
      r = In(repo, BackupArgs(), {"BUNKER_FAILPOINT=" + spec});
      if (r.ok()) {
        EXPECT_GT(n, 1) << "the point was listed but not reached";
        fs::remove_all(repo);
        break;
      }
      ASSERT_EQ(r.exit_code, kFailpointExit) << r.Describe();
      EXPECT_NE(r.err.find("failpoint " + point + ": crash"), std::string::npos) << r.Describe();
      ++crashes;
      std::cout << "[ crash ] " << spec << std::endl;
      std::optional<bool> expect_new;
      if (point == "backup.after_snapshot") expect_new = true;
      if (point == "backup.before_snapshot" || point == "snapshot.before_put" ||
          point.starts_with("pack.") || point == "backup.before_index" ||
          point == "index.before_put" || point == "lease.before_put") {
        expect_new = false;
      }
      ASSERT_NO_FATAL_FAILURE(VerifyAfterInterruptedBackup(repo, expect_new));
      fs::remove_all(repo);
    }
  }
  EXPECT_GE(crashes, 12);
}

TEST_F(AgentCrashTest, KillDuringBackupAtRandomMoments) {
  // A 64 MiB image B (50 MiB of it new data).
  ASSERT_NO_FATAL_FAILURE(MakeBase(57));
  ASSERT_GE(fs::file_size(image_b_), 63 * kMiB);

  // How long an uninterrupted backup takes here (the faster of two runs: the
  // first may pay for a cold cache).
  std::chrono::milliseconds typical = std::chrono::hours(1);
  for (int i = 0; i < 2; ++i) {
    const fs::path ref = dir() / "ref";
    ASSERT_NO_FATAL_FAILURE(CopyTree(base_, ref));
    RunResult r = In(ref, BackupArgs());
    ASSERT_TRUE(r.ok()) << r.Describe();
    typical = std::min(typical, r.elapsed);
    fs::remove_all(ref);
  }
  std::cout << "[ info  ] uninterrupted backup: " << typical.count() << " ms" << std::endl;

  std::mt19937_64 rng(kSeed);
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  constexpr int kRounds = 8;
  int killed = 0;
  for (int i = 0; i < kRounds; ++i) {
    // Spread over [0, typical): round i kills somewhere in the i-th eighth.
    const auto delay = std::chrono::milliseconds(
        static_cast<int64_t>(typical.count() * (i + jitter(rng)) / kRounds));
    SCOPED_TRACE("round " + std::to_string(i) + ", kill after " + std::to_string(delay.count()) +
                 " ms");
    const fs::path repo = dir() / "case";
    ASSERT_NO_FATAL_FAILURE(CopyTree(base_, repo));
    std::vector<std::string> argv = {AgentBinary().string(), "--repo", UrlOf(repo)};
    for (const std::string& a : BackupArgs()) argv.push_back(a);
    SpawnOptions o;
    o.env = Env();
    o.cwd = dir();
    o.log_path = dir() / "killed.log";
    Result<Process> p = Process::Start(argv, o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    std::this_thread::sleep_for(delay);
    const bool was_running = p->Running();
    const std::string how = p->Kill();
    if (was_running && how.find("exit") == std::string::npos) ++killed;
    std::cout << "[ kill  ] round " << i << " after " << delay.count() << " ms: " << how
              << std::endl;
    ASSERT_NO_FATAL_FAILURE(VerifyAfterInterruptedBackup(repo, std::nullopt));
    fs::remove_all(repo);
  }
  // Most rounds must really have interrupted a backup, or the test proves little.
  EXPECT_GE(killed, kRounds / 2);
}

// Prune after `forget --keep-last 1` of three snapshots: packs of the
// forgotten snapshots are deleted or (mostly garbage) repacked.
class AgentPruneCrashTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (HasFatalFailure()) return;
    // A: 8 random chunks; B: 8 others; C keeps 2 of A's chunks (so A's pack
    // is mostly garbage and gets repacked) plus new data.
    const fs::path a = dir() / "a.img", b = dir() / "b.img";
    image_c_ = dir() / "c.img";
    std::vector<Region> ra, rb, rc = {Random(10), Random(13), Zero()};
    for (uint64_t i = 0; i < 8; ++i) ra.push_back(Random(10 + i));
    for (uint64_t i = 0; i < 8; ++i) rb.push_back(Random(30 + i));
    for (uint64_t i = 0; i < 4; ++i) rc.push_back(i == 2 ? Text(50 + i) : Random(50 + i));
    rc.push_back(Random(60, 4321));
    ASSERT_NO_FATAL_FAILURE(WriteImage(a, ra));
    ASSERT_NO_FATAL_FAILURE(WriteImage(b, rb));
    ASSERT_NO_FATAL_FAILURE(WriteImage(image_c_, rc));
    base_ = dir() / "base";
    ASSERT_NO_FATAL_FAILURE(Init(base_));
    ASSERT_TRUE(Backup(base_, a, kVolume));
    ASSERT_TRUE(Backup(base_, b, kVolume));
    std::optional<json> c = Backup(base_, image_c_, kVolume);
    ASSERT_TRUE(c);
    snap_c_ = (*c)["id"];
    std::optional<json> f = JsonOk(base_, {"forget", "--keep-last", "1"});
    ASSERT_TRUE(f);
    ASSERT_EQ((*f)["removed"].size(), 2u);
    ASSERT_EQ((*f)["kept"].size(), 1u);
    ASSERT_EQ((*f)["kept"][0]["id"], snap_c_);
    // Every pack is old enough for prune's age rule by the time we prune.
    WaitUntilPacksAreOlderThanNow(base_);
  }

  // After an interrupted prune: check passes and C restores; then a prune
  // without faults leaves a repository without a single problem (check
  // --read-data has verified every blob C needs, so C is not restored again).
  void VerifyAfterInterruptedPrune(const fs::path& repo) {
    const std::string state = Summary(repo);
    json report;
    EXPECT_GE(CheckHealthy(repo, true, &report), 0) << state;
    EXPECT_EQ(report.value("snapshots", 0), 1) << report.dump(2);
    EXPECT_EQ(RestoreAndCompare(repo, snap_c_, image_c_), "") << "kept snapshot broke; " << state;
    WaitUntilPacksAreOlderThanNow(repo);
    RunResult r = In(repo, {"prune"});
    ASSERT_TRUE(r.ok()) << "prune after the crash failed (" << state << "):\n" << r.Describe();
    EXPECT_EQ(CheckHealthy(repo, true, &report), 0)
        << "a clean prune left unreferenced packs; was " << state;
    EXPECT_EQ(report.value("snapshots", 0), 1) << report.dump(2);
    std::cout << "    after the crash: " << state << "; after a clean prune: " << Summary(repo)
              << std::endl;
  }

  fs::path base_, image_c_;
  std::string snap_c_;
};

TEST_F(AgentPruneCrashTest, FailpointCrashAtEveryPruneWritePoint) {
  // Uninterrupted prune on a copy: what it does, and which points it passes.
  const fs::path ref = dir() / "ref";
  ASSERT_NO_FATAL_FAILURE(CopyTree(base_, ref));
  const fs::path list_file = dir() / "points.txt";
  RunResult r = In(ref, {"prune", "--json"}, {"BUNKER_FAILPOINT_LIST=" + list_file.string()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::optional<json> rep = StdoutJson(r);
  ASSERT_TRUE(rep);
  EXPECT_GE((*rep)["packs_repacked"].get<int>(), 1) << rep->dump(2);
  EXPECT_GE((*rep)["packs_deleted"].get<int>(), 1) << rep->dump(2);
  // What it deleted and wrote is what it reported.
  const int packs_before = static_cast<int>(ObjectNames(base_, "data").size());
  EXPECT_EQ((*rep)["packs_total"].get<int>(), packs_before) << rep->dump(2);
  EXPECT_EQ(static_cast<int>(ObjectNames(ref, "data").size()),
            packs_before - (*rep)["packs_deleted"].get<int>() -
                (*rep)["packs_repacked"].get<int>() + (*rep)["packs_written"].get<int>())
      << rep->dump(2);
  EXPECT_EQ(ObjectNames(ref, "index").size(), 1u);
  EXPECT_EQ(ObjectNames(ref, "snapshots"), ObjectNames(base_, "snapshots"));
  EXPECT_EQ(CheckHealthy(ref), 0);
  EXPECT_EQ(RestoreAndCompare(ref, snap_c_, image_c_), "");
  fs::remove_all(ref);
  const std::vector<std::string> points = ReadPointList(list_file);
  const std::set<std::string> passed(points.begin(), points.end());
  for (const char* expected :
       {"lease.before_put", "prune.repack.add", "pack.before_put", "pack.after_put",
        "prune.before_index", "index.before_put", "prune.delete_index", "prune.delete_pack",
        "file.put.before_rename"}) {
    EXPECT_TRUE(passed.contains(expected)) << "prune no longer passes " << expected;
  }

  int crashes = 0;
  for (const std::string& point : points) {
    for (int n = 1; n <= 10; ++n) {
      const std::string spec = point + ":crash@" + std::to_string(n);
      SCOPED_TRACE(spec);
      const fs::path repo = dir() / "case";
      ASSERT_NO_FATAL_FAILURE(CopyTree(base_, repo));
      r = In(repo, {"prune"}, {"BUNKER_FAILPOINT=" + spec});
      if (r.ok()) {
        EXPECT_GT(n, 1) << "the point was listed but not reached";
        fs::remove_all(repo);
        break;
      }
      ASSERT_EQ(r.exit_code, kFailpointExit) << r.Describe();
      ++crashes;
      std::cout << "[ crash ] prune at " << spec << std::endl;
      ASSERT_NO_FATAL_FAILURE(VerifyAfterInterruptedPrune(repo));
      fs::remove_all(repo);
    }
  }
  EXPECT_GE(crashes, 10);
}

TEST_F(AgentPruneCrashTest, KillDuringPruneAtRandomMoments) {
  const fs::path ref = dir() / "ref";
  ASSERT_NO_FATAL_FAILURE(CopyTree(base_, ref));
  RunResult r = In(ref, {"prune"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  const auto typical = r.elapsed;
  fs::remove_all(ref);
  std::cout << "[ info  ] uninterrupted prune: " << typical.count() << " ms" << std::endl;

  // Prune writes only at the end of its run: the first half (open the
  // repository, read every index and snapshot) changes nothing, and a kill
  // there is no different from the failpoint at lease.before_put. The kills
  // are spread over the second half.
  std::mt19937_64 rng(kSeed + 1);
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  constexpr int kRounds = 4;
  for (int i = 0; i < kRounds; ++i) {
    const auto delay = std::chrono::milliseconds(
        static_cast<int64_t>(typical.count() * (0.5 + 0.5 * (i + jitter(rng)) / kRounds)));
    SCOPED_TRACE("round " + std::to_string(i) + ", kill after " + std::to_string(delay.count()) +
                 " ms");
    const fs::path repo = dir() / "case";
    ASSERT_NO_FATAL_FAILURE(CopyTree(base_, repo));
    SpawnOptions o;
    o.env = Env();
    o.cwd = dir();
    o.log_path = dir() / "killed.log";
    Result<Process> p = Process::Start({AgentBinary().string(), "--repo", UrlOf(repo), "prune"}, o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    std::this_thread::sleep_for(delay);
    std::cout << "[ kill  ] prune round " << i << " after " << delay.count() << " ms: " << p->Kill()
              << std::endl;
    ASSERT_NO_FATAL_FAILURE(VerifyAfterInterruptedPrune(repo));
    fs::remove_all(repo);
  }
}

}  // namespace
}  // namespace bunker::testing

namespace bunker::testing {
namespace {

// Crashes at the write points backup and prune do not pass every run: the
// lease refresh, forget's deletes, key add and remove, repository init.
class AgentMoreCrashTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (HasFatalFailure()) return;
    image_a_ = dir() / "a.img";
    image_b_ = dir() / "b.img";
    ASSERT_NO_FATAL_FAILURE(WriteImage(image_a_, {Random(1), Text(2), Zero(), Random(3)}));
    ASSERT_NO_FATAL_FAILURE(WriteImage(image_b_, {Random(4), Random(5), Text(6)}));
    ASSERT_NO_FATAL_FAILURE(Init(repo_));
    std::optional<json> a = Backup(repo_, image_a_, kVolume);
    ASSERT_TRUE(a);
    snap_a_ = (*a)["id"];
  }

  // A crash at `spec` (exit 86, the failpoint named on stderr).
  void ExpectCrash(const RunResult& r, const std::string& point) {
    EXPECT_EQ(r.exit_code, kFailpointExit) << r.Describe();
    EXPECT_NE(r.err.find("failpoint " + point + ": crash"), std::string::npos) << r.Describe();
    std::cout << "[ crash ] " << point << std::endl;
  }

  fs::path image_a_, image_b_;
  std::string snap_a_;
};

// The first lease refresh (the 2nd lease write, one second in with
// BUNKER_TEST_LEASE_TIMING) crashes while the operation is held before its
// commit point by a hanging failpoint. Nothing is committed; the next run of
// the same operation works.
TEST_F(AgentMoreCrashTest, CrashAtLeaseRefresh) {
  const std::string timing = "BUNKER_TEST_LEASE_TIMING=20,1,0";
  RunResult r =
      InRepo({"backup", "--volume", image_b_.string(), "--volume-id", kVolume},
             {timing, "BUNKER_FAILPOINT=lease.before_put:crash@2,backup.before_index:hang"});
  ExpectCrash(r, "lease.before_put");
  std::optional<json> snaps = Snapshots(repo_);
  ASSERT_TRUE(snaps);
  EXPECT_EQ((*snaps)["snapshots"].size(), 1u);
  EXPECT_GE(CheckHealthy(repo_), 0);
  EXPECT_EQ(RestoreAndCompare(repo_, snap_a_, image_a_), "");
  // The crashed process's lease is stale at once (its pid is gone).
  std::optional<json> b = Backup(repo_, image_b_, kVolume);
  ASSERT_TRUE(b);
  EXPECT_EQ(RestoreAndCompare(repo_, (*b)["id"], image_b_), "");

  ASSERT_TRUE(JsonOk(repo_, {"forget", "--keep-last", "1"}));
  WaitUntilPacksAreOlderThanNow(repo_);
  r = InRepo({"prune"},
             {timing, "BUNKER_FAILPOINT=lease.before_put:crash@2,prune.before_index:hang"});
  ExpectCrash(r, "lease.before_put");
  EXPECT_GE(CheckHealthy(repo_), 0);
  EXPECT_EQ(RestoreAndCompare(repo_, (*b)["id"], image_b_), "");
  r = InRepo({"prune"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(CheckHealthy(repo_), 0);
  EXPECT_EQ(RestoreAndCompare(repo_, (*b)["id"], image_b_), "");
}

// forget removes snapshot objects one by one: a crash between two leaves
// some removed, the rest intact, and forget finishes on the next run.
TEST_F(AgentMoreCrashTest, CrashAtForgetDeletes) {
  std::optional<json> b = Backup(repo_, image_b_, kVolume);
  ASSERT_TRUE(b);
  std::optional<json> c = Backup(repo_, image_a_, kVolume);
  ASSERT_TRUE(c);
  for (int n = 1; n <= 2; ++n) {
    SCOPED_TRACE("crash@" + std::to_string(n));
    const fs::path repo = dir() / ("case" + std::to_string(n));
    ASSERT_NO_FATAL_FAILURE(CopyTree(repo_, repo));
    RunResult r = In(repo, {"forget", "--keep-last", "1"},
                     {"BUNKER_FAILPOINT=forget.before_delete:crash@" + std::to_string(n)});
    ExpectCrash(r, "forget.before_delete");
    std::optional<json> snaps = Snapshots(repo);
    ASSERT_TRUE(snaps);
    EXPECT_EQ((*snaps)["snapshots"].size(), 3u - (n - 1));
    EXPECT_EQ(CheckHealthy(repo), 0);
    for (const json& s : (*snaps)["snapshots"]) {
      EXPECT_EQ(RestoreAndCompare(repo, s["id"], s["id"] == (*b)["id"] ? image_b_ : image_a_), "");
    }
    std::optional<json> f = JsonOk(repo, {"forget", "--keep-last", "1"});
    ASSERT_TRUE(f);
    ASSERT_EQ((*f)["kept"].size(), 1u);
    EXPECT_EQ((*f)["kept"][0]["id"], (*c)["id"]);
  }
}

// Key changes are single object writes: a crash before one leaves the keys
// as they were, and every password that worked still works.
TEST_F(AgentMoreCrashTest, CrashAtKeyAddAndRemove) {
  const fs::path pw2 = dir() / "pw2";
  ASSERT_TRUE(WriteFile(pw2, "second password\n").ok());
  const auto keys_before = ObjectNames(repo_, "keys");
  RunResult r = InRepo({"repo", "key", "add", "--new-password-file", pw2.string()},
                       {"BUNKER_FAILPOINT=key.add.before_put:crash"});
  ExpectCrash(r, "key.add.before_put");
  EXPECT_EQ(ObjectNames(repo_, "keys"), keys_before);
  EXPECT_EQ(RestoreAndCompare(repo_, snap_a_, image_a_), "");

  std::optional<json> added =
      JsonOk(repo_, {"repo", "key", "add", "--new-password-file", pw2.string()});
  ASSERT_TRUE(added);
  const std::string second = (*added)["key_id"];
  const auto keys_two = ObjectNames(repo_, "keys");
  ASSERT_EQ(keys_two.size(), 2u);
  r = InRepo({"repo", "key", "remove", second},
             {"BUNKER_FAILPOINT=key.remove.before_delete:crash"});
  ExpectCrash(r, "key.remove.before_delete");
  EXPECT_EQ(ObjectNames(repo_, "keys"), keys_two);
  r = InRepo({"snapshots"}, {"BUNKER_PASSWORD=second password"});
  EXPECT_TRUE(r.ok()) << "the second password stopped working:\n" << r.Describe();
  EXPECT_EQ(RestoreAndCompare(repo_, snap_a_, image_a_), "");
}

// Restore writes only the target: a crash while writing it leaves a partial
// target (a block device cannot be written aside and renamed) that a second
// restore with --overwrite makes exact; a write error fails the restore
// (exit 1) and removes the target it created.
TEST_F(AgentMoreCrashTest, CrashAndErrorWhileWritingTheRestoreTarget) {
  for (const std::string point : {"io.block_writer.write_at", "io.block_writer.finish"}) {
    SCOPED_TRACE(point);
    const fs::path target = dir() / (point + ".img");
    RunResult r = InRepo({"restore", "--snapshot", snap_a_, "--target", target.string()},
                         {"BUNKER_FAILPOINT=" + point + ":crash"});
    ExpectCrash(r, point);
    r = InRepo({"restore", "--snapshot", snap_a_, "--target", target.string(), "--overwrite"});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(CompareFiles(image_a_, target), "");

    const fs::path failed = dir() / (point + "-error.img");
    r = InRepo({"restore", "--snapshot", snap_a_, "--target", failed.string()},
               {"BUNKER_FAILPOINT=" + point + ":error"});
    EXPECT_EQ(r.exit_code, 1) << r.Describe();
    EXPECT_NE(r.err.find("failpoint " + point), std::string::npos) << r.Describe();
    EXPECT_FALSE(fs::exists(failed)) << r.Describe();
  }
}

// init writes the key, then config: a crash before either leaves no
// repository (commands say so, exit 6), and init can simply run again.
TEST_F(AgentMoreCrashTest, CrashAtInit) {
  for (const std::string point : {"init.before_key", "init.before_config"}) {
    SCOPED_TRACE(point);
    const fs::path repo = dir() / point;
    RunResult r =
        Agent({"--repo", UrlOf(repo), "repo", "init"}, {"BUNKER_FAILPOINT=" + point + ":crash"});
    ExpectCrash(r, point);
    EXPECT_FALSE(fs::exists(repo / "config"));
    r = In(repo, {"snapshots"});
    EXPECT_EQ(r.exit_code, 6) << r.Describe();
    ASSERT_NO_FATAL_FAILURE(Init(repo));
    std::optional<json> b = Backup(repo, image_b_, kVolume);
    ASSERT_TRUE(b);
    EXPECT_EQ(RestoreAndCompare(repo, (*b)["id"], image_b_), "");
    EXPECT_EQ(CheckHealthy(repo), 0);
  }
}

}  // namespace
}  // namespace bunker::testing
