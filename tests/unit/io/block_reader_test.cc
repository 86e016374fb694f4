#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "nodeagent/core/io/block_io.h"
#include "nodeagent/core/io/engine.h"
#include "nodeagent/core/io/fault_injection.h"
#include "nodeagent/core/io/uring.h"
#include "tests/unit/io/io_test_util.h"

namespace bunker::io {
namespace {

using internal::FaultOp;
using test::LogCapture;
using test::MakeContent;
using test::ScopedEnv;
using test::ScopedFaultHook;
using test::TempDir;
using test::WriteFile;

constexpr uint32_t kChunk = 1 << 20;
constexpr uint32_t kDepth = 16;

struct ReadAll {
  Status status;
  Bytes data;
  std::vector<uint64_t> offsets;
  std::vector<size_t> sizes;
};

// Reads the whole volume, checking nothing; the caller compares.
ReadAll Drain(BlockReader* reader) {
  ReadAll r;
  for (;;) {
    Result<std::optional<Block>> next = reader->Next();
    if (!next.ok()) {
      r.status = next.status();
      return r;
    }
    if (!next->has_value()) {
      return r;
    }
    const Block& b = **next;
    r.offsets.push_back(b.offset);
    r.sizes.push_back(b.data.size());
    r.data.insert(r.data.end(), b.data.data(), b.data.data() + b.data.size());
  }
}

// Expects blocks at 0, chunk, 2*chunk, ... covering `size` bytes.
void ExpectChunkLayout(const ReadAll& r, uint64_t size, uint32_t chunk) {
  uint64_t expected_blocks = (size + chunk - 1) / chunk;
  ASSERT_EQ(r.offsets.size(), expected_blocks);
  for (uint64_t i = 0; i < expected_blocks; ++i) {
    EXPECT_EQ(r.offsets[i], i * chunk) << "block " << i;
    EXPECT_EQ(r.sizes[i], std::min<uint64_t>(chunk, size - i * chunk)) << "block " << i;
  }
}

// What the kernel says about O_DIRECT on `path`.
bool KernelAcceptsDirect(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  ::close(fd);
  return true;
}

class BlockReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { internal::ResetFallbackWarningsForTest(); }

  // Unset whatever the developer's shell has, so options decide.
  ScopedEnv engine_env_{"BUNKER_IO_ENGINE", std::nullopt};
  ScopedEnv eperm_env_{"BUNKER_IO_URING_SIMULATE_EPERM", std::nullopt};
  TempDir dir_;
  BufferPool pool_{kChunk, kDepth};
};

// Parameterised by engine, O_DIRECT and (io_uring) fixed buffers.
class BlockReaderEngineTest : public BlockReaderTest,
                              public ::testing::WithParamInterface<std::tuple<Engine, bool, bool>> {
 protected:
  ReadOptions Options() const {
    ReadOptions o;
    o.chunk_size = kChunk;
    o.queue_depth = kDepth;
    o.engine = std::get<0>(GetParam());
    o.direct = std::get<1>(GetParam());
    o.fixed_buffers = std::get<2>(GetParam());
    return o;
  }
};

TEST_P(BlockReaderEngineTest, ReadsEverySizeByteForByteInOffsetOrder) {
  const std::vector<uint64_t> sizes = {0, 1, 4095, 4096, kChunk - 1, kChunk, 3ULL * kChunk + 12345};
  for (uint64_t size : sizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    std::string path = dir_.File("vol-" + std::to_string(size));
    Bytes content = MakeContent(size, size + 7);
    WriteFile(path, content);

    auto reader = BlockReader::Open(path, Options(), &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->engine(), std::get<0>(GetParam()));
    EXPECT_EQ((*reader)->size(), size);
    // The temp dir is on a disk file system (ext4 here), which takes O_DIRECT.
    EXPECT_EQ((*reader)->direct(), std::get<1>(GetParam()) && KernelAcceptsDirect(path));
    ReadAll r = Drain(reader->get());
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ExpectChunkLayout(r, size, kChunk);
    EXPECT_TRUE(r.data == content) << "content differs";
    // The end stays the end.
    auto again = (*reader)->Next();
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->has_value());
  }
}

// Many small chunks with 64 in flight: completions come back out of order
// (io_uring worker threads, pread pool threads); delivery must not. Also with
// io_uring's kernel workers capped at one (block backups cap them at their
// worker count), which queues the punted reads behind each other; the pread
// engine ignores the option.
TEST_P(BlockReaderEngineTest, SmallChunksDeepQueueOutOfOrderCompletions) {
  for (uint32_t kernel_workers : {0u, 1u}) {
    SCOPED_TRACE("kernel workers " + std::to_string(kernel_workers));
    ReadOptions o = Options();
    o.chunk_size = 4096;
    o.queue_depth = 64;
    o.kernel_workers = kernel_workers;
    BufferPool pool(4096, 64);
    std::string path = dir_.File("small-chunks-" + std::to_string(kernel_workers));
    Bytes content = MakeContent(1000 * 4096 + 100, 3 + kernel_workers);
    WriteFile(path, content);
    auto reader = BlockReader::Open(path, o, &pool);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    ReadAll r = Drain(reader->get());
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ExpectChunkLayout(r, content.size(), 4096);
    EXPECT_TRUE(r.data == content);
  }
}

TEST_P(BlockReaderEngineTest, ShortReadsAreResubmitted) {
  // The first read at every offset reports half of what it got: the reader
  // must ask again for the rest (for O_DIRECT, from the aligned offset below,
  // which re-reads a little).
  std::mutex mu;
  std::set<uint64_t> seen;  // guarded by mu
  int shortened = 0;        // guarded by mu
  ScopedFaultHook hook([&](FaultOp op, uint64_t offset, int64_t res) -> int64_t {
    std::lock_guard lock(mu);
    if (op != FaultOp::kRead || res <= 1 || !seen.insert(offset).second) {
      return res;
    }
    ++shortened;
    return res / 2;
  });
  std::string path = dir_.File("short");
  Bytes content = MakeContent(2ULL * kChunk + 12345, 11);
  WriteFile(path, content);
  auto reader = BlockReader::Open(path, Options(), &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ReadAll r = Drain(reader->get());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ExpectChunkLayout(r, content.size(), kChunk);
  EXPECT_TRUE(r.data == content);
  std::lock_guard lock(mu);
  EXPECT_GT(shortened, 3 * 3) << "expected several reads per chunk";
  EXPECT_EQ((*reader)->direct(), std::get<1>(GetParam())) << "short reads are not a refusal";
}

TEST_P(BlockReaderEngineTest, EagainAndEintrAreRetried) {
  std::mutex mu;
  std::map<uint64_t, int> seen;  // guarded by mu
  ScopedFaultHook hook([&](FaultOp op, uint64_t offset, int64_t res) -> int64_t {
    if (op != FaultOp::kRead) {
      return res;
    }
    std::lock_guard lock(mu);
    int n = seen[offset]++;
    if (n == 0) return -EAGAIN;
    if (n == 1) return -EINTR;
    return res;
  });
  std::string path = dir_.File("retry");
  Bytes content = MakeContent(3ULL * kChunk + 5, 12);
  WriteFile(path, content);
  auto reader = BlockReader::Open(path, Options(), &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ReadAll r = Drain(reader->get());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.data == content);
}

TEST_P(BlockReaderEngineTest, IoErrorMidReadNamesPathAndOffsetAfterEarlierBlocks) {
  const uint64_t bad = 2ULL * kChunk;
  ScopedFaultHook hook([&](FaultOp op, uint64_t offset, int64_t res) -> int64_t {
    return op == FaultOp::kRead && offset == bad ? -EIO : res;
  });
  std::string path = dir_.File("eio");
  Bytes content = MakeContent(5ULL * kChunk, 13);
  WriteFile(path, content);
  auto reader = BlockReader::Open(path, Options(), &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ReadAll r = Drain(reader->get());
  EXPECT_EQ(r.offsets, (std::vector<uint64_t>{0, kChunk}));
  ASSERT_EQ(r.status.code(), Code::kIOError) << r.status.ToString();
  EXPECT_NE(r.status.message().find(path), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("offset " + std::to_string(bad)), std::string::npos)
      << r.status.message();
  EXPECT_NE(r.status.message().find(std::strerror(EIO)), std::string::npos) << r.status.message();
  // Sticky.
  auto again = (*reader)->Next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), r.status.message());
}

TEST_P(BlockReaderEngineTest, FileShrinkingUnderTheReaderIsAnIoError) {
  std::string path = dir_.File("shrinks");
  WriteFile(path, MakeContent(4ULL * kChunk, 14));
  ReadOptions o = Options();
  o.queue_depth = 1;  // nothing read ahead before the truncate
  auto reader = BlockReader::Open(path, o, &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto first = (*reader)->Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  ASSERT_EQ(::truncate(path.c_str(), kChunk), 0);
  ReadAll r = Drain(reader->get());
  ASSERT_EQ(r.status.code(), Code::kIOError) << r.status.ToString();
  EXPECT_NE(r.status.message().find("unexpected end of file"), std::string::npos)
      << r.status.message();
}

TEST_P(BlockReaderEngineTest, PoolOfExactlyQueueDepthBuffersNeverDeadlocks) {
  // The consumer keeps the previous block while asking for the next, as a
  // pipeline stage does; the pool has exactly queue_depth buffers.
  BufferPool pool(kChunk, kDepth);
  std::string path = dir_.File("bounded");
  Bytes content = MakeContent(40ULL * kChunk + 99, 15);
  WriteFile(path, content);
  auto reader = BlockReader::Open(path, Options(), &pool);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();

  auto run = std::async(std::launch::async, [&]() -> ReadAll {
    ReadAll r;
    std::optional<Block> held;
    for (;;) {
      auto next = (*reader)->Next();
      if (!next.ok()) {
        r.status = next.status();
        return r;
      }
      if (!next->has_value()) {
        return r;
      }
      Block& b = **next;
      r.offsets.push_back(b.offset);
      r.data.insert(r.data.end(), b.data.data(), b.data.data() + b.data.size());
      held = std::move(*next);  // releases the one held before
    }
  });
  if (run.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::cerr << "reader deadlocked with a pool of queue_depth buffers\n";
    std::abort();  // a hung thread cannot be joined; fail loudly
  }
  ReadAll r = run.get();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.data == content);
}

TEST_P(BlockReaderEngineTest, HoldsAtMostQueueDepthBuffers) {
  // A pool larger than the queue: count what the reader holds after each
  // Next() (everything not free and not the block we hold). All pool traffic
  // happens on this thread, so the count is exact.
  BufferPool pool(kChunk, kDepth + 4);
  std::string path = dir_.File("held");
  Bytes content = MakeContent(40ULL * kChunk, 16);
  WriteFile(path, content);
  auto reader = BlockReader::Open(path, Options(), &pool);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  size_t max_held = 0;
  Bytes data;
  for (;;) {
    auto next = (*reader)->Next();
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (!next->has_value()) {
      break;
    }
    std::vector<Buffer> free;
    while (Buffer b = pool.TryAcquire()) {
      free.push_back(std::move(b));
    }
    size_t held_by_reader = pool.count() - free.size() - 1;
    max_held = std::max(max_held, held_by_reader);
    EXPECT_LE(held_by_reader, kDepth);
    data.insert(data.end(), (**next).data.data(), (**next).data.data() + (**next).data.size());
  }
  EXPECT_EQ(max_held, kDepth) << "the queue should be kept full";
  EXPECT_TRUE(data == content);
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockReaderEngineTest,
                         ::testing::Values(std::make_tuple(Engine::kIoUring, false, true),
                                           std::make_tuple(Engine::kIoUring, true, true),
                                           std::make_tuple(Engine::kIoUring, false, false),
                                           std::make_tuple(Engine::kIoUring, true, false),
                                           std::make_tuple(Engine::kPread, false, false),
                                           std::make_tuple(Engine::kPread, true, false)),
                         [](const ::testing::TestParamInfo<std::tuple<Engine, bool, bool>>& info) {
                           const bool uring = std::get<0>(info.param) == Engine::kIoUring;
                           return std::string(uring ? "IoUring" : "Pread") +
                                  (std::get<1>(info.param) ? "Direct" : "Buffered") +
                                  (uring && !std::get<2>(info.param) ? "Unregistered" : "");
                         });

// The io_uring rings of this process, as the kernel describes them
// (/proc/self/fdinfo): the "UserBufs:" count of each.
namespace fs = std::filesystem;

std::vector<int> RingUserBufs() {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    fs::path target = fs::read_symlink(e.path(), ec);
    if (ec || target.string() != "anon_inode:[io_uring]") continue;
    std::ifstream info("/proc/self/fdinfo/" + e.path().filename().string());
    std::string line;
    while (std::getline(info, line)) {
      if (line.rfind("UserBufs:", 0) == 0) out.push_back(std::stoi(line.substr(9)));
    }
  }
  return out;
}

// With fixed buffers the reader's ring holds the pool as one registered
// buffer (checked with the kernel's own account of the ring), and without
// them none; the bytes read are the same either way (the engine tests).
TEST_F(BlockReaderTest, FixedBuffersRegisterThePoolWithTheRing) {
  std::string path = dir_.File("vol");
  WriteFile(path, MakeContent(3 * kChunk, 11));
  for (bool fixed : {true, false}) {
    SCOPED_TRACE(fixed ? "fixed" : "unregistered");
    ReadOptions o;
    o.chunk_size = kChunk;
    o.queue_depth = kDepth;
    o.engine = Engine::kIoUring;
    o.fixed_buffers = fixed;
    ASSERT_TRUE(RingUserBufs().empty());
    auto reader = BlockReader::Open(path, o, &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    const std::vector<int> bufs = RingUserBufs();
    ASSERT_EQ(bufs.size(), 1u) << "one ring";
    if (fixed && ::geteuid() != 0) {
      // Unprivileged: RLIMIT_MEMLOCK decides, and a refusal only means
      // unregistered reads.
      EXPECT_LE(bufs[0], 1);
    } else {
      EXPECT_EQ(bufs[0], fixed ? 1 : 0);
    }
    ReadAll r = Drain(reader->get());
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_TRUE(r.data == MakeContent(3 * kChunk, 11));
  }
}

// O_DIRECT refused at the first read (as some FUSE and network file systems
// do) switches the reader to the page cache and loses nothing.
class BlockReaderDirectEinvalTest : public BlockReaderTest,
                                    public ::testing::WithParamInterface<Engine> {};

TEST_P(BlockReaderDirectEinvalTest, FirstReadEinvalFallsBackToBuffered) {
  std::atomic<int> calls{0};
  ScopedFaultHook hook([&](FaultOp op, uint64_t, int64_t res) -> int64_t {
    if (op == FaultOp::kRead && calls++ == 0) {
      return -EINVAL;
    }
    return res;
  });
  std::string path = dir_.File("einval");
  Bytes content = MakeContent(3ULL * kChunk + 777, 17);
  WriteFile(path, content);
  ReadOptions o;
  o.engine = GetParam();
  o.direct = true;
  LogCapture log;
  auto reader = BlockReader::Open(path, o, &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->direct());
  ReadAll r = Drain(reader->get());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.data == content);
  EXPECT_FALSE((*reader)->direct());
  EXPECT_EQ(log.Count("reading through the page cache"), 1) << log.text();
}

TEST_P(BlockReaderDirectEinvalTest, EinvalOnOpenWithDirectReopensBuffered) {
  ScopedFaultHook hook([](FaultOp op, uint64_t, int64_t res) -> int64_t {
    return op == FaultOp::kOpenDirect ? -EINVAL : res;
  });
  std::string path = dir_.File("einval-open");
  Bytes content = MakeContent(kChunk + 1, 18);
  WriteFile(path, content);
  ReadOptions o;
  o.engine = GetParam();
  auto reader = BlockReader::Open(path, o, &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_FALSE((*reader)->direct());
  ReadAll r = Drain(reader->get());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.data == content);
}

TEST_P(BlockReaderDirectEinvalTest, EinvalWhenBufferedIsAnError) {
  ScopedFaultHook hook([](FaultOp op, uint64_t, int64_t res) -> int64_t {
    return op == FaultOp::kRead ? -EINVAL : res;
  });
  std::string path = dir_.File("einval-always");
  WriteFile(path, MakeContent(kChunk, 19));
  ReadOptions o;
  o.engine = GetParam();
  auto reader = BlockReader::Open(path, o, &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ReadAll r = Drain(reader->get());
  EXPECT_EQ(r.status.code(), Code::kIOError) << r.status.ToString();
  EXPECT_NE(r.status.message().find("offset 0"), std::string::npos) << r.status.message();
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockReaderDirectEinvalTest,
                         ::testing::Values(Engine::kIoUring, Engine::kPread),
                         [](const ::testing::TestParamInfo<Engine>& info) {
                           return info.param == Engine::kIoUring ? "IoUring" : "Pread";
                         });

TEST_F(BlockReaderTest, KernelWorkerLimitIsAcceptedByThisKernel) {
  Result<std::unique_ptr<internal::Uring>> ring = internal::Uring::Create(8);
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  // IORING_REGISTER_IOWQ_MAX_WORKERS exists since Linux 5.15; CI runs newer.
  EXPECT_TRUE((*ring)->LimitKernelWorkers(1));
  EXPECT_TRUE((*ring)->LimitKernelWorkers(2));
}

TEST_F(BlockReaderTest, AutoPrefersIoUring) {
  std::string path = dir_.File("auto");
  WriteFile(path, MakeContent(10, 1));
  auto reader = BlockReader::Open(path, ReadOptions{}, &pool_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->engine(), Engine::kIoUring) << "io_uring is available on this machine";
}

TEST_F(BlockReaderTest, RefusedIoUringFallsBackToPreadAndLogsOnce) {
  ScopedEnv eperm("BUNKER_IO_URING_SIMULATE_EPERM", "1");
  std::string path = dir_.File("fallback");
  Bytes content = MakeContent(2ULL * kChunk + 3, 2);
  WriteFile(path, content);
  LogCapture log;
  for (int i = 0; i < 3; ++i) {
    auto reader = BlockReader::Open(path, ReadOptions{}, &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->engine(), Engine::kPread);
    ReadAll r = Drain(reader->get());
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_TRUE(r.data == content);
  }
  EXPECT_EQ(log.Count("io_uring unavailable (Operation not permitted); reading with a pread "
                      "thread pool"),
            1)
      << log.text();
  EXPECT_EQ(log.Count("warning"), 1) << log.text();
}

TEST_F(BlockReaderTest, ExplicitIoUringThatIsRefusedIsAnError) {
  ScopedEnv eperm("BUNKER_IO_URING_SIMULATE_EPERM", "1");
  std::string path = dir_.File("explicit");
  WriteFile(path, MakeContent(10, 1));
  ReadOptions o;
  o.engine = Engine::kIoUring;
  auto reader = BlockReader::Open(path, o, &pool_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kPermissionDenied) << reader.status().ToString();
  EXPECT_NE(reader.status().message().find("io_uring"), std::string::npos);
}

TEST_F(BlockReaderTest, EnvironmentOverridesOptionsEngine) {
  std::string path = dir_.File("env");
  Bytes content = MakeContent(kChunk + 1, 4);
  WriteFile(path, content);
  ReadOptions o;
  o.engine = Engine::kIoUring;
  {
    ScopedEnv env("BUNKER_IO_ENGINE", "pread");
    auto reader = BlockReader::Open(path, o, &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->engine(), Engine::kPread);
    EXPECT_TRUE(Drain(reader->get()).data == content);
  }
  o.engine = Engine::kPread;
  {
    ScopedEnv env("BUNKER_IO_ENGINE", "io_uring");
    auto reader = BlockReader::Open(path, o, &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->engine(), Engine::kIoUring);
  }
  {
    ScopedEnv env("BUNKER_IO_ENGINE", "uring");
    auto reader = BlockReader::Open(path, o, &pool_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), Code::kInvalidArgument);
    EXPECT_NE(reader.status().message().find("BUNKER_IO_ENGINE"), std::string::npos)
        << reader.status().message();
  }
}

TEST_F(BlockReaderTest, ParseEngineAndEngineNameRoundTrip) {
  for (Engine e : {Engine::kAuto, Engine::kIoUring, Engine::kPread}) {
    auto parsed = ParseEngine(EngineName(e));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, e);
  }
  EXPECT_EQ(ParseEngine("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseEngine("IO_URING").status().code(), Code::kInvalidArgument);
}

TEST_F(BlockReaderTest, DirectOnTmpfsReadsCorrectlyWhateverTheKernelSays) {
  // tmpfs refused O_DIRECT before Linux 6.6 and accepts it since; either
  // way the reader must read the right bytes and report what it got.
  if (!std::filesystem::is_directory("/dev/shm")) {
    GTEST_SKIP() << "no /dev/shm";
  }
  TempDir shm("/dev/shm");
  std::string path = shm.File("vol");
  Bytes content = MakeContent(3ULL * kChunk + 12345, 5);
  WriteFile(path, content);
  for (Engine e : {Engine::kIoUring, Engine::kPread}) {
    ReadOptions o;
    o.engine = e;
    o.direct = true;
    auto reader = BlockReader::Open(path, o, &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->direct(), KernelAcceptsDirect(path));
    ReadAll r = Drain(reader->get());
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ExpectChunkLayout(r, content.size(), kChunk);
    EXPECT_TRUE(r.data == content);
  }
  std::cout << "[ INFO ] tmpfs O_DIRECT here: "
            << (KernelAcceptsDirect(path) ? "accepted" : "refused") << "\n";
}

TEST_F(BlockReaderTest, FileSystemRefusingDirectFallsBackAtOpen) {
  // ramfs has no O_DIRECT at all: open(O_DIRECT) fails with EINVAL.
  std::string mnt = dir_.File("ramfs");
  std::filesystem::create_directory(mnt);
  if (::mount("bunker-io-test", mnt.c_str(), "ramfs", 0, nullptr) != 0) {
    GTEST_SKIP() << "cannot mount ramfs: " << std::strerror(errno);
  }
  struct Unmount {
    std::string m;
    ~Unmount() { ::umount2(m.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string path = mnt + "/vol";
  Bytes content = MakeContent(2ULL * kChunk + 4097, 6);
  WriteFile(path, content);
  ASSERT_FALSE(KernelAcceptsDirect(path)) << "ramfs took O_DIRECT";
  for (Engine e : {Engine::kIoUring, Engine::kPread}) {
    ReadOptions o;
    o.engine = e;
    o.direct = true;
    auto reader = BlockReader::Open(path, o, &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_FALSE((*reader)->direct());
    ReadAll r = Drain(reader->get());
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_TRUE(r.data == content);
  }
}

TEST_F(BlockReaderTest, MissingPathIsNotFound) {
  auto reader = BlockReader::Open(dir_.File("nope"), ReadOptions{}, &pool_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kNotFound) << reader.status().ToString();
  EXPECT_NE(reader.status().message().find(dir_.File("nope")), std::string::npos);
}

TEST_F(BlockReaderTest, DirectoryIsInvalidArgument) {
  auto reader = BlockReader::Open(dir_.path().string(), ReadOptions{}, &pool_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kInvalidArgument) << reader.status().ToString();
  EXPECT_NE(reader.status().message().find("is a directory"), std::string::npos)
      << reader.status().message();
}

TEST_F(BlockReaderTest, CharacterDeviceIsInvalidArgument) {
  auto reader = BlockReader::Open("/dev/null", ReadOptions{}, &pool_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kInvalidArgument) << reader.status().ToString();
  EXPECT_NE(reader.status().message().find("character device"), std::string::npos)
      << reader.status().message();
}

TEST_F(BlockReaderTest, FifoIsInvalidArgumentWithoutBlocking) {
  std::string path = dir_.File("fifo");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  // Opening a FIFO for reading blocks until a writer comes; the reader must
  // reject it without opening it.
  auto reader = BlockReader::Open(path, ReadOptions{}, &pool_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kInvalidArgument) << reader.status().ToString();
  EXPECT_NE(reader.status().message().find("FIFO"), std::string::npos);
}

TEST_F(BlockReaderTest, UnreadableFileIsPermissionDenied) {
  std::string path = dir_.File("secret");
  WriteFile(path, MakeContent(100, 8));
  ASSERT_EQ(::chmod(path.c_str(), 0000), 0);
  if (::geteuid() != 0) {
    auto reader = BlockReader::Open(path, ReadOptions{}, &pool_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), Code::kPermissionDenied) << reader.status().ToString();
    return;
  }
  // Root reads any file, so the check runs in a child that drops to nobody.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  EXPECT_EXIT(
      {
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
          _exit(2);
        }
        BufferPool pool(kChunk, 2);
        auto reader = BlockReader::Open(path, ReadOptions{}, &pool);
        if (reader.ok()) {
          _exit(3);
        }
        std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
        _exit(reader.status().code() == Code::kPermissionDenied ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "PermissionDenied: open .*secret: Permission denied");
}

TEST_F(BlockReaderTest, BadOptionsAreInvalidArgument) {
  std::string path = dir_.File("opts");
  WriteFile(path, MakeContent(10, 9));
  ReadOptions o;
  o.chunk_size = 1000;
  EXPECT_EQ(BlockReader::Open(path, o, &pool_).status().code(), Code::kInvalidArgument);
  o = ReadOptions{};
  o.chunk_size = 2 * kChunk;  // larger than the pool's buffers
  EXPECT_EQ(BlockReader::Open(path, o, &pool_).status().code(), Code::kInvalidArgument);
  o = ReadOptions{};
  o.queue_depth = 0;
  EXPECT_EQ(BlockReader::Open(path, o, &pool_).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(BlockReader::Open(path, ReadOptions{}, nullptr).status().code(),
            Code::kInvalidArgument);
}

TEST_F(BlockReaderTest, DestroyingMidVolumeWaitsForReadsInFlight) {
  std::string path = dir_.File("abandon");
  WriteFile(path, MakeContent(20ULL * kChunk, 10));
  for (Engine e : {Engine::kIoUring, Engine::kPread}) {
    ReadOptions o;
    o.engine = e;
    auto reader = BlockReader::Open(path, o, &pool_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    auto first = (*reader)->Next();
    ASSERT_TRUE(first.ok() && first->has_value());
    reader->reset();
  }
  // Every buffer is back in the pool.
  std::vector<Buffer> all;
  while (Buffer b = pool_.TryAcquire()) {
    all.push_back(std::move(b));
  }
  EXPECT_EQ(all.size(), pool_.count());
}

TEST_F(BlockReaderTest, ReadsABlockDevice) {
  // A loop device over a file whose size is a multiple of 512 but not of
  // 4096: the O_DIRECT read of the last block is short at the device's end.
  std::string backing = dir_.File("disk.img");
  Bytes content = MakeContent(3ULL * kChunk + 4096 * 3 + 512, 20);
  WriteFile(backing, content);
  std::string why;
  auto loop = test::LoopDevice::Attach(backing, &why);
  if (!loop) {
    GTEST_SKIP() << why;
  }
  for (Engine e : {Engine::kIoUring, Engine::kPread}) {
    for (bool direct : {true, false}) {
      SCOPED_TRACE(std::string(EngineName(e)) + (direct ? " direct" : " buffered"));
      ReadOptions o;
      o.engine = e;
      o.direct = direct;
      auto reader = BlockReader::Open(loop->device(), o, &pool_);
      ASSERT_TRUE(reader.ok()) << reader.status().ToString();
      EXPECT_EQ((*reader)->size(), content.size());
      EXPECT_EQ((*reader)->direct(), direct);
      ReadAll r = Drain(reader->get());
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      ExpectChunkLayout(r, content.size(), kChunk);
      EXPECT_TRUE(r.data == content);
    }
  }
}

}  // namespace
}  // namespace bunker::io
