// Committed corruption fixtures: small repositories written by an earlier
// build of bunker-agent and committed under tests/fixtures/repos/<case>/
// (repo/ and expected.json), so that the current build proves it still reads
// what earlier builds wrote, and still names each damage the same way.
//
// CommittedRepoFixtureTest.Case/<case> copies a case to a temp dir and runs
// the real bunker-agent on it, as its expected.json says:
//  - check [--read-data] exits as expected and reports each listed problem
//    (kind, object, and exactly the affected snapshots by id and volume);
//  - restoring an affected snapshot fails with exit 5 and leaves no target;
//  - every unaffected snapshot restores byte-identical to its source volume
//    (SHA-256 of the sources in tests/fixtures/repos/sources.json);
//  - prune either refuses (naming the damage, changing nothing) or runs and
//    keeps every live snapshot restorable, check --read-data healthy.
//
// The generator is CommittedRepoFixtureTest.DISABLED_Generate (recipe in
// tests/fixtures/repos/README.md): it builds a tiny base repository with the
// real binary, damages a copy per case with RepoSurgeon or plain file
// surgery, and writes the cases, sources.json and each expected.json.

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/repo/ids.h"
#include "tests/integration/agent/agent_test_util.h"
#include "tests/integration/agent/repo_surgeon.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtureDir = fs::path(BUNKER_SOURCE_DIR) / "tests" / "fixtures" / "repos";

// Every committed case; a missing directory is a failure, not a skip.
const std::vector<std::string> kCases = {"healthy",
                                         "missing_pack",
                                         "truncated_pack",
                                         "zero_length_pack",
                                         "duplicate_index_entry",
                                         "blob_type_confusion",
                                         "index_missing_pack",
                                         "snapshot_unknown_version"};

// The base repository's block size: small enough that the tiny volumes
// still have several chunks (FORMAT.md: at least 4096, a multiple of 4096).
constexpr uint64_t kBlockSize = 16 * kKiB;

std::string Sha256Hex(std::string_view bytes) {
  return repo::ToHex(crypto::Sha256(AsBytes(bytes)));
}

// SHA-256 (hex) of a file; empty when unreadable.
std::string FileSha256(const fs::path& p) {
  Result<std::string> text = ReadFile(p);
  return text.ok() ? Sha256Hex(*text) : "";
}

// Relative path → SHA-256 of every regular file under `dir`.
json TreeSha256(const fs::path& dir) {
  json out = json::object();
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = FileSha256(e.path());
  }
  return out;
}

std::vector<std::string> Added(const std::vector<std::string>& before,
                               const std::vector<std::string>& after) {
  std::vector<std::string> out;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(out));
  return out;
}

std::optional<json> ReadJson(const fs::path& p) {
  Result<std::string> text = ReadFile(p);
  if (!text.ok()) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

class CommittedRepoFixtureTest : public AgentTest {
 protected:
  // ---- The checker -------------------------------------------------------

  // Runs check as `spec` says; returns its report.
  void ExpectCheck(const json& spec) {
    std::vector<std::string> args = {"check", "--json"};
    if (spec.value("read_data", false)) args.push_back("--read-data");
    RunResult r = InRepo(args);
    EXPECT_EQ(r.exit_code, spec.at("exit").get<int>()) << r.Describe();
    std::optional<json> report = StdoutJson(r);
    if (!report) return;
    const json& problems = (*report)["problems"];
    if (spec.at("problems").empty()) {
      EXPECT_TRUE((*report)["healthy"].get<bool>()) << report->dump(2);
      for (const json& p : problems) {
        EXPECT_EQ(p["kind"], "unreferenced") << report->dump(2);
      }
      return;
    }
    EXPECT_FALSE((*report)["healthy"].get<bool>()) << report->dump(2);
    for (const json& want : spec.at("problems")) {
      const json* found = nullptr;
      for (const json& p : problems) {
        if (p["object"] == want.at("object") && p["kind"] == want.at("kind")) found = &p;
      }
      if (found == nullptr) {
        ADD_FAILURE() << "check does not report " << want.dump() << ":\n" << report->dump(2);
        continue;
      }
      if (want.contains("mentions")) {
        EXPECT_NE(report->dump().find(want["mentions"].get<std::string>()), std::string::npos)
            << report->dump(2);
      }
      std::set<std::string> labels;
      for (const json& s : (*found)["snapshots"]) labels.insert(s.get<std::string>());
      for (const json& s : want.at("snapshots")) {
        const std::string prefix = s.at("id").get<std::string>().substr(0, 12) + " " +
                                   s.at("volume").get<std::string>() + " ";
        EXPECT_TRUE(std::any_of(labels.begin(), labels.end(),
                                [&](const std::string& l) { return l.starts_with(prefix); }))
            << "check does not say that " << want["object"] << " affects " << s.dump() << ":\n"
            << found->dump(2);
      }
      EXPECT_EQ(labels.size(), want.at("snapshots").size()) << found->dump(2);
    }
  }

  void ExpectRestoreFails(const std::string& snap) {
    const fs::path target = dir() / ("failed-" + snap.substr(0, 12));
    RunResult r = InRepo({"restore", "--snapshot", snap, "--target", target.string()});
    EXPECT_EQ(r.exit_code, 5) << r.Describe();
    const std::vector<std::string> lines = Lines(r.err);
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [](const std::string& l) { return l.starts_with("bunker-agent: "); }),
              1)
        << r.Describe();
    EXPECT_FALSE(fs::exists(fs::symlink_status(target)))
        << "a failed restore left its target behind:\n"
        << r.Describe();
  }

  // Restores `snap` and compares it with source `name` of sources.json.
  void ExpectRestoreExact(const std::string& snap, const std::string& name, const json& sources) {
    const fs::path target = dir() / ("restored-" + std::to_string(++restore_counter_));
    RunResult r = InRepo({"restore", "--snapshot", snap, "--target", target.string()});
    ASSERT_TRUE(r.ok()) << r.Describe();
    const json& want = sources.at(name);
    if (want.is_string()) {
      EXPECT_EQ(FileSha256(target), want.get<std::string>()) << "restore of " << name;
    } else {
      EXPECT_EQ(TreeSha256(target), want) << "restore of " << name;
    }
  }

  void ExpectPrune(const json& spec, const json& expected, const json& sources) {
    if (spec.at("outcome") == "refuses") {
      auto before = ListTree(repo_);
      RunResult r = InRepo({"prune"});
      EXPECT_EQ(r.exit_code, 5) << "damage is exit code 5:\n" << r.Describe();
      EXPECT_NE(r.err.find("prune refuses"), std::string::npos) << r.Describe();
      EXPECT_NE(r.err.find(spec.at("names").get<std::string>()), std::string::npos) << r.Describe();
      auto after = ListTree(repo_);
      std::erase_if(before, [](const auto& kv) { return kv.first.starts_with("locks"); });
      std::erase_if(after, [](const auto& kv) { return kv.first.starts_with("locks"); });
      EXPECT_EQ(DiffTrees(before, after), "") << "a refusing prune changed the repository";
      return;
    }
    ASSERT_EQ(spec.at("outcome"), "keeps");
    RunResult r = InRepo({"prune"});
    ASSERT_TRUE(r.ok()) << r.Describe();
    if (spec.contains("index_files_after")) {
      EXPECT_EQ(ObjectNames(repo_, "index").size(), spec["index_files_after"].get<size_t>());
    }
    EXPECT_EQ(CheckHealthy(repo_), 0);
    for (const json& s : expected.at("restore_exact")) {
      ExpectRestoreExact(s.at("snapshot"), s.at("source"), sources);
    }
  }

  // ---- The generator -----------------------------------------------------

  struct Step {
    std::string snap;
    std::vector<std::string> packs, index;
  };

  Step BackUp(const fs::path& repo, const fs::path& volume, const std::string& id) {
    Step s;
    auto p0 = ObjectNames(repo, "data"), i0 = ObjectNames(repo, "index");
    std::optional<json> r =
        JsonOk(repo, {"backup", "--volume", volume.string(), "--volume-id", id});
    if (!r) return s;
    s.snap = (*r)["id"];
    s.packs = Added(p0, ObjectNames(repo, "data"));
    s.index = Added(i0, ObjectNames(repo, "index"));
    EXPECT_FALSE(s.packs.empty());
    EXPECT_EQ(s.index.size(), 1u);
    return s;
  }

  std::string Largest(const fs::path& repo, const std::vector<std::string>& packs) const {
    return *std::max_element(packs.begin(), packs.end(), [&](const auto& x, const auto& y) {
      return fs::file_size(repo / x) < fs::file_size(repo / y);
    });
  }

  static json Snap(const std::string& id, const std::string& volume) {
    return {{"id", id}, {"volume", volume}};
  }
};

class CommittedCaseTest : public CommittedRepoFixtureTest,
                          public ::testing::WithParamInterface<std::string> {};

TEST_P(CommittedCaseTest, Case) {
  const fs::path dir_of_case = kFixtureDir / GetParam();
  ASSERT_TRUE(fs::is_directory(dir_of_case / "repo")) << dir_of_case << " is not committed";
  std::optional<json> expected = ReadJson(dir_of_case / "expected.json");
  ASSERT_TRUE(expected) << "unreadable " << dir_of_case / "expected.json";
  std::optional<json> sources = ReadJson(kFixtureDir / "sources.json");
  ASSERT_TRUE(sources);
  CopyTree(dir_of_case / "repo", repo_);
  ASSERT_FALSE(HasFatalFailure());

  ASSERT_NO_FATAL_FAILURE(ExpectCheck(expected->at("check")));
  for (const json& s : expected->at("restore_fails")) {
    ExpectRestoreFails(s.get<std::string>());
  }
  for (const json& s : expected->at("restore_exact")) {
    ExpectRestoreExact(s.at("snapshot"), s.at("source"), *sources);
  }
  ExpectPrune(expected->at("prune"), *expected, *sources);
}

INSTANTIATE_TEST_SUITE_P(Committed, CommittedCaseTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param; });

// Writes tests/fixtures/repos (or $BUNKER_FIXTURE_OUT): run it with
//   agent_corruption_committed_test --gtest_also_run_disabled_tests
//       --gtest_filter='*DISABLED_Generate'
TEST_F(CommittedRepoFixtureTest, DISABLED_Generate) {
  const char* env = std::getenv("BUNKER_FIXTURE_OUT");
  const fs::path out = env != nullptr ? fs::path(env) : kFixtureDir;
  const fs::path src = dir() / "sources";
  const fs::path base = dir() / "base";
  fs::create_directories(src / "c" / "sub");
  // Deterministic volumes: pvc-a and pvc-b share no chunk, fs-c is a tree.
  ASSERT_NO_FATAL_FAILURE(
      WriteImage(src / "a.img", {Text(101, 16 * kKiB), Random(102, 1 * kKiB), Text(103, 15 * kKiB),
                                 Zero(16 * kKiB), Text(104, 8 * kKiB)}));
  ASSERT_NO_FATAL_FAILURE(
      WriteImage(src / "b.img", {Text(201, 8 * kKiB), Random(202, 1 * kKiB), Text(203, 7 * kKiB)}));
  ASSERT_TRUE(WriteFile(src / "c" / "small.txt", "a small file\n").ok());
  ASSERT_TRUE(WriteFile(src / "c" / "sub" / "big.bin",
                        ImageBytes({Text(301, 12 * kKiB), Random(302, 1 * kKiB)}))
                  .ok());
  json sources = {{"a.img", FileSha256(src / "a.img")},
                  {"b.img", FileSha256(src / "b.img")},
                  {"c", TreeSha256(src / "c")}};

  RunResult init = In(base, {"repo", "init", "--block-size", std::to_string(kBlockSize)});
  ASSERT_TRUE(init.ok()) << init.Describe();
  const Step a = BackUp(base, src / "a.img", "pvc-a");
  const Step b = BackUp(base, src / "b.img", "pvc-b");
  const Step c = BackUp(base, src / "c", "fs-c");
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(CheckHealthy(base), 0);
  const json exact_a = {{"snapshot", a.snap}, {"source", "a.img"}};
  const json exact_b = {{"snapshot", b.snap}, {"source", "b.img"}};
  const json exact_c = {{"snapshot", c.snap}, {"source", "c"}};

  for (const std::string& name : kCases) fs::remove_all(out / name);
  fs::create_directories(out);
  auto write_case = [&](const std::string& name, const fs::path& repo, json expected) {
    fs::remove_all(repo / "locks");
    expected["case"] = name;
    fs::create_directories(out / name);
    CopyTree(repo, out / name / "repo");
    ASSERT_TRUE(WriteFile(out / name / "expected.json", expected.dump(2) + "\n").ok());
  };
  auto copy = [&](const std::string& name) {
    fs::path p = dir() / ("case-" + name);
    CopyTree(base, p);
    return p;
  };
  auto surgeon = [&](const fs::path& repo) {
    Result<std::unique_ptr<RepoSurgeon>> s = RepoSurgeon::Open(repo, password_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  };
  const json refuses = {{"outcome", "refuses"}};

  write_case("healthy", copy("healthy"),
             {{"damage", "none"},
              {"check", {{"read_data", true}, {"exit", 0}, {"problems", json::array()}}},
              {"restore_fails", json::array()},
              {"restore_exact", {exact_a, exact_b, exact_c}},
              {"prune", {{"outcome", "keeps"}}}});

  {
    const fs::path r = copy("missing_pack");
    const std::string pack = Largest(r, a.packs);
    fs::remove(r / pack);
    json prune = refuses;
    prune["names"] = pack;
    write_case(
        "missing_pack", r,
        {{"damage", "the largest pack of pvc-a's backup removed"},
         {"check",
          {{"read_data", false},
           {"exit", 5},
           {"problems",
            {{{"kind", "missing"}, {"object", pack}, {"snapshots", {Snap(a.snap, "pvc-a")}}}}}}},
         {"restore_fails", {a.snap}},
         {"restore_exact", {exact_b, exact_c}},
         {"prune", prune}});
  }
  {
    const fs::path r = copy("truncated_pack");
    const std::string pack = Largest(r, a.packs);
    fs::resize_file(r / pack, fs::file_size(r / pack) / 2);
    json prune = refuses;
    prune["names"] = pack;
    write_case(
        "truncated_pack", r,
        {{"damage", "the largest pack of pvc-a's backup cut to half its size"},
         {"check",
          {{"read_data", true},
           {"exit", 5},
           {"problems",
            {{{"kind", "damaged"}, {"object", pack}, {"snapshots", {Snap(a.snap, "pvc-a")}}}}}}},
         {"restore_fails", {a.snap}},
         {"restore_exact", {exact_b, exact_c}},
         {"prune", prune}});
  }
  {
    const fs::path r = copy("zero_length_pack");
    const std::string pack = Largest(r, c.packs);
    fs::resize_file(r / pack, 0);
    json prune = refuses;
    prune["names"] = pack;
    write_case(
        "zero_length_pack", r,
        {{"damage", "the largest pack of fs-c's backup is a zero-length object"},
         {"check",
          {{"read_data", true},
           {"exit", 5},
           {"problems",
            {{{"kind", "damaged"}, {"object", pack}, {"snapshots", {Snap(c.snap, "fs-c")}}}}}}},
         {"restore_fails", {c.snap}},
         {"restore_exact", {exact_a, exact_b}},
         {"prune", prune}});
  }
  {
    // One index file lists its packs twice, another is repeated as a second
    // file (what an interrupted prune leaves): harmless; prune folds them.
    const fs::path r = copy("duplicate_index_entry");
    std::unique_ptr<RepoSurgeon> s = surgeon(r);
    ASSERT_TRUE(s);
    Result<std::string> twice = s->RewriteIndex(a.index.front(), [](auto* packs) {
      std::vector<repo::PackEntries> copy = *packs;
      packs->insert(packs->end(), copy.begin(), copy.end());
    });
    ASSERT_TRUE(twice.ok()) << twice.status().ToString();
    auto files = s->IndexFiles();
    ASSERT_TRUE(files.ok());
    for (const auto& [name, packs] : *files) {
      if (name == b.index.front()) {
        ASSERT_TRUE(s->AddIndex(packs).ok());
      }
    }
    s.reset();
    ASSERT_EQ(ObjectNames(r, "index").size(), 4u);
    write_case(
        "duplicate_index_entry", r,
        {{"damage", "pvc-a's index file lists every pack twice; pvc-b's index file exists twice"},
         {"check", {{"read_data", true}, {"exit", 0}, {"problems", json::array()}}},
         {"restore_fails", json::array()},
         {"restore_exact", {exact_a, exact_b, exact_c}},
         {"prune", {{"outcome", "keeps"}, {"index_files_after", 1}}}});
  }
  {
    // Type confusion: the index calls one of pvc-a's data blobs a meta blob.
    const fs::path r = copy("blob_type_confusion");
    std::unique_ptr<RepoSurgeon> s = surgeon(r);
    ASSERT_TRUE(s);
    Result<repo::BlobId> retyped = s->RetypeFirstDataBlobAsMeta(a.index.front());
    ASSERT_TRUE(retyped.ok()) << retyped.status().ToString();
    const repo::BlobId victim = *retyped;
    s.reset();
    json prune = refuses;
    prune["names"] = repo::ShortHex(victim);
    write_case("blob_type_confusion", r,
               {{"damage", "pvc-a's index file calls one of its data blobs a meta blob"},
                {"check",
                 {{"read_data", false},
                  {"exit", 5},
                  {"problems",
                   {{{"kind", "damaged"},
                     {"object", "blob " + repo::ToHex(victim)},
                     {"snapshots", {Snap(a.snap, "pvc-a")}}}}}}},
                {"restore_fails", {a.snap}},
                {"restore_exact", {exact_b, exact_c}},
                {"prune", prune}});
  }
  {
    const fs::path r = copy("index_missing_pack");
    std::unique_ptr<RepoSurgeon> s = surgeon(r);
    ASSERT_TRUE(s);
    repo::PackEntries ghost;
    ghost.pack.fill(0x5a);
    repo::BlobEntry e;
    e.id.fill(0xa5);
    e.length = 100;
    e.raw_length = 72;
    ghost.blobs.push_back(e);
    ASSERT_TRUE(s->AddIndex({ghost}).ok());
    s.reset();
    const std::string pack = repo::PackName(ghost.pack);
    json prune = refuses;
    prune["names"] = pack;
    write_case(
        "index_missing_pack", r,
        {{"damage",
          "an extra index file names a pack that does not exist (no snapshot "
          "references its blob)"},
         {"check",
          {{"read_data", false},
           {"exit", 5},
           {"problems", {{{"kind", "missing"}, {"object", pack}, {"snapshots", json::array()}}}}}},
         {"restore_fails", json::array()},
         {"restore_exact", {exact_a, exact_b, exact_c}},
         {"prune", prune}});
  }
  {
    const fs::path r = copy("snapshot_unknown_version");
    std::unique_ptr<RepoSurgeon> s = surgeon(r);
    ASSERT_TRUE(s);
    Result<std::string> id = s->RewriteSnapshot(b.snap, [](json* j) { (*j)["version"] = 7; });
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    s.reset();
    const std::string object = "snapshots/" + *id;
    json prune = refuses;
    prune["names"] = object;
    write_case("snapshot_unknown_version", r,
               {{"damage", "pvc-b's snapshot rewritten with format version 7 (sealed, valid name)"},
                {"check",
                 {{"read_data", false},
                  {"exit", 5},
                  {"problems",
                   {{{"kind", "damaged"},
                     {"object", object},
                     {"mentions", "version 7"},
                     {"snapshots", json::array()}}}}}},
                {"restore_fails", {*id}},
                {"restore_exact", {exact_a, exact_c}},
                {"prune", prune}});
  }
  ASSERT_TRUE(WriteFile(out / "sources.json", sources.dump(2) + "\n").ok());
}

}  // namespace
}  // namespace bunker::testing
