// Model-based randomized test of bunker-agent against a file:// repository.
//
// The model knows, for every snapshot id the agent ever printed (or that a
// crashed backup left behind), the exact image it was taken from. Steps are
// drawn from a seeded generator: change a volume, back it up (plain, with an
// injected storage fault, crashed at a failpoint, or killed), two backups at
// once, forget, prune (plain, faulted, crashed), and restore checks. After
// every step:
//   - every snapshot the agent reported saved, and not forgotten, is listed;
//   - every listed snapshot is known to the model (nothing appears from nowhere);
//   - `check` finds nothing damaged or missing;
// and periodically every listed snapshot is restored and compared byte for
// byte, and `check --read-data` runs.
//
// BUNKER_MODEL_SEEDS="1 2 3" and BUNKER_MODEL_STEPS=N widen the run (make soak).

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/agent/agent_test_util.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kVolumes = 3;
constexpr uint64_t kChunks = 6;  // 6 MiB volumes

const char* const kBackupFaults[] = {
    "put:error@2",    "put:fatal@3", "get:flip@1",     "get:truncate@2",
    "list:partial@2", "any:error@7", "delete:error@1", "put:slow@1=200",
};
const char* const kBackupCrashPoints[] = {
    "pack.before_put",       "pack.after_put",         "index.before_put",
    "backup.before_index",   "backup.before_snapshot", "snapshot.before_put",
    "backup.after_snapshot", "file.put.before_rename", "lease.before_put",
    "backup.before_commit",
};
// Reached only by a backup that commits after another that stored the same
// chunks (two backups at once).
const char* const kCommitCrashPoints[] = {"backup.commit.rewrite", "backup.commit.delete_pack"};
const char* const kPruneFaults[] = {"list:partial@4", "get:flip@2",     "put:error@1",
                                    "delete:error@2", "list:partial@6", "any:fatal@9"};
const char* const kPruneCrashPoints[] = {"prune.repack.add", "prune.before_index",
                                         "prune.delete_index", "prune.delete_pack",
                                         "index.before_put"};

class ModelTest : public AgentTest {
 protected:
  struct Known {
    fs::path image;  // a copy of the volume as it was backed up
    std::string volume;
    bool reported = false;  // the agent said it saved it
    bool forgotten = false;
  };

  void RunSeed(uint64_t seed, int steps) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    rng_.seed(seed);
    known_.clear();
    repo_ = dir() / ("repo-" + std::to_string(seed));
    ASSERT_NO_FATAL_FAILURE(Init(repo_));
    for (int v = 0; v < kVolumes; ++v) {
      std::vector<Region> regions;
      for (uint64_t i = 0; i < kChunks; ++i) {
        uint64_t s = seed * 1000 + v * 100 + i;
        switch ((i + v) % 4) {
          case 0:
            regions.push_back(Random(s));
            break;
          case 1:
            regions.push_back(Text(s));
            break;
          case 2:
            regions.push_back(Zero());
            break;
          default:
            regions.push_back(Random(s, kMiB / 2));
            break;
        }
      }
      ASSERT_NO_FATAL_FAILURE(WriteImage(Volume(v), regions));
    }
    for (int step = 0; step < steps; ++step) {
      std::string what = Step();
      SCOPED_TRACE("step " + std::to_string(step) + ": " + what);
      log_ << "seed " << seed << " step " << step << ": " << what << "\n";
      ASSERT_NO_FATAL_FAILURE(CheckInvariants(step % 4 == 3 || step + 1 == steps));
      if (HasFatalFailure()) return;
    }
  }

  fs::path Volume(int v) const { return dir() / ("vol" + std::to_string(v) + ".img"); }
  std::string VolumeId(int v) const { return "pvc-" + std::to_string(v); }
  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }

  // Snapshot ids currently listed, with their volume ids.
  std::map<std::string, std::string> Listed() {
    std::map<std::string, std::string> out;
    std::optional<json> j = Snapshots(repo_);
    if (!j) return out;
    for (const json& s : (*j)["snapshots"]) out[s["id"]] = s["volume_id"];
    return out;
  }

  // After a backup attempt of volume v whose image was copied to `attempt`:
  // a reported id, or any new listed id, is that attempt's snapshot.
  void RecordBackup(const RunResult& r, int v, const fs::path& attempt) {
    std::optional<std::string> reported;
    if (r.ok()) {
      json j = json::parse(r.out, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << r.Describe();
      reported = j["id"].get<std::string>();
    }
    // New snapshots of this volume (a concurrent backup of another volume
    // records its own; anything left unknown fails CheckInvariants).
    for (const auto& [id, volume] : Listed()) {
      if (known_.contains(id) || volume != VolumeId(v)) continue;
      known_[id] = Known{attempt, volume, reported && *reported == id, false};
    }
    if (reported) {
      ASSERT_TRUE(known_.contains(*reported))
          << "backup reported snapshot " << *reported << " but it is not listed";
      known_[*reported].reported = true;
    }
  }

  fs::path CopyForAttempt(int v) {
    fs::path copy = dir() / ("attempt-" + std::to_string(attempts_++) + ".img");
    fs::copy_file(Volume(v), copy);
    return copy;
  }

  std::string Step() {
    int kind = Pick(100);
    if (kind < 20) {  // change a volume
      int v = Pick(kVolumes);
      int writes = 1 + Pick(2);
      for (int i = 0; i < writes; ++i) {
        uint64_t off = static_cast<uint64_t>(Pick(static_cast<int>(kChunks * 16))) * 64 * kKiB;
        ScribbleRange(Volume(v), off, 64 * kKiB, rng_());
      }
      return "change " + VolumeId(v);
    }
    if (kind < 50) {  // one backup, maybe faulted or crashed
      int v = Pick(kVolumes);
      fs::path attempt = CopyForAttempt(v);
      EnvChanges env;
      std::string how = "plain";
      int mode = Pick(10);
      if (mode < 3) {
        how = kBackupFaults[Pick(std::size(kBackupFaults))];
        env.push_back("BUNKER_FAULTS=" + how);
      } else if (mode < 6) {
        how = std::string(kBackupCrashPoints[Pick(std::size(kBackupCrashPoints))]) + ":crash";
        env.push_back("BUNKER_FAULTS=");
        env.push_back("BUNKER_FAILPOINT=" + how);
      }
      std::vector<std::string> args = {"backup",      "--volume",  attempt.string(),
                                       "--volume-id", VolumeId(v), "--json"};
      if (Pick(5) == 0) args.push_back("--full");
      RunResult r = In(repo_, args, env);
      EXPECT_FALSE(r.timed_out) << r.Describe();
      if (how == "plain") {
        EXPECT_TRUE(r.ok()) << r.Describe();
      }
      RecordBackup(r, v, attempt);
      return "backup " + VolumeId(v) + " (" + how + ") exit " + std::to_string(r.exit_code);
    }
    if (kind < 62) {  // two backups at once, one possibly killed
      int v1 = Pick(kVolumes), v2 = (v1 + 1 + Pick(kVolumes - 1)) % kVolumes;
      fs::path a1 = CopyForAttempt(v1), a2 = CopyForAttempt(v2);
      bool kill_second = Pick(2) == 0;
      // Otherwise the second crashes in its commit, sometimes (when it
      // commits after the first and they stored chunks in common).
      std::string crash_second;
      if (!kill_second && Pick(2) == 0) {
        crash_second = std::string(kCommitCrashPoints[Pick(std::size(kCommitCrashPoints))]);
      }
      auto run = [&](int v, const fs::path& a, bool kill, const std::string& crash) {
        RunOptions opts;
        opts.env = crash.empty() ? Env() : Env({"BUNKER_FAILPOINT=" + crash + ":crash"});
        opts.timeout = kill ? std::chrono::milliseconds(50 + Pick(400)) : std::chrono::seconds(120);
        std::vector<std::string> argv = {
            AgentBinary().string(), "--repo",    UrlOf(repo_), "backup", "--volume", a.string(),
            "--volume-id",          VolumeId(v), "--json"};
        Result<RunResult> r = RunCommand(argv, opts);
        return r.ok() ? *r : RunResult{};
      };
      std::future<RunResult> f1 = std::async(std::launch::async, run, v1, a1, false, "");
      std::future<RunResult> f2 =
          std::async(std::launch::async, run, v2, a2, kill_second, crash_second);
      RunResult r1 = f1.get(), r2 = f2.get();
      EXPECT_TRUE(r1.ok()) << r1.Describe();
      if (!kill_second && crash_second.empty()) {
        EXPECT_TRUE(r2.ok()) << r2.Describe();
      }
      RecordBackup(r1, v1, a1);
      RecordBackup(r2, v2, a2);
      return "concurrent backups of " + VolumeId(v1) + " and " + VolumeId(v2) +
             (kill_second ? " (second killed)" : "") +
             (crash_second.empty() ? ""
                                   : " (second: " + crash_second + ":crash, exit " +
                                         std::to_string(r2.exit_code) + ")");
    }
    if (kind < 72) {  // forget
      int v = Pick(kVolumes);
      int keep = 1 + Pick(2);
      RunResult r = In(repo_, {"forget", "--keep-last", std::to_string(keep), "--volume-id",
                               VolumeId(v), "--json"});
      EXPECT_TRUE(r.ok()) << r.Describe();
      if (r.ok()) {
        json j = json::parse(r.out, nullptr, false);
        for (const json& s : j["removed"]) {
          std::string id = s["id"];
          if (known_.contains(id)) known_[id].forgotten = true;
        }
      }
      return "forget " + VolumeId(v) + " keep " + std::to_string(keep);
    }
    if (kind < 90) {  // prune, maybe faulted or crashed
      EnvChanges env;
      std::string how = "plain";
      int mode = Pick(10);
      if (mode < 4) {
        how = kPruneFaults[Pick(std::size(kPruneFaults))];
        env.push_back("BUNKER_FAULTS=" + how);
      } else if (mode < 7) {
        how = std::string(kPruneCrashPoints[Pick(std::size(kPruneCrashPoints))]) + ":crash";
        env.push_back("BUNKER_FAILPOINT=" + how);
      }
      WaitUntilPacksAreOlderThanNow(repo_);
      RunResult r = In(repo_, {"prune", "--json"}, env);
      EXPECT_FALSE(r.timed_out) << r.Describe();
      if (how == "plain") {
        EXPECT_TRUE(r.ok()) << r.Describe();
      }
      return "prune (" + how + ") exit " + std::to_string(r.exit_code);
    }
    // restore one known snapshot, with a read fault sometimes: either it
    // restores exactly or it fails — never a wrong file.
    std::vector<std::string> live;
    std::map<std::string, std::string> listed = Listed();
    for (const auto& [id, volume] : listed) live.push_back(id);
    if (live.empty()) return "restore (nothing to restore)";
    std::string id = live[Pick(static_cast<int>(live.size()))];
    fs::path target = dir() / ("restore-" + std::to_string(attempts_++) + ".img");
    EnvChanges env;
    std::string how = "plain";
    if (Pick(2) == 0) {
      how = Pick(2) ? "get:flip@3" : "get:truncate@2";
      env.push_back("BUNKER_FAULTS=" + how);
    }
    RunResult r = In(repo_, {"restore", "--snapshot", id, "--target", target.string()}, env);
    if (r.ok()) {
      EXPECT_EQ(CompareFiles(known_[id].image, target), "")
          << "restore of " << id << " (" << how << ") reported success with different bytes";
    } else {
      EXPECT_NE(how, "plain") << r.Describe();
      EXPECT_FALSE(fs::exists(target)) << "a failed restore left " << target;
    }
    fs::remove(target);
    return "restore " + id.substr(0, 12) + " (" + how + ") exit " + std::to_string(r.exit_code);
  }

  void CheckInvariants(bool deep) {
    std::map<std::string, std::string> listed = Listed();
    for (const auto& [id, k] : known_) {
      if (k.reported && !k.forgotten) {
        ASSERT_TRUE(listed.contains(id)) << "snapshot " << id << " was reported saved and is gone\n"
                                         << log_.str();
      }
    }
    for (const auto& [id, volume] : listed) {
      ASSERT_TRUE(known_.contains(id)) << "unknown snapshot " << id << "\n" << log_.str();
    }
    ASSERT_GE(CheckHealthy(repo_, deep), 0) << log_.str();
    if (!deep) return;
    for (const auto& [id, volume] : listed) {
      EXPECT_EQ(RestoreAndCompare(repo_, id, known_[id].image), "")
          << "snapshot " << id << " of " << volume << "\n"
          << log_.str();
    }
  }

  std::mt19937_64 rng_;
  std::map<std::string, Known> known_;
  int attempts_ = 0;
  std::ostringstream log_;
};

TEST_F(ModelTest, RandomSequencesKeepEverySavedSnapshotRestorable) {
  std::vector<uint64_t> seeds = {20261125};
  int steps = 24;
  if (const char* s = std::getenv("BUNKER_MODEL_SEEDS")) {
    seeds.clear();
    std::istringstream in(s);
    for (uint64_t v; in >> v;) seeds.push_back(v);
  }
  if (const char* s = std::getenv("BUNKER_MODEL_STEPS")) steps = std::atoi(s);
  for (uint64_t seed : seeds) {
    RunSeed(seed, steps);
    if (HasFatalFailure()) return;
  }
  std::cout << log_.str();
}

}  // namespace
}  // namespace bunker::testing
