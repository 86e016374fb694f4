// Corruption fixtures: a small repository built by the real binary (three
// volumes: two block-mode, one file-mode), then copied and damaged in one
// deterministic way per case, by RepoSurgeon (repo_surgeon.h) or by plain
// file surgery: the recipe is this file. A committed set made the same way by
// an earlier build is in tests/fixtures/repos (corruption_committed_test.cc).
//
// For each damage: `check` names the damaged or missing object with the
// right kind and the snapshots (id, volume, time) it affects; restoring an
// affected snapshot fails with exit code 5 and leaves no target behind;
// unaffected snapshots still restore exactly; prune refuses where it must and
// never deletes live data.

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nodeagent/core/repo/ids.h"
#include "tests/integration/agent/agent_test_util.h"
#include "tests/integration/agent/repo_surgeon.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Every regular file of a directory tree with its bytes, for comparing a
// file-mode restore with its source.
std::map<std::string, std::string> TreeContents(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    Result<std::string> text = ReadFile(e.path());
    out[fs::relative(e.path(), dir).string()] = text.ok() ? *text : "<unreadable>";
  }
  return out;
}

// Objects whose names appear in the later listing but not the earlier one.
std::vector<std::string> Added(const std::vector<std::string>& before,
                               const std::vector<std::string>& after) {
  std::vector<std::string> out;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(out));
  return out;
}

struct Base {
  TempDir tmp;
  fs::path repo, image_a, image_b, tree_c;
  std::string snap_a, snap_b, snap_c;  // hex ids
  std::vector<std::string> packs_a, packs_b, packs_c;
  std::vector<std::string> index_a, index_b, index_c;
};

class CorruptionFixtureTest : public AgentTest {
 protected:
  static void TearDownTestSuite() { base_.reset(); }

  void SetUp() override {
    AgentTest::SetUp();
    if (HasFatalFailure()) return;
    if (!base_) {
      ASSERT_NO_FATAL_FAILURE(BuildBase());
    }
    ASSERT_TRUE(base_) << "building the base repository failed in an earlier test";
    repo_ = dir() / "case";
    CopyTree(base_->repo, repo_);
  }

  // The base: pvc-a and pvc-b (block images of distinct data, so no pack is
  // shared), fs-c (a directory). Each backup's new packs and index file are
  // recorded from the listings around it.
  void BuildBase() {
    auto b = std::make_unique<Base>();
    Result<TempDir> t = TempDir::Create("bunker-corruption-base");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    b->tmp = std::move(*t);
    const fs::path d = b->tmp.path();
    b->repo = d / "repo";
    b->image_a = d / "a.img";
    b->image_b = d / "b.img";
    b->tree_c = d / "c";
    ASSERT_NO_FATAL_FAILURE(
        WriteImage(b->image_a, {Random(101), Text(102), Zero(), Random(103), Random(104, 5000)}));
    ASSERT_NO_FATAL_FAILURE(WriteImage(b->image_b, {Random(201), Text(202), Random(203)}));
    fs::create_directories(b->tree_c / "sub");
    ASSERT_TRUE(WriteFile(b->tree_c / "small.txt", "a small file\n").ok());
    ASSERT_TRUE(WriteFile(b->tree_c / "sub" / "big.bin", ImageBytes({Random(301, 300000)})).ok());
    ASSERT_NO_FATAL_FAILURE(Init(b->repo));
    auto step = [&](const std::vector<std::string>& args, std::string* snap,
                    std::vector<std::string>* packs, std::vector<std::string>* index) {
      auto p0 = ObjectNames(b->repo, "data"), i0 = ObjectNames(b->repo, "index");
      std::optional<json> r = JsonOk(b->repo, args);
      ASSERT_TRUE(r);
      *snap = (*r)["id"];
      *packs = Added(p0, ObjectNames(b->repo, "data"));
      *index = Added(i0, ObjectNames(b->repo, "index"));
      ASSERT_FALSE(packs->empty());
      ASSERT_EQ(index->size(), 1u);
    };
    ASSERT_NO_FATAL_FAILURE(
        step({"backup", "--volume", b->image_a.string(), "--volume-id", "pvc-a"}, &b->snap_a,
             &b->packs_a, &b->index_a));
    ASSERT_NO_FATAL_FAILURE(
        step({"backup", "--volume", b->image_b.string(), "--volume-id", "pvc-b"}, &b->snap_b,
             &b->packs_b, &b->index_b));
    ASSERT_NO_FATAL_FAILURE(step({"backup", "--volume", b->tree_c.string(), "--volume-id", "fs-c"},
                                 &b->snap_c, &b->packs_c, &b->index_c));
    ASSERT_EQ(CheckHealthy(b->repo), 0);
    WaitUntilPacksAreOlderThanNow(b->repo);
    base_ = std::move(b);
  }

  const Base& base() const { return *base_; }

  std::unique_ptr<RepoSurgeon> Surgeon() {
    Result<std::unique_ptr<RepoSurgeon>> s = RepoSurgeon::Open(repo_, password_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // The largest of `packs` (a data pack rather than a small meta pack).
  std::string Largest(const std::vector<std::string>& packs) const {
    return *std::max_element(packs.begin(), packs.end(), [&](const auto& x, const auto& y) {
      return fs::file_size(repo_ / x) < fs::file_size(repo_ / y);
    });
  }

  // check [--read-data] --json: exits 5 and reports `object` as `kind`,
  // naming every snapshot of `affected` (hex id, volume) — and, when
  // `only_affected`, none other. Returns the report.
  json ExpectProblem(bool read_data, const std::string& kind, const std::string& object,
                     const std::vector<std::pair<std::string, std::string>>& affected,
                     bool only_affected = true) {
    std::vector<std::string> args = {"check", "--json"};
    if (read_data) args.push_back("--read-data");
    RunResult r = InRepo(args);
    EXPECT_EQ(r.exit_code, 5) << r.Describe();
    std::optional<json> j = StdoutJson(r);
    if (!j) return json();
    EXPECT_FALSE((*j)["healthy"].get<bool>()) << j->dump(2);
    const json* found = nullptr;
    for (const json& p : (*j)["problems"]) {
      if (p["object"] == object && p["kind"] == kind) found = &p;
    }
    if (found == nullptr) {
      ADD_FAILURE() << "check does not report " << object << " as " << kind << ":\n" << j->dump(2);
      return *j;
    }
    std::set<std::string> labels;
    for (const json& s : (*found)["snapshots"]) labels.insert(s.get<std::string>());
    for (const auto& snapshot : affected) {
      const std::string& id = snapshot.first;
      const std::string& volume = snapshot.second;
      bool named = std::any_of(labels.begin(), labels.end(), [&](const std::string& l) {
        return l.starts_with(id.substr(0, 12) + " " + volume + " ") && l.size() > 20;
      });
      EXPECT_TRUE(named) << "check does not say that " << object << " affects snapshot " << id
                         << " of " << volume << ":\n"
                         << found->dump(2);
    }
    if (only_affected) {
      EXPECT_EQ(labels.size(), affected.size()) << found->dump(2);
    }
    return *j;
  }

  // Restoring `snap` fails with exit 5, one error line, and no target left.
  void ExpectRestoreFails(const std::string& snap, const std::string& mode) {
    const fs::path target = dir() / ("failed-" + snap.substr(0, 8) + "-" + mode);
    RunResult r = InRepo({"restore", "--snapshot", snap, "--target", target.string()});
    EXPECT_EQ(r.exit_code, 5) << r.Describe();
    // One error line (warnings about other damaged objects may precede it).
    const std::vector<std::string> lines = Lines(r.err);
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [](const std::string& l) { return l.starts_with("bunker-agent: "); }),
              1)
        << r.Describe();
    EXPECT_FALSE(fs::exists(fs::symlink_status(target)))
        << "a failed restore left its target behind:\n"
        << r.Describe();
  }

  // A restore either fails with exit 5 and no target, or restores exactly.
  void ExpectRestoreFailsOrIsExact(const std::string& snap, const fs::path& image) {
    const fs::path target = dir() / ("maybe-" + snap.substr(0, 8));
    RunResult r = InRepo({"restore", "--snapshot", snap, "--target", target.string()});
    if (r.ok()) {
      EXPECT_EQ(CompareFiles(image, target), "") << "restore exited 0 with wrong content";
      return;
    }
    EXPECT_EQ(r.exit_code, 5) << r.Describe();
    EXPECT_FALSE(fs::exists(fs::symlink_status(target))) << r.Describe();
  }

  void ExpectFileTreeRestores(const std::string& snap) {
    const fs::path target = dir() / ("tree-" + std::to_string(++restore_counter_));
    RunResult r = InRepo({"restore", "--snapshot", snap, "--target", target.string()});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(TreeContents(target), TreeContents(base().tree_c));
  }

  // The snapshots not named here restore exactly.
  void ExpectOthersRestore(bool a, bool b, bool c) {
    if (a) {
      EXPECT_EQ(RestoreAndCompare(repo_, base().snap_a, base().image_a), "");
    }
    if (b) {
      EXPECT_EQ(RestoreAndCompare(repo_, base().snap_b, base().image_b), "");
    }
    if (c) ExpectFileTreeRestores(base().snap_c);
  }

  // prune refuses (non-zero exit, one error line containing `names`) and
  // changes nothing in the repository (lease objects aside).
  void ExpectPruneRefuses(const std::string& names) {
    auto before = ListTree(repo_);
    RunResult r = InRepo({"prune"});
    EXPECT_EQ(r.exit_code, 5) << "damage is exit code 5:\n" << r.Describe();
    EXPECT_NE(r.err.find("prune refuses"), std::string::npos) << r.Describe();
    EXPECT_NE(r.err.find(names), std::string::npos) << r.Describe();
    auto after = ListTree(repo_);
    std::erase_if(before, [](const auto& kv) { return kv.first.starts_with("locks"); });
    std::erase_if(after, [](const auto& kv) { return kv.first.starts_with("locks"); });
    EXPECT_EQ(DiffTrees(before, after), "") << "a refusing prune changed the repository";
  }

  static std::unique_ptr<Base> base_;
};

std::unique_ptr<Base> CorruptionFixtureTest::base_;

TEST_F(CorruptionFixtureTest, MissingPack) {
  const std::string pack = Largest(base().packs_a);
  fs::remove(repo_ / pack);
  ExpectProblem(false, "missing", pack, {{base().snap_a, "pvc-a"}});
  ExpectRestoreFails(base().snap_a, "block");
  ExpectOthersRestore(false, true, true);
  ExpectPruneRefuses(pack);
}

TEST_F(CorruptionFixtureTest, TruncatedPack) {
  const std::string pack = Largest(base().packs_a);
  fs::resize_file(repo_ / pack, fs::file_size(repo_ / pack) / 2);
  ExpectProblem(false, "damaged", pack, {{base().snap_a, "pvc-a"}});
  ExpectProblem(true, "damaged", pack, {{base().snap_a, "pvc-a"}});
  ExpectRestoreFails(base().snap_a, "block");
  ExpectOthersRestore(false, true, true);
  ExpectPruneRefuses(pack);
}

TEST_F(CorruptionFixtureTest, ZeroLengthPack) {
  const std::string pack = Largest(base().packs_c);
  fs::resize_file(repo_ / pack, 0);
  ExpectProblem(true, "damaged", pack, {{base().snap_c, "fs-c"}});
  ExpectRestoreFails(base().snap_c, "file");
  ExpectOthersRestore(true, true, false);
  ExpectPruneRefuses(pack);
}

TEST_F(CorruptionFixtureTest, ZeroLengthIndexFile) {
  const std::string index = base().index_b.front();
  fs::resize_file(repo_ / index, 0);
  json report = ExpectProblem(false, "damaged", index, {});
  // Every blob of pvc-b is now in no index: missing, and each names pvc-b.
  int missing = 0;
  for (const json& p : report["problems"]) {
    if (p["kind"] != "missing") continue;
    ++missing;
    ASSERT_EQ(p["snapshots"].size(), 1u) << p.dump();
    EXPECT_TRUE(p["snapshots"][0].get<std::string>().starts_with(base().snap_b.substr(0, 12)))
        << p.dump();
  }
  EXPECT_GE(missing, 1) << report.dump(2);
  ExpectRestoreFails(base().snap_b, "block");
  ExpectOthersRestore(true, false, true);
  ExpectPruneRefuses(index);
}

TEST_F(CorruptionFixtureTest, ZeroLengthSnapshot) {
  const std::string object = "snapshots/" + base().snap_b;
  fs::resize_file(repo_ / object, 0);
  ExpectProblem(false, "damaged", object, {});
  ExpectRestoreFails(base().snap_b, "block");
  ExpectOthersRestore(true, false, true);
  ExpectPruneRefuses(object);
}

TEST_F(CorruptionFixtureTest, SnapshotWithUnknownFormatVersion) {
  std::unique_ptr<RepoSurgeon> s = Surgeon();
  ASSERT_TRUE(s);
  Result<std::string> id = s->RewriteSnapshot(base().snap_b, [](json* j) { (*j)["version"] = 7; });
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const std::string object = "snapshots/" + *id;
  json report = ExpectProblem(false, "damaged", object, {});
  EXPECT_NE(report.dump().find("version 7"), std::string::npos) << report.dump(2);
  ExpectRestoreFails(*id, "block");
  RunResult r = InRepo({"restore", "--snapshot", *id, "--target", (dir() / "v7").string()});
  EXPECT_NE(r.err.find("version 7"), std::string::npos) << r.Describe();
  ExpectOthersRestore(true, false, true);
  ExpectPruneRefuses(object);
}

TEST_F(CorruptionFixtureTest, FlippedByteInsidePack) {
  const std::string pack = Largest(base().packs_b);
  FlipByte(repo_ / pack, fs::file_size(repo_ / pack) / 3);
  ExpectProblem(true, "damaged", pack, {{base().snap_b, "pvc-b"}});
  ExpectRestoreFails(base().snap_b, "block");
  ExpectOthersRestore(true, false, true);
  // Prune reads no data: it may run, but must keep every live blob (and so
  // the damaged pack, whose blobs pvc-b still references).
  RunResult r = InRepo({"prune"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(fs::exists(repo_ / pack));
  ExpectProblem(true, "damaged", pack, {{base().snap_b, "pvc-b"}});
  ExpectOthersRestore(true, false, true);
}

TEST_F(CorruptionFixtureTest, IndexNamesMissingPack) {
  std::unique_ptr<RepoSurgeon> s = Surgeon();
  ASSERT_TRUE(s);
  repo::PackEntries ghost;
  ghost.pack.fill(0x5a);
  repo::BlobEntry e;
  e.id.fill(0xa5);
  e.length = 100;
  e.raw_length = 72;
  ghost.blobs.push_back(e);
  ASSERT_TRUE(s->AddIndex({ghost}).ok());
  const std::string pack = repo::PackName(ghost.pack);
  // The blob it lists belongs to no snapshot: nothing is affected.
  ExpectProblem(false, "missing", pack, {});
  ExpectOthersRestore(true, true, true);
  ExpectPruneRefuses(pack);
}

// An index listing the same pack twice, and a second index file repeating
// another (what an interrupted prune leaves): harmless, any copy serves.
// Prune folds them into one index and keeps everything.
TEST_F(CorruptionFixtureTest, DuplicateIndexEntriesAreHarmless) {
  std::unique_ptr<RepoSurgeon> s = Surgeon();
  ASSERT_TRUE(s);
  Result<std::string> twice = s->RewriteIndex(base().index_a.front(), [](auto* packs) {
    std::vector<repo::PackEntries> copy = *packs;
    packs->insert(packs->end(), copy.begin(), copy.end());
  });
  ASSERT_TRUE(twice.ok()) << twice.status().ToString();
  auto files = s->IndexFiles();
  ASSERT_TRUE(files.ok());
  for (const auto& [name, packs] : *files) {
    if (name == base().index_b.front()) {
      ASSERT_TRUE(s->AddIndex(packs).ok());
    }
  }
  s.reset();
  EXPECT_EQ(ObjectNames(repo_, "index").size(), 4u);
  EXPECT_EQ(CheckHealthy(repo_), 0);
  ExpectOthersRestore(true, true, true);
  RunResult r = InRepo({"prune"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(ObjectNames(repo_, "index").size(), 1u);
  EXPECT_EQ(CheckHealthy(repo_), 0);
  ExpectOthersRestore(true, true, true);
}

// An extra index entry puts one of pvc-a's blobs where another blob lies in
// the same pack. check --read-data sees the entry disagree with the pack's
// trailer; restore fails or is exact (whichever copy it meets first); prune
// refuses rather than keep one of two contradicting locations.
TEST_F(CorruptionFixtureTest, ContradictingDuplicateIndexEntry) {
  std::unique_ptr<RepoSurgeon> s = Surgeon();
  ASSERT_TRUE(s);
  Result<std::vector<repo::BlobLocation>> blobs = s->SnapshotBlobs(base().snap_a);
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  const repo::BlobLocation* x = nullptr;
  const repo::BlobLocation* y = nullptr;
  for (const auto& l : *blobs) {
    for (const auto& m : *blobs) {
      if (l.pack == m.pack && l.entry.id != m.entry.id && l.entry.type == repo::BlobType::kData &&
          m.entry.type == repo::BlobType::kData && !x) {
        x = &l;
        y = &m;
      }
    }
  }
  ASSERT_TRUE(x) << "pvc-a has no pack with two data blobs";
  repo::PackEntries wrong{x->pack, {x->entry}};
  wrong.blobs[0].offset = y->entry.offset;
  wrong.blobs[0].length = y->entry.length;
  wrong.blobs[0].flags = y->entry.flags;
  wrong.blobs[0].raw_length = y->entry.raw_length;
  ASSERT_TRUE(s->AddIndex({wrong}).ok());
  s.reset();
  const std::string pack = repo::PackName(x->pack);
  json report = ExpectProblem(true, "damaged", pack, {{base().snap_a, "pvc-a"}});
  EXPECT_NE(report.dump().find(repo::ShortHex(x->entry.id)), std::string::npos) << report.dump(2);
  ExpectRestoreFailsOrIsExact(base().snap_a, base().image_a);
  ExpectOthersRestore(false, true, true);
  ExpectPruneRefuses(repo::ShortHex(x->entry.id));
}

// Type confusion, data as meta: the index calls one of pvc-a's data blobs a
// meta (tree or content list) blob.
TEST_F(CorruptionFixtureTest, DataBlobIndexedAsMeta) {
  std::unique_ptr<RepoSurgeon> s = Surgeon();
  ASSERT_TRUE(s);
  Result<repo::BlobId> retyped = s->RetypeFirstDataBlobAsMeta(base().index_a.front());
  ASSERT_TRUE(retyped.ok()) << retyped.status().ToString();
  const repo::BlobId victim = *retyped;
  s.reset();
  ExpectProblem(false, "damaged", "blob " + repo::ToHex(victim), {{base().snap_a, "pvc-a"}});
  ExpectRestoreFails(base().snap_a, "block");
  ExpectOthersRestore(false, true, true);
  ExpectPruneRefuses(repo::ShortHex(victim));
}

// A content list whose fingerprint for one chunk does not match the blob it
// names (authentic, sealed with the key: what a writer bug would leave).
// Restore checks every decoded chunk against its fingerprint, so it must
// fail loudly instead of writing bytes other than those the backup read.
TEST_F(CorruptionFixtureTest, ContentListFingerprintDisagreesWithItsChunk) {
  std::unique_ptr<RepoSurgeon> s = Surgeon();
  ASSERT_TRUE(s);
  repo::BlobId victim{};
  Result<std::string> fresh =
      s->RewriteContentList(base().snap_a, [&](std::vector<repo::ChunkRef>* chunks) {
        for (repo::ChunkRef& c : *chunks) {
          if (!repo::IsHole(c.id) && repo::IsHole(victim)) {
            c.fp[0] ^= 0x01;
            victim = c.id;
          }
        }
      });
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  ASSERT_FALSE(repo::IsHole(victim));
  s.reset();
  const fs::path target = dir() / "fingerprint-target";
  RunResult r = InRepo({"restore", "--snapshot", *fresh, "--target", target.string()});
  EXPECT_EQ(r.exit_code, 5) << r.Describe();
  EXPECT_NE(r.err.find(repo::ShortHex(victim)), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("fingerprint recorded at backup"), std::string::npos) << r.Describe();
  EXPECT_FALSE(fs::exists(fs::symlink_status(target))) << r.Describe();
  for (const auto& e : fs::directory_iterator(dir())) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".fingerprint-target.bunker-restore-"))
        << "the failed restore left its staging path " << e.path();
  }
  ExpectOthersRestore(false, true, true);
}

// Type confusion, meta as data: fs-c's snapshot names a data blob (a file's
// content) as its root tree.
TEST_F(CorruptionFixtureTest, SnapshotTreeIsADataBlob) {
  std::unique_ptr<RepoSurgeon> s = Surgeon();
  ASSERT_TRUE(s);
  Result<std::vector<repo::BlobLocation>> blobs = s->SnapshotBlobs(base().snap_c);
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  std::string data_blob;
  for (const auto& l : *blobs) {
    if (l.entry.type == repo::BlobType::kData) data_blob = repo::ToHex(l.entry.id);
  }
  ASSERT_FALSE(data_blob.empty());
  Result<std::string> id =
      s->RewriteSnapshot(base().snap_c, [&](json* j) { (*j)["tree"] = data_blob; });
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  s.reset();
  ExpectProblem(false, "damaged", "blob " + data_blob, {{*id, "fs-c"}});
  ExpectRestoreFails(*id, "file");
  ExpectOthersRestore(true, true, false);
  ExpectPruneRefuses(id->substr(0, 12));
}

}  // namespace
}  // namespace bunker::testing
