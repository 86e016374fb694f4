// The NFS backend against a real nfs-ganesha (tests/harness): the backend
// conformance suite; objects seen by an independent client (libnfs-utils'
// nfs-cat / nfs-ls) and in the exported directory on disk; large objects;
// errors; a killed, restarted and hung server; a kill in the middle of a Put.

#include "nodeagent/core/backend/nfs_backend.h"

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/harness/fixtures.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"
#include "tests/unit/backend/backend_conformance.h"

namespace bunker::backend {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Fast pseudo-random bytes (xorshift), so large objects do not compress or
// repeat and a misplaced range is detected.
Bytes RandomBytes(size_t n, uint64_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (size_t j = 0; j < 8 && i + j < n; ++j) {
      b[i + j] = static_cast<uint8_t>(x >> (8 * j));
    }
  }
  return b;
}

Bytes ReadDiskFile(const fs::path& path) {
  Result<std::string> text = testing::ReadFile(path);
  if (!text.ok()) {
    ADD_FAILURE() << text.status().ToString();
    return {};
  }
  return Bytes(text->begin(), text->end());
}

// Every file under `dir` whose name starts with ".tmp-".
std::vector<fs::path> TempFilesUnder(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().starts_with(".tmp-")) {
      out.push_back(it->path());
    }
  }
  return out;
}

std::map<std::string, uint64_t> ListAll(Backend* b, std::string_view prefix) {
  std::map<std::string, uint64_t> out;
  Status st = b->List(prefix, [&](const ObjectInfo& info) {
    out[info.name] = info.size;
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// ----------------------------------------------------------- conformance

// One server for the conformance tests of this process, a fresh repository
// directory for each backend the suite asks for.
class SharedNfsServer : public ::testing::Environment {
 public:
  static testing::NfsServer* Get() {
    if (server_ == nullptr && !tried_) {
      tried_ = true;
      Result<std::unique_ptr<testing::NfsServer>> s = testing::NfsServer::Start();
      if (!s.ok()) {
        ADD_FAILURE() << s.status().ToString();
        return nullptr;
      }
      server_ = std::move(s).value();
    }
    return server_.get();
  }
  void TearDown() override { server_.reset(); }

 private:
  static inline std::unique_ptr<testing::NfsServer> server_;
  static inline bool tried_ = false;
};
const auto* const kSharedServer = ::testing::AddGlobalTestEnvironment(new SharedNfsServer);

std::unique_ptr<Backend> MakeNfsBackend(const NfsBackendOptions& options) {
  static int n = 0;
  testing::NfsServer* server = SharedNfsServer::Get();
  if (server == nullptr) {
    return nullptr;
  }
  Result<std::unique_ptr<Backend>> b =
      NfsBackend::Open(server->Url("conformance-" + std::to_string(++n)), true, options);
  if (!b.ok()) {
    ADD_FAILURE() << b.status().ToString() << "\n" << server->LogTail();
    return nullptr;
  }
  return std::move(b).value();
}

std::unique_ptr<Backend> MakeDefaultNfsBackend() { return MakeNfsBackend({}); }

// One connection, 4 KiB READ/WRITE calls, 3 in flight: every object of the
// suite crosses many call boundaries and the pipeline is always full.
std::unique_ptr<Backend> MakeSmallIoNfsBackend() {
  NfsBackendOptions o;
  o.connections = 1;
  o.io_size = 4096;
  o.io_depth = 3;
  return MakeNfsBackend(o);
}

INSTANTIATE_TEST_SUITE_P(Nfs, BackendConformanceTest,
                         ::testing::Values(BackendFactory{"nfs", MakeDefaultNfsBackend},
                                           BackendFactory{"nfs_small_io", MakeSmallIoNfsBackend}));

// ------------------------------------------------------------ behaviour

class NfsBackendTest : public testing::NfsServerTest {
 protected:
  std::unique_ptr<Backend> OpenRepo(const NfsBackendOptions& options = {},
                                    std::string_view sub = "repo", bool create = true) {
    Result<std::unique_ptr<Backend>> b = NfsBackend::Open(nfs().Url(sub), create, options);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b).value() : nullptr;
  }
  fs::path Disk(std::string_view rel = "repo") const { return nfs_->export_dir() / rel; }

  // Options that give up quickly once the server is gone.
  static NfsBackendOptions Impatient() {
    NfsBackendOptions o;
    o.rpc_timeout = seconds(2);
    o.retry_window = seconds(3);
    return o;
  }
};

TEST_F(NfsBackendTest, OpenBackendDispatchesNfsUrlsAndDescribesWithoutQuery) {
  Result<std::unique_ptr<Backend>> b = OpenBackend(nfs().Url("repo"), {}, true);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*b)->Describe(), "nfs://127.0.0.1" + Disk().string());
  ASSERT_TRUE((*b)->Put("config", AsBytes("cfg")).ok());
  EXPECT_EQ(ReadDiskFile(Disk() / "config"), Bytes({'c', 'f', 'g'}));
}

TEST_F(NfsBackendTest, MissingRepositoryIsNotFoundUnlessCreating) {
  Result<std::unique_ptr<Backend>> missing = NfsBackend::Open(nfs().Url("a/b/c"), false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("/a/b/c"), std::string::npos)
      << missing.status().ToString();
  EXPECT_FALSE(fs::exists(Disk("a")));

  Result<std::unique_ptr<Backend>> created = NfsBackend::Open(nfs().Url("a/b/c"), true);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(fs::is_directory(Disk("a/b/c")));
  ASSERT_TRUE((*created)->Put("keys/k", AsBytes("key")).ok());
  EXPECT_TRUE(fs::is_regular_file(Disk("a/b/c/keys/k")));

  // An existing directory is mounted directly (the server allows sub-mounts).
  Result<std::unique_ptr<Backend>> again = NfsBackend::Open(nfs().Url("a/b/c"), false);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*(*again)->Get("keys/k"), Bytes({'k', 'e', 'y'}));
}

TEST_F(NfsBackendTest, BadUrlsAreRefused) {
  EXPECT_EQ(NfsBackend::Open(nfs().Url("repo") + "&version=4", true).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(NfsBackend::Open(nfs().Url("repo") + "&connections=0", true).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(NfsBackend::Open(nfs().Url("repo") + "&autoreconnect=-1", true).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(NfsBackend::Open(nfs().Url("x/../y"), true).status().code(), Code::kInvalidArgument);
}

TEST_F(NfsBackendTest, ObjectsAreVisibleToAnIndependentClientAndOnDisk) {
  auto b = OpenRepo();
  ASSERT_NE(b, nullptr);
  const Bytes data = RandomBytes(300 * 1024 + 17, 1);
  ASSERT_TRUE(b->Put("data/ab/abcdef", data).ok());
  ASSERT_TRUE(b->Put("config", AsBytes("config v1")).ok());

  // nfs-cat, a different NFS client, over the same URL.
  Result<testing::RunResult> cat =
      testing::RunCommand({"nfs-cat", nfs().Url("repo/data/ab/abcdef")});
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  ASSERT_TRUE(cat->ok()) << cat->Describe();
  EXPECT_TRUE(Bytes(cat->out.begin(), cat->out.end()) == data);
  Result<testing::RunResult> ls = testing::RunCommand({"nfs-ls", nfs().Url("repo/data/ab")});
  ASSERT_TRUE(ls.ok() && ls->ok()) << (ls.ok() ? ls->Describe() : ls.status().ToString());
  EXPECT_NE(ls->out.find("abcdef"), std::string::npos) << ls->out;
  EXPECT_EQ(ls->out.find(".tmp-"), std::string::npos) << ls->out;

  // The exported directory on disk: same bytes, private mode, no leftovers.
  EXPECT_TRUE(ReadDiskFile(Disk() / "data/ab/abcdef") == data);
  struct stat st {};
  ASSERT_EQ(::stat((Disk() / "data/ab/abcdef").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(TempFilesUnder(Disk()).empty());

  // And the other way: a file written on the server is an object.
  ASSERT_TRUE(fs::create_directories(Disk() / "index"));
  ASSERT_TRUE(testing::WriteFile(Disk() / "index/from-disk", "written on the server").ok());
  Result<Bytes> got = b->Get("index/from-disk");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsChars(*got), "written on the server");
  auto all = ListAll(b.get(), "");
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(all["data/ab/abcdef"], data.size());
  Result<ObjectInfo> info = b->Stat("index/from-disk");
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->mtime_unix, 1'600'000'000);
  EXPECT_EQ(b->Stat("data/ab").status().code(), Code::kNotFound) << "a directory is no object";
}

TEST_F(NfsBackendTest, TemporaryFilesAreNeverListed) {
  auto b = OpenRepo();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put("data/aa/x", AsBytes("x")).ok());
  // What a writer killed before its rename leaves behind.
  ASSERT_TRUE(testing::WriteFile(Disk() / "data/aa/.tmp-0123456789abcdef", "partial").ok());
  ASSERT_TRUE(testing::WriteFile(Disk() / ".tmp-fedcba9876543210", "partial").ok());
  auto listed = ListAll(b.get(), "");
  EXPECT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed.contains("data/aa/x"));
  EXPECT_EQ(ListAll(b.get(), "data/aa/").size(), 1u);
  EXPECT_EQ(ListAll(b.get(), "data/a").size(), 1u) << "a non-directory prefix filters";
  EXPECT_EQ(b->Get("data/aa/.tmp-0123456789abcdef").status().code(), Code::kInvalidArgument);
}

TEST_F(NfsBackendTest, StaleTemporariesAreRemovedOnlyWhenOlderThanTheCutoff) {
  auto b = OpenRepo();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put("data/aa/x", AsBytes("x")).ok());
  const fs::path old_tmp = Disk() / "data/aa/.tmp-0123456789abcdef";
  const fs::path new_tmp = Disk() / ".tmp-fedcba9876543210";
  ASSERT_TRUE(testing::WriteFile(old_tmp, "partial").ok());
  ASSERT_TRUE(testing::WriteFile(new_tmp, "partial").ok());
  // The first was left an hour ago; the second is being written right now.
  fs::last_write_time(old_tmp, fs::file_time_type::clock::now() - std::chrono::hours(1));
  const int64_t cutoff = std::time(nullptr) - 60;
  Result<uint64_t> removed = b->RemoveStaleTemporaries(cutoff);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1u);
  EXPECT_FALSE(fs::exists(old_tmp));
  EXPECT_TRUE(fs::exists(new_tmp));
  EXPECT_TRUE(fs::exists(Disk() / "data/aa/x")) << "objects are never touched";
}

TEST_F(NfsBackendTest, LargeObjectsRoundTrip) {
  auto b = OpenRepo();
  ASSERT_NE(b, nullptr);
  const Bytes data = RandomBytes(64 << 20, 2);
  const auto t0 = Clock::now();
  ASSERT_TRUE(b->Put("data/0f/big", data).ok());
  const auto t1 = Clock::now();
  Result<Bytes> got = b->Get("data/0f/big");
  const auto t2 = Clock::now();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  auto mbps = [](Clock::duration d) { return 64.0 / std::chrono::duration<double>(d).count(); };
  std::cout << "[info] 64 MiB put " << mbps(t1 - t0) << " MiB/s, get " << mbps(t2 - t1)
            << " MiB/s\n";

  // A range across READ call boundaries, and the very end.
  const uint64_t off = (1 << 20) - 7;
  const uint64_t len = (3 << 20) + 11;
  Result<Bytes> range = b->GetRange("data/0f/big", off, len);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_TRUE(*range == Bytes(data.begin() + off, data.begin() + off + len));
  Result<Bytes> tail = b->GetRange("data/0f/big", data.size() - 5, 5);
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(*tail == Bytes(data.end() - 5, data.end()));
  Result<Bytes> past = b->GetRange("data/0f/big", data.size() - 5, (2 << 20));
  EXPECT_EQ(past.status().code(), Code::kCorruption) << past.status().ToString();

  EXPECT_EQ(fs::file_size(Disk() / "data/0f/big"), data.size());
  EXPECT_TRUE(ReadDiskFile(Disk() / "data/0f/big") == data);
  Result<ObjectInfo> info = b->Stat("data/0f/big");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, data.size());
}

TEST_F(NfsBackendTest, ParallelLargeObjectsUseEveryConnection) {
  NfsBackendOptions o;
  o.connections = 4;
  auto opened = NfsBackend::Open(nfs().Url("repo"), true, o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto* b = static_cast<NfsBackend*>(opened->get());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) {
        const std::string name = "data/p" + std::to_string(t) + "/o" + std::to_string(i);
        const Bytes data = RandomBytes(16 << 20, 100 + t * 10 + i);
        if (!b->Put(name, data).ok()) {
          ++failures;
        }
        Result<Bytes> got = b->Get(name);
        if (!got.ok() || *got != data) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ListAll(b, "data/").size(), 12u);
  EXPECT_EQ(b->MountCount(), 4u) << "every connection carried requests";
}

TEST_F(NfsBackendTest, ListingAVanishedRepositoryFailsInsteadOfLookingEmpty) {
  // Created by Open (the export is mounted, the repository is a directory in it).
  auto b = OpenRepo(Impatient());
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put("index/a", AsBytes("a")).ok());
  fs::remove_all(Disk());
  Status st = b->List("", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_FALSE(st.ok()) << "a vanished repository must not list as empty";

  // Existing before Open (the repository directory itself is mounted).
  ASSERT_TRUE(fs::create_directories(Disk("repo2/index")));
  auto b2 = OpenRepo(Impatient(), "repo2", false);
  ASSERT_NE(b2, nullptr);
  ASSERT_TRUE(b2->Put("index/a", AsBytes("a")).ok());
  fs::remove_all(Disk("repo2"));
  st = b2->List("", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_FALSE(st.ok()) << "a vanished repository must not list as empty";
}

TEST_F(NfsBackendTest, PermissionDeniedNamesTheServerAndExport) {
  ASSERT_TRUE(fs::create_directories(Disk("root-only")));
  ::chmod(Disk("root-only").c_str(), 0755);
  // Talk to the server as "nobody": may read the directory, not write in it.
  Result<std::unique_ptr<Backend>> b =
      NfsBackend::Open(nfs().Url("root-only") + "&uid=65534&gid=65534", false, Impatient());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*b)->Get("config").status().code(), Code::kNotFound);
  const auto t0 = Clock::now();
  Status st = (*b)->Put("config", AsBytes("x"));
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_FALSE(st.IsRetryable());
  EXPECT_LT(Clock::now() - t0, seconds(2)) << "a permanent error is not retried";
  EXPECT_NE(st.message().find("127.0.0.1"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(nfs().export_dir().string()), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("config"), std::string::npos) << st.ToString();
}

TEST_F(NfsBackendTest, KilledServerFailsUnavailableWithinBoundedTime) {
  auto b = OpenRepo(Impatient());
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put("snapshots/s1", AsBytes("snap")).ok());
  nfs().Kill();

  auto check = [&](const Status& st, std::string_view what) {
    EXPECT_EQ(st.code(), Code::kUnavailable) << what << ": " << st.ToString();
    EXPECT_TRUE(st.IsRetryable()) << what;
    EXPECT_NE(st.message().find(b->Describe()), std::string::npos) << st.ToString();
  };
  auto t0 = Clock::now();
  Result<Bytes> got = b->Get("snapshots/s1");
  check(got.status(), "get");
  EXPECT_NE(got.status().message().find("snapshots/s1"), std::string::npos)
      << got.status().ToString();
  EXPECT_LT(Clock::now() - t0, seconds(15));
  std::cout << "[info] get on a killed server: " << got.status().ToString() << "\n";

  t0 = Clock::now();
  check(b->Put("snapshots/s2", AsBytes("x")), "put");
  check(b->List("", [](const ObjectInfo&) { return Status::Ok(); }), "list");
  check(b->Delete("snapshots/s1"), "delete");
  EXPECT_LT(Clock::now() - t0, seconds(45));

  // Opening fails at once too, instead of at the first operation.
  t0 = Clock::now();
  Result<std::unique_ptr<Backend>> reopen = NfsBackend::Open(nfs().Url("repo"), false, Impatient());
  EXPECT_EQ(reopen.status().code(), Code::kUnavailable) << reopen.status().ToString();
  EXPECT_LT(Clock::now() - t0, seconds(15));
}

TEST_F(NfsBackendTest, RestartedServerIsReconnectedTransparently) {
  auto opened = NfsBackend::Open(nfs().Url("repo"), true, {});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto* b = static_cast<NfsBackend*>(opened->get());
  const Bytes a = RandomBytes(3 << 20, 3);
  ASSERT_TRUE(b->Put("data/aa/a", a).ok());
  const uint64_t mounts = b->MountCount();

  nfs().Kill();
  Status restarted = nfs().Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();

  Result<Bytes> got = b->Get("data/aa/a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == a);
  ASSERT_TRUE(b->Put("data/bb/b", AsBytes("after restart")).ok());
  EXPECT_EQ(ListAll(b, "data/").size(), 2u);
  EXPECT_GT(b->MountCount(), mounts) << "the connection was mounted again";

  // An operation issued while the server is down succeeds once it is back.
  nfs().Kill();
  Status put_during_outage;
  std::thread writer([&] { put_during_outage = b->Put("data/cc/c", a); });
  std::this_thread::sleep_for(milliseconds(1500));
  restarted = nfs().Restart();
  writer.join();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  EXPECT_TRUE(put_during_outage.ok()) << put_during_outage.ToString();
  got = b->Get("data/cc/c");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == a);
  EXPECT_TRUE(ReadDiskFile(Disk() / "data/cc/c") == a);
}

TEST_F(NfsBackendTest, OperationsInFlightSurviveAServerRestart) {
  auto opened = NfsBackend::Open(nfs().Url("repo"), true, {});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Backend* b = opened->get();
  std::atomic<bool> stop{false};
  std::atomic<int> ops{0};
  std::vector<std::string> errors[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string name = "data/r" + std::to_string(t) + "/o" + std::to_string(i % 5);
        const Bytes data = RandomBytes((2 << 20) + i, 1000 * t + i);
        Status put = b->Put(name, data);
        Result<Bytes> got = b->Get(name);
        if (!put.ok()) {
          errors[t].push_back(put.ToString());
        } else if (!got.ok()) {
          errors[t].push_back(got.status().ToString());
        } else if (*got != data) {
          errors[t].push_back(name + ": read back different bytes");
        }
        ++ops;
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(700));
  nfs().Kill();
  std::this_thread::sleep_for(milliseconds(500));
  Status restarted = nfs().Restart();
  std::this_thread::sleep_for(milliseconds(1500));
  stop = true;
  for (auto& th : threads) {
    th.join();
  }
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  for (int t = 0; t < 4; ++t) {
    EXPECT_TRUE(errors[t].empty()) << "thread " << t << ": " << errors[t].front();
  }
  EXPECT_GT(ops.load(), 8);
  // A CREATE whose reply was lost in the crash leaves a hidden temporary file.
  std::cout << "[info] " << ops.load() << " put+get pairs, " << TempFilesUnder(Disk()).size()
            << " temporary files left behind\n";
  EXPECT_EQ(ListAll(b, "data/").size(), 20u);
}

TEST_F(NfsBackendTest, HungServerTimesOutInsteadOfHanging) {
  NfsBackendOptions o;
  o.rpc_timeout = seconds(1);
  o.retry_window = seconds(2);
  auto b = OpenRepo(o);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put("index/i", AsBytes("i")).ok());
  ASSERT_EQ(::kill(nfs().pid(), SIGSTOP), 0);
  const auto t0 = Clock::now();
  Result<Bytes> got = b->Get("index/i");
  const auto took = Clock::now() - t0;
  ASSERT_EQ(::kill(nfs().pid(), SIGCONT), 0);
  EXPECT_EQ(got.status().code(), Code::kUnavailable) << got.status().ToString();
  EXPECT_LT(took, seconds(15));
  std::cout << "[info] get on a stopped server: " << got.status().ToString() << "\n";
  // The server answers again: the backend recovers by itself.
  got = b->Get("index/i");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsChars(*got), "i");
}

TEST_F(NfsBackendTest, KillDuringPutLeavesNoPartialObject) {
  NfsBackendOptions o = Impatient();
  o.retry_window = seconds(1);
  auto b = OpenRepo(o);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put("data/bb/other", AsBytes("other")).ok());
  const Bytes data = RandomBytes(64 << 20, 4);

  Status put;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    put = b->Put("data/bb/big", data);
    done = true;
  });
  // Kill the server as soon as the temporary file has data in it.
  const auto deadline = Clock::now() + seconds(30);
  bool killed = false;
  while (!done && Clock::now() < deadline) {
    for (const fs::path& t : TempFilesUnder(Disk("repo/data/bb"))) {
      std::error_code ec;
      if (fs::file_size(t, ec) > 0 && !ec) {
        nfs().Kill();
        killed = true;
        break;
      }
    }
    if (killed) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  writer.join();
  ASSERT_TRUE(killed) << "the Put finished before the server could be killed: " << put.ToString();
  EXPECT_EQ(put.code(), Code::kUnavailable) << put.ToString();
  EXPECT_NE(put.message().find("data/bb/big"), std::string::npos) << put.ToString();

  // Nothing under the final name, on disk or through a restarted server.
  EXPECT_FALSE(fs::exists(Disk() / "data/bb/big"));
  ASSERT_TRUE(nfs().Restart().ok());
  EXPECT_EQ(b->Get("data/bb/big").status().code(), Code::kNotFound);
  EXPECT_EQ(b->Stat("data/bb/big").status().code(), Code::kNotFound);
  auto listed = ListAll(b.get(), "data/");
  EXPECT_EQ(listed.size(), 1u) << "only data/bb/other; temporary files stay hidden";

  // The same Put again completes.
  ASSERT_TRUE(b->Put("data/bb/big", data).ok());
  Result<Bytes> got = b->Get("data/bb/big");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
}

}  // namespace
}  // namespace bunker::backend
