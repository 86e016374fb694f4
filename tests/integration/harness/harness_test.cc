// Harness self-test: every byte goes through a real server and comes back
// through an independent client (libnfs-utils' nfs-cp/nfs-cat/nfs-ls, the AWS
// CLI), and killing the server makes those clients fail.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/harness/fixtures.h"
#include "tests/harness/ports.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Text plus every byte value, so a client that mangles binary data fails.
std::string TestPayload(std::string_view tag) {
  std::string s = "bunker harness payload: " + std::string(tag) + "\n";
  for (int i = 0; i < 70000; ++i) {
    s.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  }
  return s;
}

RunResult MustRun(const std::vector<std::string>& argv, const RunOptions& options = {}) {
  Result<RunResult> r = RunCommand(argv, options);
  EXPECT_TRUE(r.ok()) << argv[0] << ": " << r.status().ToString();
  return r.ok() ? std::move(r).value() : RunResult{};
}

// True when `pid` no longer runs (absent, or a zombie nobody reaped yet).
bool ProcessGone(pid_t pid) {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) {
    return true;
  }
  const size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() &&
         ((*stat)[paren + 2] == 'Z' || (*stat)[paren + 2] == 'X');
}

// ---------------------------------------------------------------- processes

TEST(HarnessProcessTest, CapturesExitCodeStdoutAndStderr) {
  RunResult r = MustRun({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(HarnessProcessTest, PassesArgumentsVerbatimWithoutAShell) {
  RunResult r = MustRun({"printf", "%s|", "a b", "$(echo x)", ";", "*", "'\""});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "a b|$(echo x)|;|*|'\"|");
}

TEST(HarnessProcessTest, PassesStdinEnvironmentAndWorkingDirectory) {
  Result<TempDir> dir = TempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  RunOptions options;
  options.stdin_data = "from stdin;";
  options.env = {"BUNKER_HARNESS_X=42", "HOME"};
  options.cwd = dir->path();
  RunResult r = MustRun(
      {"sh", "-c", R"(cat; printf '%s;%s;' "$BUNKER_HARNESS_X" "${HOME-unset}"; pwd)"}, options);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "from stdin;42;unset;" + dir->path().string() + "\n");
}

TEST(HarnessProcessTest, KillsTheWholeCommandOnTimeout) {
  RunOptions options;
  options.timeout = milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  // The grandchild shares the pipes and the process group.
  RunResult r = MustRun({"sh", "-c", "sleep 30 & echo $!; wait"}, options);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(r.timed_out) << r.Describe();
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_FALSE(r.ok());
  const pid_t grandchild = std::stoi(r.out);
  for (int i = 0; i < 200 && !ProcessGone(grandchild); ++i) {
    usleep(10000);
  }
  EXPECT_TRUE(ProcessGone(grandchild)) << "sleep " << grandchild << " survived the timeout";
}

TEST(HarnessProcessTest, ReportsAMissingExecutable) {
  Result<RunResult> r = RunCommand({"bunker-harness-no-such-program"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
}

TEST(HarnessProcessTest, StopTerminatesTheProcessGroupAndReaps) {
  Result<TempDir> dir = TempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  const fs::path pid_file = dir->path() / "grandchild.pid";
  Result<Process> p =
      Process::Start({"sh", "-c", "sleep 60 & echo $! > \"$0\"; wait", pid_file.string()});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Result<std::string> text = NotFound("not yet");
  for (int i = 0; i < 500 && !(text.ok() && !text->empty()); ++i) {
    usleep(10000);
    text = ReadFile(pid_file);
  }
  ASSERT_TRUE(text.ok() && !text->empty()) << text.status().ToString();
  const pid_t grandchild = std::stoi(*text);
  const pid_t pid = p->pid();
  EXPECT_TRUE(p->Running());
  EXPECT_EQ(p->Stop(), "signal 15 (SIGTERM)");
  EXPECT_FALSE(p->Running());
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid))) << "child not reaped";
  for (int i = 0; i < 200 && !ProcessGone(grandchild); ++i) {
    usleep(10000);
  }
  EXPECT_TRUE(ProcessGone(grandchild));
}

TEST(HarnessPortsTest, PicksDistinctFreePorts) {
  Result<std::vector<uint16_t>> ports = PickFreePorts(8);
  ASSERT_TRUE(ports.ok()) << ports.status().ToString();
  std::set<uint16_t> distinct(ports->begin(), ports->end());
  EXPECT_EQ(distinct.size(), 8u);
  for (uint16_t port : *ports) {
    EXPECT_NE(port, 0);
    EXPECT_FALSE(PortAcceptsConnections(port)) << port;
  }
}

TEST(HarnessTempDirTest, RemovesItsDirectoryWithContents) {
  fs::path path;
  {
    Result<TempDir> dir = TempDir::Create("bunker-harness");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    path = dir->path();
    Result<fs::path> sub = dir->MakeSubdir("a/b");
    ASSERT_TRUE(sub.ok()) << sub.status().ToString();
    ASSERT_TRUE(WriteFile(*sub / "f", "x").ok());
    EXPECT_TRUE(fs::is_regular_file(path / "a/b/f"));
  }
  EXPECT_FALSE(fs::exists(path));
}

// ---------------------------------------------------------------- NFS

class HarnessNfsTest : public NfsServerTest {
 protected:
  void SetUp() override {
    NfsServerTest::SetUp();
    Result<TempDir> local = TempDir::Create("bunker-harness-local");
    ASSERT_TRUE(local.ok()) << local.status().ToString();
    local_ = std::move(local).value();
  }

  TempDir local_;  // the client side's files
};

TEST_F(HarnessNfsTest, UrlCarriesTheServerPorts) {
  const std::string url = nfs().Url("a/b.txt");
  EXPECT_EQ(url, "nfs://127.0.0.1" + nfs().export_dir().string() +
                     "/a/b.txt?version=3&nfsport=" + std::to_string(nfs().nfs_port()) +
                     "&mountport=" + std::to_string(nfs().mount_port()));
}

TEST_F(HarnessNfsTest, WritesAndReadsBackWithLibnfsUtils) {
  const std::string payload = TestPayload("nfs");
  const fs::path source = local_.path() / "source.bin";
  ASSERT_TRUE(WriteFile(source, payload).ok());

  // Client → server: the file lands in the exported directory.
  RunResult put = MustRun({"nfs-cp", source.string(), nfs().Url("written.bin")});
  ASSERT_TRUE(put.ok()) << put.Describe();
  Result<std::string> on_disk = ReadFile(nfs().export_dir() / "written.bin");
  ASSERT_TRUE(on_disk.ok()) << on_disk.status().ToString();
  EXPECT_EQ(*on_disk, payload);

  // Server → client, two independent ways.
  RunResult cat = MustRun({"nfs-cat", nfs().Url("written.bin")});
  ASSERT_TRUE(cat.ok()) << cat.Describe();
  EXPECT_EQ(cat.out, payload);
  const fs::path copy = local_.path() / "copy.bin";
  RunResult get = MustRun({"nfs-cp", nfs().Url("written.bin"), copy.string()});
  ASSERT_TRUE(get.ok()) << get.Describe();
  Result<std::string> copied = ReadFile(copy);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(*copied, payload);

  // A file created on the server's disk is served too.
  ASSERT_TRUE(WriteFile(nfs().export_dir() / "from-disk.txt", "made on the server\n").ok());
  RunResult ls = MustRun({"nfs-ls", nfs().Url()});
  ASSERT_TRUE(ls.ok()) << ls.Describe();
  EXPECT_NE(ls.out.find("written.bin"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("from-disk.txt"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(std::to_string(payload.size())), std::string::npos) << ls.out;
  RunResult cat_disk = MustRun({"nfs-cat", nfs().Url("from-disk.txt")});
  ASSERT_TRUE(cat_disk.ok()) << cat_disk.Describe();
  EXPECT_EQ(cat_disk.out, "made on the server\n");
}

TEST_F(HarnessNfsTest, ClientFailsAfterTheServerIsKilled) {
  ASSERT_TRUE(WriteFile(nfs().export_dir() / "f.txt", "x").ok());
  RunResult before = MustRun({"nfs-cat", nfs().Url("f.txt")});
  ASSERT_TRUE(before.ok()) << before.Describe();

  const pid_t pid = nfs().pid();
  nfs().Kill();
  EXPECT_FALSE(nfs().Running());
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(PortAcceptsConnections(nfs().nfs_port()));

  RunOptions options;
  options.timeout = std::chrono::seconds(60);
  RunResult after = MustRun({"nfs-cat", nfs().Url("f.txt")}, options);
  EXPECT_FALSE(after.timed_out) << after.Describe();
  EXPECT_NE(after.exit_code, 0) << after.Describe();
  EXPECT_NE(after.out, "x");
}

TEST_F(HarnessNfsTest, StopLeavesNoProcessBehind) {
  const pid_t pid = nfs().pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(nfs().Running());
  nfs().Stop();
  EXPECT_FALSE(nfs().Running());
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(PortAcceptsConnections(nfs().nfs_port()));
  EXPECT_FALSE(PortAcceptsConnections(nfs().mount_port()));
}

TEST(HarnessNfsServersTest, TwoServersRunSideBySide) {
  Result<std::unique_ptr<NfsServer>> a = NfsServer::Start();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  Result<std::unique_ptr<NfsServer>> b = NfsServer::Start();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE(WriteFile((*a)->export_dir() / "which.txt", "a").ok());
  ASSERT_TRUE(WriteFile((*b)->export_dir() / "which.txt", "b").ok());
  // Each URL reaches its own server, whatever the portmapper says.
  RunResult ra = MustRun({"nfs-cat", (*a)->Url("which.txt")});
  RunResult rb = MustRun({"nfs-cat", (*b)->Url("which.txt")});
  EXPECT_EQ(ra.out, "a") << ra.Describe();
  EXPECT_EQ(rb.out, "b") << rb.Describe();
}

// ---------------------------------------------------------------- S3

class HarnessS3Test : public S3ServerTest {
 protected:
  void SetUp() override {
    S3ServerTest::SetUp();
    Result<TempDir> local = TempDir::Create("bunker-harness-local");
    ASSERT_TRUE(local.ok()) << local.status().ToString();
    local_ = std::move(local).value();
  }

  RunResult Aws(const std::vector<std::string>& args) {
    RunOptions options;
    options.env = s3().AwsEnv();
    options.timeout = std::chrono::seconds(120);
    return MustRun(s3().AwsCommand(args), options);
  }

  std::string S3Url(std::string_view key) {
    return "s3://" + s3().bucket() + "/" + std::string(key);
  }

  TempDir local_;  // the client side's files
};

TEST_F(HarnessS3Test, WritesAndReadsBackWithAwsCli) {
  const std::string payload = TestPayload("s3");
  const fs::path source = local_.path() / "source.bin";
  ASSERT_TRUE(WriteFile(source, payload).ok());

  // Client → server: the object lands in s3rver's data directory.
  RunResult put = Aws({"s3", "cp", "--only-show-errors", source.string(), S3Url("dir/obj.bin")});
  ASSERT_TRUE(put.ok()) << put.Describe();
  Result<std::string> stored = ReadFile(s3().ObjectPath("dir/obj.bin"));
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(*stored, payload);

  // Server → client.
  const fs::path copy = local_.path() / "copy.bin";
  RunResult get = Aws({"s3", "cp", "--only-show-errors", S3Url("dir/obj.bin"), copy.string()});
  ASSERT_TRUE(get.ok()) << get.Describe();
  Result<std::string> copied = ReadFile(copy);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(*copied, payload);

  RunResult ls = Aws({"s3", "ls", "--recursive", "s3://" + s3().bucket() + "/"});
  ASSERT_TRUE(ls.ok()) << ls.Describe();
  EXPECT_NE(ls.out.find("dir/obj.bin"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(std::to_string(payload.size())), std::string::npos) << ls.out;
}

TEST_F(HarnessS3Test, ClientFailsAfterTheServerIsKilled) {
  const fs::path source = local_.path() / "small.txt";
  ASSERT_TRUE(WriteFile(source, "x").ok());
  RunResult before = Aws({"s3", "cp", "--only-show-errors", source.string(), S3Url("small.txt")});
  ASSERT_TRUE(before.ok()) << before.Describe();

  const pid_t pid = s3().pid();
  s3().Kill();
  EXPECT_FALSE(s3().Running());
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(PortAcceptsConnections(s3().port()));

  RunResult after = Aws({"s3", "ls", "s3://" + s3().bucket() + "/"});
  EXPECT_FALSE(after.timed_out) << after.Describe();
  EXPECT_NE(after.exit_code, 0) << after.Describe();
  EXPECT_EQ(after.out.find("small.txt"), std::string::npos) << after.Describe();
}

}  // namespace
}  // namespace bunker::testing
