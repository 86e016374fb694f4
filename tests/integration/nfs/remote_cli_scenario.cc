#include "tests/integration/nfs/remote_cli_scenario.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>
#include <thread>

namespace bunker::testing {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string LogText(const fs::path& path) {
  Result<std::string> text = ReadFile(path);
  return text.ok() ? *text : "(" + text.status().ToString() + ")";
}

// 24 MiB block image: random and text chunks, holes, one repeated chunk.
std::vector<Region> SmallImage() {
  std::vector<Region> regions;
  for (uint64_t i = 0; i < 24; ++i) {
    if (i % 6 == 5) {
      regions.push_back(Zero());
    } else if (i == 13) {
      regions.push_back(Random(1000 + 2));  // the same bytes as chunk 2
    } else {
      regions.push_back(i % 3 == 1 ? Text(1000 + i) : Random(1000 + i));
    }
  }
  return regions;
}

// 256 MiB: mostly incompressible data (so it becomes many packs), some text,
// some holes.
std::vector<Region> LargeImage() {
  std::vector<Region> regions;
  for (uint64_t i = 0; i < 256; ++i) {
    if (i % 8 == 7) {
      regions.push_back(Zero());
    } else {
      regions.push_back(i % 4 == 1 ? Text(5000 + i) : Random(5000 + i));
    }
  }
  return regions;
}

// A small directory tree: text, random and empty files, nesting, a symlink.
void MakeTree(const fs::path& root) {
  fs::create_directories(root / "data" / "logs");
  fs::create_directories(root / "empty-dir");
  ASSERT_TRUE(WriteFile(root / "data" / "table.csv", ImageBytes({Text(71, 300000)})).ok());
  ASSERT_TRUE(WriteFile(root / "data" / "blob.bin", ImageBytes({Random(72, 3 * kMiB + 17)})).ok());
  ASSERT_TRUE(WriteFile(root / "data" / "logs" / "app.log", "started\n").ok());
  ASSERT_TRUE(WriteFile(root / "data" / "empty", "").ok());
  fs::create_symlink("data/table.csv", root / "current");
}

// `diff -r --no-dereference a b`: empty when the trees are identical, else
// diff's report.
std::string DiffTree(const fs::path& a, const fs::path& b) {
  Result<RunResult> r = RunCommand({"diff", "-r", "--no-dereference", a.string(), b.string()});
  if (!r.ok()) return "cannot run diff: " + r.status().ToString();
  return r->ok() ? "" : r->Describe();
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::vector<std::string> Under(const std::vector<std::string>& names, const std::string& sub) {
  std::vector<std::string> out;
  for (const std::string& n : names) {
    if (n.rfind(sub + "/", 0) == 0) out.push_back(n);
  }
  return out;
}

RunResult RemoteRepoCliTest::Run(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout) const {
  std::vector<std::string> all = RepoArgs();
  all.insert(all.end(), args.begin(), args.end());
  return Agent(all, RepoEnv(), timeout);
}

std::optional<json> RemoteRepoCliTest::RunJson(const std::vector<std::string>& args) {
  std::vector<std::string> all = args;
  all.push_back("--json");
  RunResult r = Run(all);
  if (!r.ok()) {
    ADD_FAILURE() << "bunker-agent failed:\n" << r.Describe();
    return std::nullopt;
  }
  return StdoutJson(r);
}

int RemoteRepoCliTest::CheckReadsEverything() {
  RunResult r = Run({"check", "--read-data", "--json"});
  EXPECT_EQ(r.exit_code, 0) << "check --read-data failed:\n" << r.Describe();
  std::optional<json> j = StdoutJson(r);
  if (r.exit_code != 0 || !j) return -1;
  int unreferenced = 0;
  for (const json& p : (*j)["problems"]) {
    if (p.value("kind", "") != "unreferenced") {
      ADD_FAILURE() << "check exited 0 but reports a problem: " << p.dump();
      return -1;
    }
    ++unreferenced;
  }
  EXPECT_TRUE(j->value("healthy", false)) << j->dump(2);
  return unreferenced;
}

fs::path RemoteRepoCliTest::Restore(const std::string& snapshot) {
  fs::path target = dir() / ("restored-" + std::to_string(++restores_));
  RunResult r = Run({"restore", "--snapshot", snapshot, "--target", target.string()});
  if (!r.ok()) {
    ADD_FAILURE() << "restore of " << snapshot << " failed:\n" << r.Describe();
    return {};
  }
  return target;
}

void RemoteRepoCliTest::RunLifecycle() {
  {
    RunResult init = Run({"repo", "init"});
    ASSERT_TRUE(init.ok()) << init.Describe();
  }

  // Block mode: a full backup, then an incremental one after four chunks
  // changed.
  const fs::path v1 = dir() / "volume-v1.img";
  const fs::path volume = dir() / "volume.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(v1, SmallImage()));
  ASSERT_NO_FATAL_FAILURE(CopyTree(v1, volume));
  std::optional<json> full =
      RunJson({"backup", "--volume", volume.string(), "--volume-id", "pvc-db"});
  ASSERT_TRUE(full);
  EXPECT_EQ((*full)["kind"], "full");
  EXPECT_EQ((*full)["mode"], "block");
  const std::string full_id = (*full)["id"];

  const std::vector<uint64_t> offsets = {3 * kMiB + 4096, 8 * kMiB - 32 * kKiB, 17 * kMiB};
  for (size_t i = 0; i < offsets.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(ScribbleRange(volume, offsets[i], 64 * kKiB, 40 + i));
  }
  std::optional<json> inc =
      RunJson({"backup", "--volume", volume.string(), "--volume-id", "pvc-db"});
  ASSERT_TRUE(inc);
  EXPECT_EQ((*inc)["kind"], "incremental");
  EXPECT_EQ((*inc)["parent"], full_id);
  const uint64_t bytes_new = (*inc)["stats"]["bytes_new"];
  const uint64_t bytes_reused = (*inc)["stats"]["bytes_reused"];
  EXPECT_GT(bytes_new, 0u);
  EXPECT_LE(bytes_new, 4 * kChunk) << "only the four touched chunks are new";
  EXPECT_GE(bytes_reused, 4 * bytes_new) << "an incremental reuses most of the volume";
  const std::string inc_id = (*inc)["id"];

  // File mode: a small tree.
  const fs::path tree = dir() / "app";
  ASSERT_NO_FATAL_FAILURE(MakeTree(tree));
  std::optional<json> files =
      RunJson({"backup", "--volume", tree.string(), "--volume-id", "pvc-app"});
  ASSERT_TRUE(files);
  EXPECT_EQ((*files)["mode"], "file");
  const std::string files_id = (*files)["id"];

  // Every snapshot restores identical.
  fs::path restored = Restore(full_id);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(CompareFiles(v1, restored), "");
  restored = Restore(inc_id);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(CompareFiles(volume, restored), "");
  restored = Restore(files_id);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(DiffTree(tree, restored), "");

  EXPECT_EQ(CheckReadsEverything(), 0);

  // An independent client sees the repository: config, keys, packs, index
  // files and the three snapshots.
  std::vector<std::string> objects = ListWithIndependentClient();
  EXPECT_TRUE(Contains(objects, "config")) << ::testing::PrintToString(objects);
  EXPECT_FALSE(Under(objects, "keys").empty()) << ::testing::PrintToString(objects);
  EXPECT_FALSE(Under(objects, "index").empty()) << ::testing::PrintToString(objects);
  const std::vector<std::string> packs = Under(objects, "data");
  EXPECT_FALSE(packs.empty()) << ::testing::PrintToString(objects);
  for (const std::string& p : packs) {
    // data/<first 2 hex>/<64 hex>
    EXPECT_EQ(p.size(), 5u + 3u + 64u) << p;
    EXPECT_EQ(p.substr(5, 2), p.substr(8, 2)) << p;
  }
  EXPECT_EQ(packs.size(), PacksOnServer());
  std::vector<std::string> want = {"snapshots/" + full_id, "snapshots/" + inc_id,
                                   "snapshots/" + files_id};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Under(objects, "snapshots"), want);

  // Keep the newest snapshot per volume, garbage-collect, check again.
  std::optional<json> forget = RunJson({"forget", "--keep-last", "1"});
  ASSERT_TRUE(forget) << "forget failed";
  std::optional<json> prune = RunJson({"prune"});
  ASSERT_TRUE(prune) << "prune failed";
  std::optional<json> left = RunJson({"snapshots"});
  ASSERT_TRUE(left);
  std::set<std::string> left_ids;
  for (const json& s : (*left)["snapshots"]) left_ids.insert(s["id"].get<std::string>());
  EXPECT_EQ(left_ids, (std::set<std::string>{inc_id, files_id}));
  objects = ListWithIndependentClient();
  std::set<std::string> listed;
  for (const std::string& s : Under(objects, "snapshots")) listed.insert(s.substr(10));
  EXPECT_EQ(listed, left_ids) << "the independent client still lists the forgotten snapshot";
  EXPECT_EQ(CheckReadsEverything(), 0);

  restored = Restore(inc_id);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(CompareFiles(volume, restored), "");
  restored = Restore(files_id);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(DiffTree(tree, restored), "");
}

void RemoteRepoCliTest::RunServerKilledMidBackup() {
  {
    RunResult init = Run({"repo", "init"});
    ASSERT_TRUE(init.ok()) << init.Describe();
  }
  const fs::path volume = dir() / "large.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(volume, LargeImage()));

  // The backup runs in the background. Each PUT is slowed (BUNKER_FAULTS, a
  // test-only wrapper) so that the server surely dies while packs are still
  // being uploaded, however fast the machine.
  std::vector<std::string> argv = {AgentBinary().string()};
  for (const std::string& a : RepoArgs()) argv.push_back(a);
  for (const std::string& a : {std::string("backup"), std::string("--volume"), volume.string(),
                               std::string("--volume-id"), std::string("pvc-big")}) {
    argv.push_back(a);
  }
  EnvChanges env = RepoEnv();
  env.push_back("BUNKER_FAULTS=put:slow=400");
  SpawnOptions spawn;
  spawn.env = Env(env);
  spawn.cwd = dir();
  spawn.log_path = dir() / "backup.log";
  Result<Process> backup = Process::Start(argv, spawn);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();

  const auto deadline = Clock::now() + std::chrono::minutes(5);
  while (backup->Running() && PacksOnServer() < 2 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(backup->Running()) << "the backup ended before the server could be killed ("
                                 << backup->Stop() << "):\n"
                                 << LogText(spawn.log_path);
  ASSERT_LT(Clock::now(), deadline) << "no pack reached the server";
  KillServer();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // clients see it gone
  Status restarted = RestartServer();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();

  while (backup->Running() && Clock::now() < deadline + std::chrono::minutes(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(backup->Running()) << "the backup hangs after the server came back";
  const std::string how = backup->Stop();
  const std::string log = LogText(spawn.log_path);
  if (how == "exit 0") {
    std::cout << "[ note ] the backup survived the server restart\n";
  } else {
    std::cout << "[ note ] the backup failed (" << how << ") after the server restart\n";
    EXPECT_NE(log.find(ServerAddress()), std::string::npos)
        << "the error does not name the server " << ServerAddress() << ":\n"
        << log;
  }
  EXPECT_GE(CheckReadsEverything(), 0);

  // The next backup succeeds and restores identical.
  std::optional<json> next =
      RunJson({"backup", "--volume", volume.string(), "--volume-id", "pvc-big"});
  ASSERT_TRUE(next);
  const fs::path restored = Restore((*next)["id"]);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(CompareFiles(volume, restored), "");
  std::error_code ec;
  fs::remove(restored, ec);
  EXPECT_GE(CheckReadsEverything(), 0);
}

void RemoteRepoCliTest::RunCrashAt(const std::string& failpoint) {
  {
    RunResult init = Run({"repo", "init"});
    ASSERT_TRUE(init.ok()) << init.Describe();
  }
  const fs::path first = dir() / "first.img", second = dir() / "second.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(first, SmallImage()));
  std::vector<Region> regions;
  for (uint64_t i = 0; i < 40; ++i) regions.push_back(Random(7000 + i));  // 3 packs
  ASSERT_NO_FATAL_FAILURE(WriteImage(second, regions));
  std::optional<json> kept = RunJson({"backup", "--volume", first.string(), "--volume-id", "a"});
  ASSERT_TRUE(kept);

  std::vector<std::string> args = RepoArgs();
  for (const char* a : {"backup", "--volume-id", "b", "--volume"}) args.emplace_back(a);
  args.push_back(second.string());
  EnvChanges env = RepoEnv();
  env.push_back("BUNKER_FAILPOINT=" + failpoint + ":crash@2");
  std::cout << "[ crash ] " << failpoint << ":crash@2" << std::endl;  // failpoint_coverage.sh
  RunResult crashed = Agent(args, env, std::chrono::seconds(300));
  ASSERT_EQ(crashed.exit_code, 86) << "the backup did not crash at " << failpoint << ":\n"
                                   << crashed.Describe();

  EXPECT_GE(CheckReadsEverything(), 0);
  std::optional<json> snaps = RunJson({"snapshots"});
  ASSERT_TRUE(snaps);
  ASSERT_EQ((*snaps)["snapshots"].size(), 1u) << snaps->dump(2);
  EXPECT_EQ((*snaps)["snapshots"][0]["id"], (*kept)["id"]);
  fs::path restored = Restore((*kept)["id"]);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(CompareFiles(first, restored), "");

  std::optional<json> next = RunJson({"backup", "--volume", second.string(), "--volume-id", "b"});
  ASSERT_TRUE(next);
  restored = Restore((*next)["id"]);
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(CompareFiles(second, restored), "");
  ASSERT_TRUE(RunJson({"prune"}));
  EXPECT_EQ(CheckReadsEverything(), 0) << "prune left unreferenced packs";
}

}  // namespace bunker::testing
