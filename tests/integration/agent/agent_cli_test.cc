// bunker-agent end to end, block mode, file:// repositories: the real binary
// run as a child process, its --json output parsed, restores compared byte
// for byte with the images they came from.

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
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

class AgentCliTest : public AgentTest {};

// A mix of the three kinds of content, a repeated region (deduplicated within
// one backup) and a final partial chunk.
std::vector<Region> MixedImage(uint64_t seed) {
  return {
      Random(seed + 1), Text(seed + 2), Zero(),           Random(seed + 3), Zero(),
      Zero(),           Text(seed + 4), Random(seed + 5), Random(seed + 5), Zero(),
      Random(seed + 6), Text(seed + 7), Zero(),           Random(seed + 8), Text(seed + 9, 300000)};
}

// A restore killed while writing leaves no target (nothing that could be
// mistaken for a complete volume): it writes under a staging name beside
// the target and renames it into place only at the end. The next restore
// names the leftover and succeeds.
TEST_F(AgentCliTest, KilledRestoreLeavesNoTarget) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, MixedImage(300)));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::optional<json> b = Backup(repo_, image, "pvc-killed");
  ASSERT_TRUE(b);
  const fs::path target = dir() / "out" / "restored.img";
  fs::create_directories(target.parent_path());
  RunResult crashed = InRepo({"restore", "--snapshot", "latest", "--target", target.string()},
                             {"BUNKER_FAILPOINT=io.block_writer.write_at:crash@3"});
  ASSERT_EQ(crashed.exit_code, 86) << "the failpoint did not crash the restore:\n"
                                   << crashed.Describe();
  EXPECT_FALSE(fs::exists(fs::symlink_status(target))) << "a killed restore left its target";
  std::vector<fs::path> left;
  for (const auto& e : fs::directory_iterator(target.parent_path())) left.push_back(e.path());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(left[0].filename().string().starts_with(".restored.img.bunker-restore-")) << left[0];

  // Also a leftover of another run, with content, as a killed restore leaves
  // it: the next restore must neither use nor delete it.
  const fs::path other = target.parent_path() / ".restored.img.bunker-restore-1-00000000";
  ASSERT_TRUE(WriteFile(other, "an earlier run's partial data").ok());
  RunResult r =
      InRepo({"restore", "--snapshot", "latest", "--target", target.string(), "--overwrite"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_NE(r.err.find(other.string()), std::string::npos) << r.Describe();
  Result<std::string> kept = ReadFile(other);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, "an earlier run's partial data");
  EXPECT_NE(r.err.find(left[0].string()), std::string::npos)
      << "the leftover of the killed restore is not named:\n"
      << r.Describe();
  EXPECT_EQ(CompareFiles(image, target), "");
  EXPECT_TRUE(fs::exists(left[0])) << "a leftover was deleted without being asked";
  // Restoring into an existing name is refused without --overwrite, and
  // the refusal leaves nothing behind either.
  RunResult again = InRepo({"restore", "--snapshot", "latest", "--target", target.string()});
  EXPECT_NE(again.exit_code, 0);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(target.parent_path())) entries += e.exists();
  EXPECT_EQ(entries, 3u);  // the target and the two leftovers
}

TEST_F(AgentCliTest, RoundTripIsByteIdenticalAndSparse) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, MixedImage(100)));
  const uint64_t size = fs::file_size(image);
  const uint64_t holes = HoleBytes(image);
  ASSERT_EQ(holes, 5 * kMiB);
  ASSERT_NO_FATAL_FAILURE(Init(repo_));

  std::optional<json> b = Backup(repo_, image, "pvc-roundtrip");
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)["kind"], "full");
  EXPECT_EQ((*b)["mode"], "block");
  EXPECT_EQ((*b)["volume_id"], "pvc-roundtrip");
  EXPECT_TRUE((*b)["parent"].is_null());
  EXPECT_EQ((*b)["size"], size);
  const std::string id = (*b)["id"];
  EXPECT_EQ(id.size(), 64u);
  const json& st = (*b)["stats"];
  EXPECT_EQ(st["bytes_read"], size);
  EXPECT_EQ(st["bytes_hole"], holes);
  // The repeated random region is stored once.
  EXPECT_EQ(st["bytes_reused"], kMiB);
  EXPECT_EQ(st["bytes_new"], size - holes - kMiB);
  EXPECT_GT(st["bytes_stored"].get<uint64_t>(), 0u);

  std::optional<json> list = Snapshots(repo_);
  ASSERT_TRUE(list);
  ASSERT_EQ((*list)["snapshots"].size(), 1u);
  EXPECT_EQ((*list)["snapshots"][0]["id"], id);

  const fs::path target = dir() / "restored.img";
  RunResult r = InRepo({"restore", "--snapshot", id, "--target", target.string(), "--json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::optional<json> rj = StdoutJson(r);
  ASSERT_TRUE(rj);
  EXPECT_EQ((*rj)["bytes_hole"], holes);
  EXPECT_EQ((*rj)["target"], target.string());
  EXPECT_EQ(CompareFiles(image, target), "");

  // Zero chunks are left as holes: the restored file allocates about the
  // non-zero part only (1 MiB slack for file system granularity).
  const uint64_t allocated = AllocatedBytes(target);
  EXPECT_LT(allocated, size) << "restored file is not sparse";
  EXPECT_LE(allocated, size - holes + kMiB) << "restored file allocates zero regions";

  EXPECT_EQ(CheckHealthy(repo_), 0);
}

TEST_F(AgentCliTest, IncrementalStoresOnlyTouchedChunks) {
  const fs::path image1 = dir() / "v1.img";
  const fs::path image2 = dir() / "v2.img";
  std::vector<Region> regions;
  for (uint64_t i = 0; i < 16; ++i) {
    regions.push_back(i % 5 == 4 ? Zero() : (i % 3 == 0 ? Text(200 + i) : Random(200 + i)));
  }
  regions.push_back(Random(299, 123457));  // partial last chunk
  ASSERT_NO_FATAL_FAILURE(WriteImage(image1, regions));
  ASSERT_NO_FATAL_FAILURE(CopyTree(image1, image2));
  // Three 64 KiB scribbles: inside chunk 2, across chunks 5/6, and into the
  // zero chunk 9 (a hole becomes data).
  const std::vector<uint64_t> offsets = {2 * kMiB + 100 * kKiB, 6 * kMiB - 32 * kKiB, 9 * kMiB};
  std::set<uint64_t> touched;
  for (size_t i = 0; i < offsets.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(ScribbleRange(image2, offsets[i], 64 * kKiB, 900 + i));
    touched.insert(offsets[i] / kChunk);
    touched.insert((offsets[i] + 64 * kKiB - 1) / kChunk);
  }
  ASSERT_EQ(touched.size(), 4u);
  const uint64_t size = fs::file_size(image2);

  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::optional<json> first = Backup(repo_, image1, "pvc-inc");
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)["kind"], "full");
  const std::string first_id = (*first)["id"];

  std::optional<json> second = Backup(repo_, image2, "pvc-inc");
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["kind"], "incremental");
  EXPECT_EQ((*second)["parent"], first_id);
  const json& st = (*second)["stats"];
  const uint64_t bytes_new = st["bytes_new"];
  const uint64_t bytes_reused = st["bytes_reused"];
  const uint64_t bytes_hole = st["bytes_hole"];
  EXPECT_GT(bytes_new, 0u);
  EXPECT_LE(bytes_new, touched.size() * kChunk);
  EXPECT_EQ(bytes_hole, HoleBytes(image2));
  EXPECT_EQ(bytes_new + bytes_reused + bytes_hole, size);
  EXPECT_GE(bytes_reused, size - bytes_hole - touched.size() * kChunk);
  const std::string second_id = (*second)["id"];

  // --full: no parent, and nothing is uploaded again (every pack exists).
  std::optional<json> full = Backup(repo_, image2, "pvc-inc", {"--full"});
  ASSERT_TRUE(full);
  EXPECT_EQ((*full)["kind"], "full");
  EXPECT_TRUE((*full)["parent"].is_null());
  EXPECT_EQ((*full)["stats"]["bytes_new"], 0u);
  const std::string full_id = (*full)["id"];

  EXPECT_EQ(RestoreAndCompare(repo_, first_id, image1), "");
  EXPECT_EQ(RestoreAndCompare(repo_, second_id, image2), "");
  EXPECT_EQ(RestoreAndCompare(repo_, full_id, image2), "");
  EXPECT_EQ(CheckHealthy(repo_), 0);
}

TEST_F(AgentCliTest, WrongPasswordFailsWithoutWritingAnything) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, {Random(1), Text(2), Zero(), Random(3)}));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::optional<json> b = Backup(repo_, image, "pvc-pw");
  ASSERT_TRUE(b);
  std::optional<json> keys = JsonOk(repo_, {"repo", "key", "list"});
  ASSERT_TRUE(keys);
  const std::string key_id = (*keys)["keys"][0]["id"];

  const fs::path target = dir() / "never.img";
  const std::vector<std::vector<std::string>> commands = {
      {"snapshots"},
      {"backup", "--volume", image.string(), "--volume-id", "pvc-pw"},
      {"restore", "--target", target.string()},
      {"check", "--read-data"},
      {"forget", "--keep-last", "1"},
      {"prune"},
      {"stats"},
      {"repo", "key", "list"},
      {"repo", "key", "add"},
      {"repo", "key", "remove", key_id},
  };
  const auto before = ListTree(repo_);
  for (const auto& cmd : commands) {
    SCOPED_TRACE(cmd[0] + (cmd.size() > 1 ? " " + cmd[1] : ""));
    RunResult r = InRepo(cmd, {"BUNKER_PASSWORD=not the password", "BUNKER_NEW_PASSWORD=other"});
    EXPECT_EQ(r.exit_code, 3) << r.Describe();
    std::vector<std::string> err = Lines(r.err);
    ASSERT_EQ(err.size(), 1u) << r.Describe();
    EXPECT_NE(err[0].find("wrong password"), std::string::npos) << err[0];
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(DiffTrees(before, ListTree(repo_)), "") << "the repository changed";
  }
  EXPECT_FALSE(fs::exists(target));
  // The right password still sees the one snapshot.
  std::optional<json> list = Snapshots(repo_);
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)["snapshots"].size(), 1u);
}

TEST_F(AgentCliTest, MalformedRepositoryUrlsAreUsageErrors) {
  const fs::path cwd = dir();
  const std::vector<std::string> urls = {"ftp://x", "s3://", "file://relative", "nfs://host",
                                         "nfs://host/"};
  for (const std::string& url : urls) {
    for (const std::vector<std::string>& verb :
         std::vector<std::vector<std::string>>{{"repo", "init"}, {"snapshots"}}) {
      SCOPED_TRACE(url + " " + verb[0]);
      std::vector<std::string> args = {"--repo", url};
      args.insert(args.end(), verb.begin(), verb.end());
      RunResult r = Agent(args);
      EXPECT_EQ(r.exit_code, 2) << r.Describe();
      std::vector<std::string> err = Lines(r.err);
      ASSERT_EQ(err.size(), 1u) << r.Describe();
      EXPECT_NE(err[0].find("\"" + url + "\""), std::string::npos)
          << "the message does not name the URL: " << err[0];
    }
  }
  // Empty: no URL to name; the message says how to give one.
  RunResult r = Agent({"--repo", "", "snapshots"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("--repo"), std::string::npos) << r.Describe();
  // Nothing was created next to the test (file://relative must not become ./relative).
  for (const auto& e : fs::directory_iterator(cwd)) {
    EXPECT_NE(e.path().filename(), "relative") << "created " << e.path();
    EXPECT_NE(e.path().filename(), "x") << "created " << e.path();
  }
}

TEST_F(AgentCliTest, MissingVolumeIsNotFound) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path missing = dir() / "no-such-volume.img";
  RunResult r = InRepo({"backup", "--volume", missing.string(), "--volume-id", "v"});
  EXPECT_EQ(r.exit_code, 6) << r.Describe();
  EXPECT_NE(r.err.find(missing.string()), std::string::npos) << r.Describe();
  std::optional<json> list = Snapshots(repo_);
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)["snapshots"].size(), 0u);
}

TEST_F(AgentCliTest, DirectoryAsBlockVolumeIsUsageError) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  Result<fs::path> d = tmp_.MakeSubdir("a-directory");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  RunResult r = InRepo({"backup", "--volume", d->string(), "--mode", "block", "--volume-id", "v"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find(d->string()), std::string::npos) << r.Describe();
}

// Things that are not volumes: bunker-agent must refuse them up front (usage
// error naming the path) and never open them — opening a FIFO for reading
// blocks until a writer appears, and /dev/zero never ends.
TEST_F(AgentCliTest, FifoAndCharacterDeviceAreRefusedWithoutHanging) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path fifo = dir() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& volume : {fifo.string(), std::string("/dev/zero")}) {
    for (bool explicit_mode : {true, false}) {
      SCOPED_TRACE(volume + (explicit_mode ? " --mode block" : ""));
      std::vector<std::string> args = {"--repo", Url(),         "backup", "--volume",
                                       volume,   "--volume-id", "v"};
      if (explicit_mode) {
        args.push_back("--mode");
        args.push_back("block");
      }
      RunResult r = Agent(args, {}, std::chrono::seconds(20));
      EXPECT_FALSE(r.timed_out);
      EXPECT_EQ(r.exit_code, 2) << r.Describe();
      EXPECT_NE(r.err.find(volume), std::string::npos) << r.Describe();
    }
  }
  std::optional<json> list = Snapshots(repo_);
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)["snapshots"].size(), 0u);
}

// A volume the agent may not read (an unprivileged agent container, a device
// with the wrong owner). Root reads mode-000 files through CAP_DAC_OVERRIDE,
// so the agent runs under setpriv with that capability dropped.
TEST_F(AgentCliTest, UnreadableImageIsPermissionDenied) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path image = dir() / "locked.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, {Random(7), Random(8)}));
  ASSERT_EQ(::chmod(image.c_str(), 0), 0);
  std::vector<std::string> prefix;
  if (::geteuid() == 0) {
    Result<fs::path> setpriv = FindExecutable("setpriv");
    if (!setpriv.ok()) {
      GTEST_SKIP() << "running as root and setpriv (util-linux) is not installed, so a mode-000 "
                      "file stays readable: cannot make an unreadable volume";
    }
    prefix = {setpriv->string(), "--bounding-set=-dac_override,-dac_read_search"};
    std::vector<std::string> probe = prefix;
    probe.insert(probe.end(), {"cat", image.string()});
    Result<RunResult> p = RunCommand(probe);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    if (p->ok()) {
      GTEST_SKIP() << "setpriv could not drop CAP_DAC_OVERRIDE here (cat still reads a mode-000 "
                      "file): cannot make an unreadable volume";
    }
  }
  std::vector<std::string> argv = prefix;
  argv.insert(argv.end(), {AgentBinary().string(), "--repo", Url(), "backup", "--volume",
                           image.string(), "--volume-id", "v"});
  RunOptions o;
  o.env = Env();
  o.timeout = std::chrono::seconds(30);
  Result<RunResult> r = RunCommand(argv, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3) << r->Describe();
  EXPECT_NE(r->err.find(image.string()), std::string::npos) << r->Describe();
  EXPECT_NE(r->err.find("Permission denied"), std::string::npos) << r->Describe();
  std::optional<json> list = Snapshots(repo_);
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)["snapshots"].size(), 0u);
}

TEST_F(AgentCliTest, RestoreOverExistingTargetNeedsOverwrite) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, {Random(11), Zero(), Text(12), Random(13, 5000)}));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::optional<json> b = Backup(repo_, image, "pvc-target");
  ASSERT_TRUE(b);
  const std::string id = (*b)["id"];

  // An existing file, larger than the volume and with other content.
  const fs::path target = dir() / "existing.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(target, {Text(500), Text(501), Random(502), Random(503)}));
  const fs::path pristine = dir() / "existing.copy";
  ASSERT_NO_FATAL_FAILURE(CopyTree(target, pristine));

  RunResult r = InRepo({"restore", "--snapshot", id, "--target", target.string()});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(target.string()), std::string::npos) << r.Describe();
  EXPECT_EQ(CompareFiles(pristine, target), "") << "the existing target was modified";

  r = InRepo({"restore", "--snapshot", id, "--target", target.string(), "--overwrite"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(CompareFiles(image, target), "") << "--overwrite left the old content or size";
}

TEST_F(AgentCliTest, MissingRepositoryIsNotFound) {
  // A directory without a config.
  Result<fs::path> empty = tmp_.MakeSubdir("empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"snapshots"}, {"check"}, {"stats"}, {"restore", "--target", "x.img"}}) {
    SCOPED_TRACE(cmd[0]);
    RunResult r = In(*empty, cmd);
    EXPECT_EQ(r.exit_code, 6) << r.Describe();
    EXPECT_NE(r.err.find("no repository at " + UrlOf(*empty)), std::string::npos) << r.Describe();
  }
  EXPECT_TRUE(fs::is_empty(*empty)) << "a command wrote into a directory with no repository";
  EXPECT_FALSE(fs::exists(dir() / "x.img"));

  // A path that does not exist at all: also not found, naming the path, and
  // nothing is created there.
  const fs::path nowhere = dir() / "nowhere";
  RunResult r = In(nowhere, {"snapshots"});
  EXPECT_EQ(r.exit_code, 6) << r.Describe();
  EXPECT_NE(r.err.find(nowhere.string()), std::string::npos) << r.Describe();
  EXPECT_FALSE(fs::exists(nowhere));
}

TEST_F(AgentCliTest, KeysAddListRemove) {
  const fs::path pw1 = dir() / "pw1";
  const fs::path pw2 = dir() / "pw2";
  ASSERT_TRUE(WriteFile(pw1, "first password\n").ok());
  ASSERT_TRUE(WriteFile(pw2, "second password\n").ok());
  // Password files only: BUNKER_PASSWORD (set by the fixture) is removed.
  const EnvChanges no_env_pw = {"BUNKER_PASSWORD"};
  auto with = [&](const fs::path& pw, std::vector<std::string> args) {
    args.insert(args.begin(), {"--password-file", pw.string()});
    return InRepo(args, no_env_pw);
  };

  ASSERT_TRUE(with(pw1, {"repo", "init"}).ok());
  RunResult r = with(pw2, {"snapshots"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();

  r = with(pw1, {"repo", "key", "add", "--new-password-file", pw2.string(), "--label", "second",
                 "--json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::optional<json> added = StdoutJson(r);
  ASSERT_TRUE(added);
  const std::string key2 = (*added)["key_id"];

  r = with(pw2, {"snapshots", "--json"});
  ASSERT_TRUE(r.ok()) << "the new password does not open the repository:\n" << r.Describe();

  r = with(pw2, {"repo", "key", "list", "--json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::optional<json> keys = StdoutJson(r);
  ASSERT_TRUE(keys);
  ASSERT_EQ((*keys)["keys"].size(), 2u) << keys->dump(2);
  std::string key1;
  int current = 0;
  for (const json& k : (*keys)["keys"]) {
    if (k["current"].get<bool>()) {
      ++current;
      EXPECT_EQ(k["id"], key2) << "the current key is not the one opened with";
      EXPECT_EQ(k["label"], "second");
    } else {
      key1 = k["id"];
    }
  }
  EXPECT_EQ(current, 1);
  ASSERT_FALSE(key1.empty());

  // The key in use cannot be removed.
  r = with(pw2, {"repo", "key", "remove", key2});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_FALSE(r.err.empty());
  EXPECT_TRUE(fs::exists(repo_ / "keys" / key2));

  // The other one can (by a unique prefix); then its password no longer opens.
  r = with(pw2, {"repo", "key", "remove", key1.substr(0, 12)});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_FALSE(fs::exists(repo_ / "keys" / key1));
  r = with(pw1, {"snapshots"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();

  // The last key is never removed.
  r = with(pw2, {"repo", "key", "remove", key2});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(fs::exists(repo_ / "keys" / key2));
  r = with(pw2, {"repo", "key", "list", "--json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  keys = StdoutJson(r);
  ASSERT_TRUE(keys);
  EXPECT_EQ((*keys)["keys"].size(), 1u);
}

// Every failure with --json prints one JSON object {"error": {"code",
// "message"}} on stdout (and still the one line on stderr).
TEST_F(AgentCliTest, JsonErrorsAreObjects) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, {Random(21), Zero(), Text(22)}));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::optional<json> b = Backup(repo_, image, "pvc-json");
  ASSERT_TRUE(b);
  const fs::path existing = dir() / "existing.img";
  ASSERT_TRUE(WriteFile(existing, "x").ok());

  struct Case {
    std::vector<std::string> args;
    EnvChanges env;
    int exit_code;
    std::string code;
  };
  const std::vector<Case> cases = {
      {{"--repo", UrlOf(dir() / "empty-nowhere"), "snapshots"}, {}, 6, "NotFound"},
      {{"--repo", Url(), "snapshots"}, {"BUNKER_PASSWORD=wrong"}, 3, "PermissionDenied"},
      {{"--repo", "ftp://x", "snapshots"}, {}, 2, "InvalidArgument"},
      {{"--repo", Url(), "backup", "--volume", (dir() / "missing").string()}, {}, 6, "NotFound"},
      {{"--repo", Url(), "restore", "--target", existing.string()}, {}, 1, "AlreadyExists"},
      {{"--repo", Url(), "restore", "--snapshot", "abcdef012345", "--target", "n.img"},
       {},
       6,
       "NotFound"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--json");
    SCOPED_TRACE(::testing::PrintToString(args));
    RunResult r = Agent(args, c.env);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.Describe();
    std::optional<json> j = StdoutJson(r);
    ASSERT_TRUE(j);
    ASSERT_TRUE(j->contains("error")) << j->dump(2);
    const json& e = (*j)["error"];
    ASSERT_TRUE(e.is_object()) << j->dump(2);
    EXPECT_EQ(e.value("code", ""), c.code) << j->dump(2);
    ASSERT_TRUE(e.contains("message") && e["message"].is_string()) << j->dump(2);
    EXPECT_FALSE(e["message"].get<std::string>().empty());
    EXPECT_EQ(Lines(r.err).size(), 1u) << r.Describe();
  }
}

// A usage error the command line parser catches (missing or unknown flag,
// bad value) is still a failure of a --json invocation: the caller (the
// appliance) parses stdout and must get an error object, not help text.
TEST_F(AgentCliTest, JsonUsageErrorsAreObjects) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const std::vector<std::vector<std::string>> cases = {
      {"--json", "--repo", Url(), "backup"},                             // --volume missing
      {"--json", "--repo", Url(), "snapshots", "--no-such-flag"},        // unknown flag
      {"--json", "--repo", Url(), "--io-engine", "bogus", "snapshots"},  // bad value
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(::testing::PrintToString(args));
    RunResult r = Agent(args);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
    json j = json::parse(r.out, nullptr, false);
    // Regression: CLI11 parse errors used to bypass Fail(), so --json
    // callers got CLI11's plain text on stderr and nothing on stdout (seen by
    // this test; fixed in e6eaf67).
    EXPECT_TRUE(!j.is_discarded() && j.is_object() && j.contains("error") &&
                j["error"].contains("code") && j["error"].contains("message"))
        << "a --json usage error did not print a JSON error object on stdout:\n"
        << r.Describe();
  }
}

TEST_F(AgentCliTest, JsonBackupReportsProgressOnStderr) {
  const fs::path image = dir() / "vol.img";
  std::vector<Region> regions;
  for (uint64_t i = 0; i < 24; ++i) regions.push_back(i % 4 == 3 ? Zero() : Random(300 + i));
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, regions));
  const uint64_t size = fs::file_size(image);
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  RunResult r = InRepo({"backup", "--volume", image.string(), "--volume-id", "p", "--json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  ASSERT_TRUE(StdoutJson(r));
  std::vector<std::string> lines = Lines(r.err);
  ASSERT_FALSE(lines.empty()) << "no progress on stderr";
  int finals = 0;
  json last;
  for (const std::string& line : lines) {
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "stderr line is not JSON: " << line;
    EXPECT_EQ(j.value("type", ""), "progress") << line;
    EXPECT_EQ(j.value("verb", ""), "backup") << line;
    if (j.value("final", false)) ++finals;
    last = j;
  }
  EXPECT_EQ(finals, 1);
  EXPECT_TRUE(last.value("final", false)) << "the last progress line is not the final one";
  EXPECT_EQ(last["bytes_done"], size);
  EXPECT_EQ(last["bytes_total"], size);
}

TEST_F(AgentCliTest, PreadEngineRoundTrip) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, MixedImage(400)));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::optional<json> b = Backup(repo_, image, "pvc-pread", {"--io-engine", "pread"});
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)["io_engine"], "pread");
  const fs::path target = dir() / "restored.img";
  RunResult r = InRepo({"--io-engine", "pread", "restore", "--snapshot", (*b)["id"], "--target",
                        target.string(), "--json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::optional<json> rj = StdoutJson(r);
  ASSERT_TRUE(rj);
  EXPECT_EQ((*rj)["io_engine"], "pread");
  EXPECT_EQ(CompareFiles(image, target), "");
  EXPECT_LT(AllocatedBytes(target), fs::file_size(target));
}

// Restore with many workers, repeatedly. Regression test: with the io_uring
// engine, writes submitted from a restore worker thread that then exited
// were cancelled by the kernel (-ECANCELED, "Operation canceled"), failing
// about 4 in 10 restores with --workers 16 (seen by these tests before
// 7709ed7, which writes from one long-lived thread).
TEST_F(AgentCliTest, RestoreWithManyWorkersIsReliable) {
  const fs::path image = dir() / "vol.img";
  std::vector<Region> regions;
  for (uint64_t i = 0; i < 32; ++i) regions.push_back(i % 12 == 11 ? Zero() : Random(600 + i));
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, regions));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  std::optional<json> b = Backup(repo_, image, "pvc-workers");
  ASSERT_TRUE(b);
  int failed = 0;
  std::string first_failure;
  for (int i = 0; i < 6; ++i) {
    const fs::path target = dir() / "restored.img";
    RunResult r = InRepo(
        {"restore", "--snapshot", (*b)["id"], "--target", target.string(), "--workers", "16"});
    if (!r.ok()) {
      if (++failed == 1) first_failure = r.Describe();
      EXPECT_FALSE(fs::exists(target)) << "a failed restore left its target";
    } else {
      EXPECT_EQ(CompareFiles(image, target), "");
    }
    fs::remove(target);
  }
  EXPECT_EQ(failed, 0) << failed << " of 6 restores failed; the first:\n" << first_failure;
}

// What a container's default seccomp profile does to io_uring: auto falls back
// to the thread pool and says so once; an explicit io_uring is an error.
TEST_F(AgentCliTest, IoUringRefusedFallsBackOnce) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, MixedImage(500)));
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const EnvChanges eperm = {"BUNKER_IO_URING_SIMULATE_EPERM=1"};
  auto fallback_lines = [](const std::string& err) {
    int n = 0;
    for (const std::string& line : Lines(err)) {
      if (line.find("io_uring unavailable") != std::string::npos) ++n;
    }
    return n;
  };

  RunResult r =
      InRepo({"backup", "--volume", image.string(), "--volume-id", "pvc-eperm", "--json"}, eperm);
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::optional<json> b = StdoutJson(r);
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)["io_engine"], "pread");
  EXPECT_EQ(fallback_lines(r.err), 1) << r.Describe();
  EXPECT_NE(r.err.find("reading with a pread thread pool"), std::string::npos) << r.Describe();

  const fs::path target = dir() / "restored.img";
  r = InRepo({"restore", "--snapshot", (*b)["id"], "--target", target.string(), "--json"}, eperm);
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::optional<json> rj = StdoutJson(r);
  ASSERT_TRUE(rj);
  EXPECT_EQ((*rj)["io_engine"], "pread");
  EXPECT_EQ(fallback_lines(r.err), 1) << r.Describe();
  EXPECT_EQ(CompareFiles(image, target), "");

  r = InRepo(
      {"--io-engine", "io_uring", "backup", "--volume", image.string(), "--volume-id", "pvc-eperm"},
      eperm);
  EXPECT_NE(r.exit_code, 0) << "an explicit io_uring that cannot be set up must fail:\n"
                            << r.Describe();
  EXPECT_NE(r.err.find("io_uring"), std::string::npos) << r.Describe();
}

}  // namespace
}  // namespace bunker::testing

namespace bunker::testing {
namespace {

// File mode: device nodes and setuid/setgid bits are restored only with
// --allow-special and only as root; without it they are held back and
// counted in the result. FIFOs grant nothing and are always restored.
TEST_F(AgentCliTest, AllowSpecialGatesDeviceNodesAndSetidBits) {
  if (::geteuid() != 0) GTEST_SKIP() << "creating a device node to back up needs root";
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path src = dir() / "src";
  fs::create_directories(src / "shared");
  ASSERT_TRUE(WriteFile(src / "tool", "#!/bin/sh\n").ok());
  ASSERT_TRUE(WriteFile(src / "plain", "data\n").ok());
  ASSERT_EQ(::chmod((src / "tool").c_str(), 04755), 0);
  ASSERT_EQ(::chmod((src / "plain").c_str(), 02644), 0);
  ASSERT_EQ(::chmod((src / "shared").c_str(), 02775), 0);
  ASSERT_EQ(::mkfifo((src / "fifo").c_str(), 0640), 0);
  if (::mknod((src / "null").c_str(), S_IFCHR | 0640, makedev(1, 3)) != 0) {
    GTEST_SKIP() << "mknod refused here (no CAP_MKNOD): " << std::strerror(errno);
  }
  std::optional<json> b = JsonOk(repo_, {"backup", "--volume", src.string(), "--volume-id", "fs"});
  ASSERT_TRUE(b);
  const std::string snap = (*b)["id"];
  auto mode_of = [](const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode;
  };

  // Without the flag: the device is skipped, setuid and setgid dropped from
  // files (kept on the directory), and both counted.
  const fs::path held = dir() / "held";
  std::optional<json> r = JsonOk(repo_, {"restore", "--snapshot", snap, "--target", held.string()});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["special_skipped"]["device_nodes"], 1) << r->dump(2);
  EXPECT_EQ((*r)["special_skipped"]["setid_bits"], 2) << r->dump(2);
  EXPECT_FALSE(fs::exists(fs::symlink_status(held / "null")));
  EXPECT_EQ(mode_of(held / "tool") & 07777, 0755u);
  EXPECT_EQ(mode_of(held / "plain") & 07777, 0644u);
  EXPECT_EQ(mode_of(held / "shared") & 07777, 02775u);
  EXPECT_TRUE(S_ISFIFO(mode_of(held / "fifo")));

  // With it (as root): everything as it was.
  const fs::path full = dir() / "full";
  r = JsonOk(repo_, {"restore", "--snapshot", snap, "--target", full.string(), "--allow-special"});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["special_skipped"]["device_nodes"], 0) << r->dump(2);
  EXPECT_EQ((*r)["special_skipped"]["setid_bits"], 0) << r->dump(2);
  const mode_t dev = mode_of(full / "null");
  EXPECT_TRUE(S_ISCHR(dev));
  struct stat st {};
  ASSERT_EQ(::lstat((full / "null").c_str(), &st), 0);
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(mode_of(full / "tool") & 07777, 04755u);
  EXPECT_EQ(mode_of(full / "plain") & 07777, 02644u);

  // The human output says what was held back.
  RunResult text = InRepo({"restore", "--snapshot", snap, "--target", (dir() / "t").string()});
  ASSERT_TRUE(text.ok()) << text.Describe();
  EXPECT_NE(text.out.find("held back: 1 device nodes"), std::string::npos) << text.out;
}

// --no-verify-before-upload (hidden: it only measures what the verification
// costs) still makes a backup that restores byte for byte.
TEST_F(AgentCliTest, NoVerifyBeforeUploadIsHiddenAndRoundTrips) {
  ASSERT_NO_FATAL_FAILURE(Init(repo_));
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, MixedImage(40)));
  std::optional<json> b = Backup(repo_, image, "pvc-nv", {"--no-verify-before-upload"});
  ASSERT_TRUE(b);
  EXPECT_EQ(RestoreAndCompare(repo_, (*b)["id"], image), "");
  EXPECT_EQ(CheckHealthy(repo_), 0);
  RunResult help = Agent({"backup", "--help"});
  EXPECT_TRUE(help.ok()) << help.Describe();
  EXPECT_EQ(help.out.find("verify"), std::string::npos) << "the flag is meant to be hidden";
}

// The self-check before upload: a blob whose compressed or sealed form does
// not decode back to the chunk's bytes (a compressor or cipher fault, a bit
// flip in RAM) stops the backup with an error that names the blob, and no
// snapshot refers to it. Without the check the same damage is stored, and
// only a later restore finds it: each failpoint damages one blob either way.
TEST_F(AgentCliTest, SelfCheckStopsDamagedBlobsBeforeUpload) {
  const fs::path image = dir() / "vol.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(image, MixedImage(40)));
  struct Case {
    const char* failpoint;
    // What the restore of the unchecked backup reports: a flipped byte in
    // LZ4 data either still decompresses (to other bytes: the fingerprint
    // catches them) or does not; which, depends on the blob the failpoint
    // meets, and that on the workers' order.
    std::vector<std::string> restore_says;
  };
  const Case cases[] = {
      {"codec.damage_compressed:error@2",
       {"does not match the fingerprint", "LZ4 data does not decompress"}},
      {"codec.damage_sealed:error@3", {"authentication failed"}},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.failpoint);
    const fs::path repo = dir() / ("checked-" + std::to_string(n));
    ASSERT_NO_FATAL_FAILURE(Init(repo));
    const EnvChanges damage = {std::string("BUNKER_FAILPOINT=") + c.failpoint};
    RunResult stopped =
        In(repo, {"backup", "--volume", image.string(), "--volume-id", "pvc-sc", "--mode", "block"},
           damage);
    EXPECT_EQ(stopped.exit_code, 1) << stopped.Describe();
    EXPECT_NE(stopped.err.find("did not decode back to its plaintext before upload"),
              std::string::npos)
        << stopped.Describe();
    std::optional<json> snaps = Snapshots(repo);
    ASSERT_TRUE(snaps);
    EXPECT_EQ((*snaps)["snapshots"].size(), 0u) << snaps->dump(2);
    EXPECT_GE(CheckHealthy(repo), 0);
    // Without the failpoint the checked backup goes through.
    std::optional<json> b = Backup(repo, image, "pvc-sc");
    ASSERT_TRUE(b);
    EXPECT_EQ(RestoreAndCompare(repo, (*b)["id"], image), "");

    // The same damage without the check (in a repository of its own: later
    // backups would deduplicate against the damaged blob): the backup
    // "succeeds" and the restore refuses the blob loudly. The data is lost,
    // which is why the check is on.
    const fs::path unchecked = dir() / ("unchecked-" + std::to_string(n++));
    ASSERT_NO_FATAL_FAILURE(Init(unchecked));
    RunResult stored = In(unchecked,
                          {"backup", "--volume", image.string(), "--volume-id", "pvc-sc", "--mode",
                           "block", "--no-verify-before-upload"},
                          damage);
    ASSERT_TRUE(stored.ok()) << stored.Describe();
    const fs::path target = dir() / ("out-" + std::to_string(n) + ".img");
    RunResult restore =
        In(unchecked, {"restore", "--snapshot", "latest", "--target", target.string()});
    EXPECT_EQ(restore.exit_code, 5) << restore.Describe();
    EXPECT_TRUE(std::any_of(
        c.restore_says.begin(), c.restore_says.end(),
        [&](const std::string& says) { return restore.err.find(says) != std::string::npos; }))
        << restore.Describe();
    EXPECT_FALSE(fs::exists(target));
  }
}

}  // namespace
}  // namespace bunker::testing
