// bunker-agent against damaged and shared repositories: flipped bytes in
// every kind of object, two backups at once into one repository, and
// forget + prune reclaiming space.

#include <algorithm>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/agent/agent_test_util.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class AgentRepoTest : public AgentTest {};

// A repository with one snapshot of a 12 MiB mixed image.
class AgentDamageTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (HasFatalFailure()) return;
    image_ = dir() / "vol.img";
    ASSERT_NO_FATAL_FAILURE(
        WriteImage(image_, {Random(1), Text(2), Random(3), Zero(), Random(4), Random(5), Text(6),
                            Random(7), Zero(), Random(8), Random(9), Random(10, 99999)}));
    ASSERT_NO_FATAL_FAILURE(Init(repo_));
    std::optional<json> b = Backup(repo_, image_, "pvc-damage");
    ASSERT_TRUE(b);
    snap_ = (*b)["id"];
    ASSERT_EQ(CheckHealthy(repo_), 0);
  }

  // A copy of the good repository with one byte of `object` (relative name,
  // e.g. "index/<id>") flipped at `offset` (negative: from the end).
  fs::path DamagedCopy(const std::string& name, const std::string& object, int64_t offset) {
    fs::path copy = dir() / name;
    CopyTree(repo_, copy);
    const uint64_t size = fs::file_size(copy / object);
    FlipByte(copy / object, offset >= 0 ? offset : size + offset);
    return copy;
  }

  // check --read-data exits 5 and names `object` as damaged.
  void ExpectCheckNames(const fs::path& repo, const std::string& object) {
    RunResult r = In(repo, {"check", "--read-data", "--json"});
    EXPECT_EQ(r.exit_code, 5) << r.Describe();
    std::optional<json> j = StdoutJson(r);
    ASSERT_TRUE(j);
    EXPECT_FALSE((*j)["healthy"].get<bool>());
    bool named = false;
    for (const json& p : (*j)["problems"]) {
      if (p["object"] == object && p["kind"] == "damaged") named = true;
    }
    EXPECT_TRUE(named) << "check does not name " << object << " as damaged:\n" << j->dump(2);
  }

  // A restore either fails and leaves no target, or succeeds with the exact
  // bytes: never a silently different file. Returns whether it failed.
  bool RestoreFailsOrIsExact(const fs::path& repo, const std::string& what) {
    const fs::path target = dir() / ("restore-" + what + ".img");
    RunResult r = In(repo, {"restore", "--snapshot", snap_, "--target", target.string()});
    if (r.ok()) {
      EXPECT_EQ(CompareFiles(image_, target), "") << "restore exited 0 with wrong content";
      return false;
    }
    EXPECT_FALSE(fs::exists(target)) << "a failed restore left " << target << ":\n" << r.Describe();
    EXPECT_EQ(r.exit_code, 5) << r.Describe();
    // One error line; warnings (a skipped damaged index file) may precede it.
    const std::vector<std::string> lines = Lines(r.err);
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [](const std::string& l) { return l.starts_with("bunker-agent: "); }),
              1)
        << r.Describe();
    return true;
  }

  fs::path image_;
  std::string snap_;
};

TEST_F(AgentDamageTest, FlippedByteInPackData) {
  const std::vector<std::string> packs = ObjectNames(repo_, "data");
  ASSERT_FALSE(packs.empty());
  for (const std::string& pack : packs) {
    SCOPED_TRACE(pack);
    // The middle of a pack is inside a blob (the trailer is at the end).
    const int64_t middle = static_cast<int64_t>(fs::file_size(repo_ / pack) / 2);
    const fs::path copy = DamagedCopy("pack-" + pack.substr(8, 8), pack, middle);
    ExpectCheckNames(copy, pack);
    EXPECT_TRUE(RestoreFailsOrIsExact(copy, pack.substr(8, 8)))
        << "every blob of a single-snapshot repository is needed by its restore";
  }
}

TEST_F(AgentDamageTest, FlippedByteInPackTrailer) {
  const std::vector<std::string> packs = ObjectNames(repo_, "data");
  ASSERT_FALSE(packs.empty());
  // 10 bytes from the end: inside the sealed trailer (footer is 8 bytes).
  const fs::path copy = DamagedCopy("trailer", packs.front(), -10);
  ExpectCheckNames(copy, packs.front());
  // Restore reads blobs by the index, not the trailer: it may succeed, but
  // only with the exact bytes.
  RestoreFailsOrIsExact(copy, "trailer");
}

TEST_F(AgentDamageTest, FlippedByteInIndex) {
  const std::vector<std::string> index = ObjectNames(repo_, "index");
  ASSERT_EQ(index.size(), 1u);
  const fs::path copy = DamagedCopy("index", index.front(), 100);
  ExpectCheckNames(copy, index.front());
  EXPECT_TRUE(RestoreFailsOrIsExact(copy, "index"));
}

TEST_F(AgentDamageTest, FlippedByteInSnapshot) {
  const std::string object = "snapshots/" + snap_;
  const fs::path copy = DamagedCopy("snapshot", object, 40);
  ExpectCheckNames(copy, object);
  EXPECT_TRUE(RestoreFailsOrIsExact(copy, "snapshot"));
}

TEST_F(AgentDamageTest, FlippedByteInKeyFile) {
  const std::vector<std::string> keys = ObjectNames(repo_, "keys");
  ASSERT_EQ(keys.size(), 1u);
  const fs::path copy = DamagedCopy("key", keys.front(), 50);
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"snapshots"}, {"check", "--read-data"}}) {
    SCOPED_TRACE(cmd[0]);
    RunResult r = In(copy, cmd);
    EXPECT_EQ(r.exit_code, 5) << r.Describe();
    std::vector<std::string> err = Lines(r.err);
    ASSERT_EQ(err.size(), 1u) << r.Describe();
    // Names the key file and says it is damaged — not a misleading "wrong password".
    EXPECT_NE(err[0].find(keys.front()), std::string::npos) << err[0];
    EXPECT_NE(err[0].find("damaged"), std::string::npos) << err[0];
    EXPECT_EQ(err[0].find("wrong password"), std::string::npos) << err[0];
  }
  EXPECT_TRUE(RestoreFailsOrIsExact(copy, "key"));
}

// One damaged snapshot file must not take the rest of the repository down:
// other volumes' snapshots still restore and new backups still work. (The
// damaged one is reported by check, see FlippedByteInSnapshot.)
TEST_F(AgentDamageTest, DamagedSnapshotDoesNotBlockOtherVolumes) {
  const fs::path other = dir() / "other.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(other, {Random(70), Text(71), Zero(), Random(72)}));
  std::optional<json> b = Backup(repo_, other, "pvc-other");
  ASSERT_TRUE(b);
  const std::string other_id = (*b)["id"];
  const fs::path copy = DamagedCopy("snapshot-other", "snapshots/" + snap_, 40);

  // Regression: Repository::ListSnapshots used to fail on the first snapshot
  // that did not decode, and restore, backup and snapshots all go through it,
  // so one flipped byte in one snapshot stopped every restore and every
  // backup of every volume (seen by this test; fixed in e6eaf67).
  EXPECT_EQ(RestoreAndCompare(copy, other_id, other), "")
      << "an undamaged snapshot of another volume no longer restores";
  RunResult r = In(copy, {"backup", "--volume", other.string(), "--volume-id", "pvc-third"});
  EXPECT_TRUE(r.ok()) << "a backup of an unrelated volume fails because of a damaged snapshot:\n"
                      << r.Describe();
}

// The way out of a damaged snapshot: a policy forget and prune refuse (they
// would act on partial knowledge) and say how to remove it; naming it with
// forget --snapshot removes that object alone, after which prune runs and
// check is clean. A name that is too short, or --volume-id (its volume is in
// the unreadable part), removes nothing.
TEST_F(AgentDamageTest, DamagedSnapshotIsRemovedByNameSoPruneRunsAgain) {
  const fs::path other = dir() / "other.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(other, {Random(80), Text(81), Random(82)}));
  std::optional<json> b = Backup(repo_, other, "pvc-other");
  ASSERT_TRUE(b);
  const std::string other_id = (*b)["id"];
  const fs::path copy = DamagedCopy("snapshot-forget", "snapshots/" + snap_, 40);
  const std::string hint = "forget --snapshot ID";

  RunResult policy = In(copy, {"forget", "--keep-last", "1"});
  EXPECT_EQ(policy.exit_code, 5) << policy.Describe();
  EXPECT_NE(policy.err.find(hint), std::string::npos) << policy.Describe();
  RunResult prune = In(copy, {"prune"});
  EXPECT_EQ(prune.exit_code, 5) << prune.Describe();
  EXPECT_NE(prune.err.find(hint), std::string::npos) << prune.Describe();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"forget", "--snapshot", snap_.substr(0, 4)},
        std::vector<std::string>{"forget", "--snapshot", snap_.substr(0, 10), "--volume-id",
                                 "pvc-damage"}}) {
    RunResult r = In(copy, args);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
    EXPECT_TRUE(fs::exists(copy / "snapshots" / snap_)) << r.Describe();
  }

  std::optional<json> f = JsonOk(copy, {"forget", "--snapshot", snap_.substr(0, 10)});
  ASSERT_TRUE(f);
  ASSERT_EQ((*f)["removed_damaged"].size(), 1u) << f->dump(2);
  EXPECT_EQ((*f)["removed_damaged"][0], snap_);
  EXPECT_EQ((*f)["removed"].size(), 0u) << f->dump(2);
  EXPECT_FALSE(fs::exists(copy / "snapshots" / snap_));
  ASSERT_EQ((*f)["kept"].size(), 1u) << f->dump(2);
  EXPECT_EQ((*f)["kept"][0]["id"], other_id);

  std::optional<json> p = JsonOk(copy, {"prune"});
  ASSERT_TRUE(p);
  EXPECT_GT((*p)["blobs_removed"].get<uint64_t>(), 0u)
      << "the damaged snapshot's own data should have been pruned";
  EXPECT_EQ(CheckHealthy(copy, true), 0);
  EXPECT_EQ(RestoreAndCompare(copy, other_id, other), "");
}

TEST_F(AgentRepoTest, ConcurrentBackupsShareChunks) {
  // 24 shared chunks, 4 of each image's own; the shared ones at other
  // positions in the second image.
  std::vector<Region> rx, ry;
  for (uint64_t i = 0; i < 24; ++i) rx.push_back(i % 6 == 5 ? Text(100 + i) : Random(100 + i));
  for (uint64_t i = 0; i < 4; ++i) rx.push_back(Random(200 + i));
  for (uint64_t i = 0; i < 4; ++i) ry.push_back(Random(300 + i));
  for (uint64_t i = 0; i < 24; ++i) ry.push_back(rx[23 - i]);
  const fs::path x = dir() / "x.img", y = dir() / "y.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(x, rx));
  ASSERT_NO_FATAL_FAILURE(WriteImage(y, ry));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));

  auto backup = [this](const fs::path& image, const std::string& volume) {
    return In(repo_, {"backup", "--volume", image.string(), "--volume-id", volume, "--json"});
  };
  // RunCommand in two threads: each thread outlives its child.
  std::future<RunResult> fx = std::async(std::launch::async, backup, x, "pvc-x");
  std::future<RunResult> fy = std::async(std::launch::async, backup, y, "pvc-y");
  RunResult rx_run = fx.get(), ry_run = fy.get();
  ASSERT_TRUE(rx_run.ok()) << rx_run.Describe();
  ASSERT_TRUE(ry_run.ok()) << ry_run.Describe();
  std::optional<json> jx = StdoutJson(rx_run), jy = StdoutJson(ry_run);
  ASSERT_TRUE(jx && jy);
  const std::string x_id = (*jx)["id"], y_id = (*jy)["id"];

  EXPECT_EQ(RestoreAndCompare(repo_, x_id, x), "");
  EXPECT_EQ(RestoreAndCompare(repo_, y_id, y), "");
  EXPECT_EQ(CheckHealthy(repo_), 0);

  std::optional<json> st = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(st);
  const uint64_t unique = (*st)["unique_raw_bytes"];
  const uint64_t union_bytes = 32 * kMiB;  // 24 shared + 4 + 4 distinct chunks
  // Plus two small content lists (meta blobs); far from the sum (56 MiB).
  EXPECT_GE(unique, union_bytes);
  EXPECT_LE(unique, union_bytes + 64 * kKiB) << st->dump(2);
  EXPECT_EQ((*st)["snapshots"], 2u);
  EXPECT_EQ((*st)["volumes"], 2u);
  EXPECT_EQ((*st)["logical_bytes"], 56 * kMiB);
  // Stored once: whichever commits second drops from its packs what the
  // first committed (mover/commit.h), so each chunk is new in exactly one
  // of the two and the location holds the union, not the sum.
  const uint64_t stored = (*st)["stored_bytes"];
  const uint64_t new_x = (*jx)["stats"]["bytes_new"], new_y = (*jy)["stats"]["bytes_new"];
  EXPECT_EQ(new_x + new_y, union_bytes) << "x " << new_x << ", y " << new_y;
  EXPECT_LE(stored, union_bytes + 256 * kKiB) << st->dump(2);
  std::cout << "[ info  ] concurrent backups: stored_bytes=" << stored << " (sum of images "
            << 56 * kMiB << ", union " << union_bytes << "); new: x " << new_x << ", y " << new_y
            << std::endl;

  // Prune finds nothing stored twice; both snapshots still restore.
  std::optional<json> p = JsonOk(repo_, {"prune"});
  ASSERT_TRUE(p);
  EXPECT_EQ((*p)["blobs_removed"], 0) << p->dump(2);
  EXPECT_EQ(CheckHealthy(repo_), 0);
  std::optional<json> after = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)["unique_raw_bytes"], unique);
  EXPECT_EQ((*after)["stored_bytes"].get<uint64_t>(), stored);
  EXPECT_EQ(RestoreAndCompare(repo_, x_id, x), "");
  EXPECT_EQ(RestoreAndCompare(repo_, y_id, y), "");
}

TEST_F(AgentRepoTest, ForgetAndPruneReclaimSpace) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::vector<fs::path> images;
  std::string last_id;
  for (uint64_t v = 0; v < 3; ++v) {
    images.push_back(dir() / ("v" + std::to_string(v) + ".img"));
    std::vector<Region> regions = {Random(1), Random(2)};  // shared by all
    for (uint64_t i = 0; i < 6; ++i) {
      regions.push_back(i == 3 ? Zero() : Random(100 * (v + 1) + i));
    }
    ASSERT_NO_FATAL_FAILURE(WriteImage(images.back(), regions));
    std::optional<json> b = Backup(repo_, images.back(), "pvc-prune");
    ASSERT_TRUE(b);
    last_id = (*b)["id"];
  }
  std::optional<json> before = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(before);

  std::optional<json> f = JsonOk(repo_, {"forget", "--keep-last", "1"});
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["removed"].size(), 2u);
  ASSERT_EQ((*f)["kept"].size(), 1u);
  EXPECT_EQ((*f)["kept"][0]["id"], last_id);
  // forget alone deletes no data.
  std::optional<json> forgotten = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(forgotten);
  EXPECT_EQ((*forgotten)["stored_bytes"], (*before)["stored_bytes"]);

  std::optional<json> p = JsonOk(repo_, {"prune"});
  ASSERT_TRUE(p);
  std::optional<json> after = JsonOk(repo_, {"stats"});
  ASSERT_TRUE(after);
  const uint64_t stored_before = (*before)["stored_bytes"], stored_after = (*after)["stored_bytes"];
  EXPECT_LT(stored_after, stored_before) << p->dump(2);
  // What is left is about the kept volume's 7 non-zero chunks.
  EXPECT_LE(stored_after, 8 * kMiB) << p->dump(2);
  EXPECT_GE((*after)["unique_raw_bytes"].get<uint64_t>(), 7 * kMiB);
  EXPECT_EQ((*after)["snapshots"], 1u);
  EXPECT_EQ(CheckHealthy(repo_), 0);
  EXPECT_EQ(RestoreAndCompare(repo_, last_id, images.back()), "");
}

// forget takes a policy (--keep-last) or a list (--snapshot), never both or
// neither, and --keep-last 0 (every snapshot of every volume: what a
// script's empty $KEEP becomes) only with --volume-id. Refusals and unknown
// snapshots remove nothing.
TEST_F(AgentRepoTest, ForgetRemovesNamedSnapshotsAndNeverEverythingByAccident) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path image = dir() / "f.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, {Random(11), Random(12)}));
  std::map<std::string, std::vector<std::string>> ids;  // volume -> ids, oldest first
  for (const char* volume : {"pvc-a", "pvc-a", "pvc-b", "pvc-b"}) {
    std::optional<json> b = Backup(repo_, image, volume);
    ASSERT_TRUE(b);
    ids[volume].push_back((*b)["id"]);
  }
  auto remaining = [&] {
    std::set<std::string> out;
    std::optional<json> s = Snapshots(repo_);
    if (s) {
      for (const json& x : (*s)["snapshots"]) out.insert(x["id"].get<std::string>());
    }
    return out;
  };
  const std::set<std::string> all = remaining();
  ASSERT_EQ(all.size(), 4u);

  struct Refusal {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  const Refusal refusals[] = {
      {{"forget"}, 2, "give --keep-last N"},
      {{"forget", "--keep-last", "0"}, 2, "would remove every snapshot of every volume"},
      {{"forget", "--keep-last", "1", "--snapshot", ids["pvc-a"][0]}, 2, "excludes"},
      // What a script's empty $KEEP becomes.
      {{"forget", "--keep-last", ""}, 2, "a count of snapshots (0 or more) is needed"},
      {{"forget", "--keep-last", "-1"}, 2, "--keep-last"},
      // "latest" changes as backups run: forget wants the snapshot named.
      {{"forget", "--snapshot", "latest", "--volume-id", "pvc-a"}, 2, "not \"latest\""},
      {{"forget", "--snapshot", "0123456789ab"}, 6, "no snapshot 0123456789ab"},
      // One of two unknown: the known one stays too.
      {{"forget", "--snapshot", ids["pvc-a"][0], "--snapshot", "fedcba987654"},
       6,
       "nothing removed"},
      // Named, but of another volume than --volume-id says.
      {{"forget", "--snapshot", ids["pvc-b"][0], "--volume-id", "pvc-a"}, 6, "of volume pvc-a"},
      {{"forget", "--snapshot", "abc"}, 2, "at least 6 of its hex digits"},
      {{"forget", "--snapshot", "ABCDEF"}, 2, "at least 6 of its hex digits"},
  };
  for (const Refusal& r : refusals) {
    RunResult run = In(repo_, r.args);
    EXPECT_EQ(run.exit_code, r.exit_code) << run.Describe();
    EXPECT_NE(run.err.find(r.says), std::string::npos) << run.Describe();
    EXPECT_EQ(remaining(), all) << run.Describe();
  }

  // A unique prefix removes exactly that snapshot; its volume's other one
  // (an incremental whose parent it was) still restores.
  std::optional<json> one = JsonOk(repo_, {"forget", "--snapshot", ids["pvc-b"][0].substr(0, 10)});
  ASSERT_TRUE(one);
  ASSERT_EQ((*one)["removed"].size(), 1u) << one->dump(2);
  EXPECT_EQ((*one)["removed"][0]["id"], ids["pvc-b"][0]);
  EXPECT_EQ(remaining(),
            (std::set<std::string>{ids["pvc-a"][0], ids["pvc-a"][1], ids["pvc-b"][1]}));
  EXPECT_EQ(RestoreAndCompare(repo_, ids["pvc-b"][1], image), "");

  // --keep-last 0 with a volume: all of that volume, nothing of the other.
  std::optional<json> vol = JsonOk(repo_, {"forget", "--keep-last", "0", "--volume-id", "pvc-a"});
  ASSERT_TRUE(vol);
  EXPECT_EQ((*vol)["removed"].size(), 2u) << vol->dump(2);
  EXPECT_EQ(remaining(), (std::set<std::string>{ids["pvc-b"][1]}));
  EXPECT_EQ(CheckHealthy(repo_), 0);
}

}  // namespace
}  // namespace bunker::testing

namespace bunker::testing {
namespace {

// The packs `check --json` reports as damaged.
std::set<std::string> DamagedPacks(const json& report) {
  std::set<std::string> out;
  for (const json& p : report["problems"]) {
    if (p["kind"] == "damaged" && p["object"].get<std::string>().starts_with("data/")) {
      out.insert(p["object"].get<std::string>());
    }
  }
  return out;
}

// --read-data-subset: slices n/t read disjoint sets of packs that together
// are all of them; N% reads that share of packs, a different sample each
// run. Every pack has a flipped byte, so the packs a run read are exactly
// the packs it reports damaged.
TEST_F(AgentRepoTest, ReadDataSubsetSlicesCoverEveryPackOnce) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  for (uint64_t i = 0; i < 8; ++i) {
    const fs::path image = dir() / ("v" + std::to_string(i) + ".img");
    ASSERT_NO_FATAL_FAILURE(WriteImage(image, {Random(500 + i), Text(600 + i, 100000)}));
    ASSERT_TRUE(Backup(repo_, image, "pvc-" + std::to_string(i)));
  }
  const std::vector<std::string> packs = ObjectNames(repo_, "data");
  ASSERT_GE(packs.size(), 8u);
  for (const std::string& p : packs) FlipByte(repo_ / p, 100);
  const std::set<std::string> all(packs.begin(), packs.end());

  // A slice is the packs whose id falls in it (stable as packs come and go),
  // so with 8 random ids a slice may hold none: then the run reads nothing
  // and is healthy. Any pack read is damaged, so exit 5.
  auto check = [&](const std::string& subset) {
    RunResult r = InRepo({"check", "--json", "--read-data-subset", subset});
    std::optional<json> j = StdoutJson(r);
    EXPECT_TRUE(j) << r.Describe();
    if (!j) return json::object();
    EXPECT_EQ(r.exit_code, j->value("packs_read", 0u) > 0 ? 5 : 0) << r.Describe();
    return *j;
  };

  constexpr int kSlices = 3;
  std::set<std::string> seen;
  uint64_t read = 0;
  for (int n = 1; n <= kSlices; ++n) {
    json rep = check(std::to_string(n) + "/" + std::to_string(kSlices));
    std::set<std::string> got = DamagedPacks(rep);
    EXPECT_EQ(got.size(), rep.value("packs_read", 0u)) << rep.dump(2);
    for (const std::string& p : got) {
      EXPECT_TRUE(seen.insert(p).second) << p << " read by two slices";
    }
    read += rep.value("packs_read", 0u);
  }
  EXPECT_EQ(seen, all) << "slices 1.." << kSlices << " missed packs";
  EXPECT_EQ(read, packs.size());

  // 50%: half the packs (rounded up) each time; repeated runs sample
  // differently and soon cover every pack (a pack escapes 40 runs with
  // probability about 2^-40).
  std::set<std::string> sampled;
  std::set<std::set<std::string>> distinct;
  for (int i = 0; i < 40 && sampled != all; ++i) {
    json rep = check("50%");
    std::set<std::string> got = DamagedPacks(rep);
    EXPECT_EQ(got.size(), (packs.size() + 1) / 2) << rep.dump(2);
    sampled.insert(got.begin(), got.end());
    distinct.insert(got);
  }
  EXPECT_EQ(sampled, all);
  EXPECT_GE(distinct.size(), 2u) << "every 50% run read the same packs";

  for (const char* bad : {"0/3", "4/3", "1/0", "0%", "101%", "x"}) {
    RunResult r = InRepo({"check", "--read-data-subset", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.Describe();
  }
}

}  // namespace
}  // namespace bunker::testing
