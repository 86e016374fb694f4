#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "nodeagent/core/io/block_io.h"
#include "nodeagent/core/io/engine.h"
#include "nodeagent/core/io/fault_injection.h"
#include "tests/unit/io/io_test_util.h"

namespace bunker::io {
namespace {

using internal::FaultOp;
using test::AllocatedBytes;
using test::LogCapture;
using test::MakeContent;
using test::ReadFile;
using test::ScopedEnv;
using test::ScopedFaultHook;
using test::TempDir;
using test::WriteFile;

constexpr uint64_t kChunk = 1 << 20;

class BlockWriterTest : public ::testing::Test {
 protected:
  void SetUp() override { internal::ResetFallbackWarningsForTest(); }

  ScopedEnv engine_env_{"BUNKER_IO_ENGINE", std::nullopt};
  ScopedEnv eperm_env_{"BUNKER_IO_URING_SIMULATE_EPERM", std::nullopt};
  TempDir dir_;
};

class BlockWriterEngineTest : public BlockWriterTest, public ::testing::WithParamInterface<Engine> {
 protected:
  WriteOptions Options(uint32_t depth = 16) const {
    WriteOptions o;
    o.engine = GetParam();
    o.queue_depth = depth;
    return o;
  }
};

// Writes chunks 0, 2, 4, ... of `volume` and zeroes the others, as a restore
// of a volume whose odd chunks are holes does. Returns the expected image.
Bytes WriteEveryOtherChunk(BlockWriter* w, uint64_t size, uint64_t seed) {
  Bytes expected(size, 0);
  for (uint64_t off = 0, i = 0; off < size; off += kChunk, ++i) {
    uint64_t len = std::min(kChunk, size - off);
    if (i % 2 == 0) {
      Bytes data = MakeContent(len, seed + i);
      std::copy(data.begin(), data.end(), expected.begin() + static_cast<ptrdiff_t>(off));
      Status st = w->WriteAt(off, std::move(data));
      EXPECT_TRUE(st.ok()) << st.ToString();
    } else {
      Status st = w->Zero(off, len);
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
  }
  return expected;
}

TEST_P(BlockWriterEngineTest, RoundTripWithHolesIsSparse) {
  const uint64_t size = 16 * kChunk + 12345;
  std::string path = dir_.File("restore.img");
  auto w = BlockWriter::Open(path, size, /*overwrite=*/false, Options());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->engine(), GetParam());
  EXPECT_FALSE((*w)->is_block_device());
  Bytes expected = WriteEveryOtherChunk(w->get(), size, 100);
  Status st = (*w)->Finish();
  ASSERT_TRUE(st.ok()) << st.ToString();

  EXPECT_EQ(std::filesystem::file_size(path), size);
  EXPECT_TRUE(ReadFile(path) == expected) << "content differs";
  // 9 chunks written (the last one short), 8 left as holes.
  uint64_t allocated = AllocatedBytes(path);
  EXPECT_LE(allocated, 9 * kChunk + kChunk / 2) << "holes were written";
  EXPECT_GE(allocated, 8 * kChunk);
  struct stat st_file {};
  ASSERT_EQ(::stat(path.c_str(), &st_file), 0);
  EXPECT_EQ(st_file.st_mode & 0777, 0600u);
}

TEST_P(BlockWriterEngineTest, SmallQueueBlocksUntilWritesComplete) {
  // Queue depth 2 and 64 writes: WriteAt must wait for completions.
  const uint64_t size = 64 * 65536;
  std::string path = dir_.File("small-queue");
  auto w = BlockWriter::Open(path, size, false, Options(/*depth=*/2));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Bytes expected = MakeContent(size, 7);
  // Out of order, as parallel restore workers deliver.
  for (uint64_t i = 0; i < 64; ++i) {
    uint64_t chunk = (i * 37) % 64;
    Bytes part(expected.begin() + static_cast<ptrdiff_t>(chunk * 65536),
               expected.begin() + static_cast<ptrdiff_t>((chunk + 1) * 65536));
    ASSERT_TRUE((*w)->WriteAt(chunk * 65536, std::move(part)).ok());
  }
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_TRUE(ReadFile(path) == expected);
}

TEST_P(BlockWriterEngineTest, ShortWritesAreResubmitted) {
  std::mutex mu;
  std::set<uint64_t> seen;  // guarded by mu
  ScopedFaultHook hook([&](FaultOp op, uint64_t offset, int64_t res) -> int64_t {
    std::lock_guard lock(mu);
    if (op != FaultOp::kWrite || res <= 1 || !seen.insert(offset).second) {
      return res;
    }
    // The kernel wrote it all; claiming half makes the writer write the
    // second half again, which is harmless and what a real short write needs.
    return res / 2;
  });
  const uint64_t size = 4 * kChunk + 100;
  std::string path = dir_.File("short");
  auto w = BlockWriter::Open(path, size, false, Options());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Bytes expected = MakeContent(size, 8);
  for (uint64_t off = 0; off < size; off += kChunk) {
    Bytes part(expected.begin() + static_cast<ptrdiff_t>(off),
               expected.begin() + static_cast<ptrdiff_t>(std::min(size, off + kChunk)));
    ASSERT_TRUE((*w)->WriteAt(off, std::move(part)).ok());
  }
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_TRUE(ReadFile(path) == expected);
  std::lock_guard lock(mu);
  EXPECT_GT(seen.size(), 5u * 2);
}

TEST_P(BlockWriterEngineTest, EagainIsRetriedAndIoErrorSurfacesWithPathAndOffset) {
  const uint64_t bad = 3 * kChunk;
  std::mutex mu;
  std::set<uint64_t> again;  // guarded by mu
  ScopedFaultHook hook([&](FaultOp op, uint64_t offset, int64_t res) -> int64_t {
    if (op != FaultOp::kWrite) {
      return res;
    }
    if (offset == bad) {
      return -EIO;
    }
    std::lock_guard lock(mu);
    return again.insert(offset).second ? -EAGAIN : res;
  });
  const uint64_t size = 8 * kChunk;
  std::string path = dir_.File("eio");
  auto w = BlockWriter::Open(path, size, false, Options());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Status first_failure;
  for (uint64_t off = 0; off < size; off += kChunk) {
    Status st = (*w)->WriteAt(off, MakeContent(kChunk, off));
    if (!st.ok() && first_failure.ok()) {
      first_failure = st;
    }
  }
  Status fin = (*w)->Finish();
  ASSERT_EQ(fin.code(), Code::kIOError) << fin.ToString();
  EXPECT_NE(fin.message().find(path), std::string::npos) << fin.message();
  EXPECT_NE(fin.message().find("offset " + std::to_string(bad)), std::string::npos)
      << fin.message();
  if (!first_failure.ok()) {
    EXPECT_EQ(first_failure.message(), fin.message()) << "one error, reported the same way";
  }
}

TEST_P(BlockWriterEngineTest, OverwriteTruncatesToHoles) {
  std::string path = dir_.File("existing.img");
  Bytes garbage(6 * kChunk, 0xAA);
  WriteFile(path, garbage);
  const uint64_t size = 4 * kChunk;
  auto w = BlockWriter::Open(path, size, /*overwrite=*/true, Options());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Bytes expected = WriteEveryOtherChunk(w->get(), size, 200);
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_EQ(std::filesystem::file_size(path), size);
  EXPECT_TRUE(ReadFile(path) == expected) << "old data survived in a zeroed range";
  EXPECT_LE(AllocatedBytes(path), 2 * kChunk + kChunk / 2);
}

// Direct mode: pool buffers at aligned offsets go O_DIRECT; an unaligned
// Bytes write and the volume's short last chunk take the buffered detour;
// holes stay holes. The result is the same image as buffered writing gives,
// on the temp directory's file system and on /dev/shm (tmpfs: O_DIRECT
// accepted on recent kernels, refused on older ones, both must work).
TEST_P(BlockWriterEngineTest, DirectWritesMixWithUnalignedOnesAndStaySparse) {
  std::vector<std::string> paths = {dir_.File("direct.img")};
  char shm[] = "/dev/shm/bunker-direct-test.XXXXXX";
  const bool have_shm = ::mkdtemp(shm) != nullptr;
  if (have_shm) paths.push_back(std::string(shm) + "/direct.img");
  for (const std::string& path : paths) {
    const uint64_t size = 8 * kChunk + 12345;
    WriteOptions o = Options();
    o.direct = true;
    auto w = BlockWriter::Open(path, size, /*overwrite=*/false, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    BufferPool pool(kChunk, 4);
    Bytes expected(size, 0);
    for (uint64_t off = 0, i = 0; off < size; off += kChunk, ++i) {
      const uint64_t len = std::min(kChunk, size - off);
      Bytes data = MakeContent(len, 500 + i);
      std::copy(data.begin(), data.end(), expected.begin() + static_cast<ptrdiff_t>(off));
      if (i == 3) continue;  // a hole
      Status st;
      if (i == 5) {
        st = (*w)->WriteAt(off, std::move(data));  // unaligned vector storage, likely
      } else {
        Buffer b = pool.Acquire();
        std::memcpy(b.data(), data.data(), len);
        b.set_size(len);
        st = (*w)->WriteAt(off, std::move(b));
      }
      ASSERT_TRUE(st.ok()) << path << ": " << st.ToString();
    }
    std::fill(expected.begin() + 3 * kChunk, expected.begin() + 4 * kChunk, 0);
    Status st = (*w)->Finish();
    ASSERT_TRUE(st.ok()) << path << ": " << st.ToString();
    EXPECT_TRUE(ReadFile(path) == expected) << path << ": content differs";
    EXPECT_LE(AllocatedBytes(path), 8 * kChunk + kChunk / 2) << path << ": the hole was written";
  }
  if (have_shm) std::filesystem::remove_all(shm);
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockWriterEngineTest,
                         ::testing::Values(Engine::kIoUring, Engine::kPread),
                         [](const ::testing::TestParamInfo<Engine>& info) {
                           return info.param == Engine::kIoUring ? "IoUring" : "Pread";
                         });

TEST_F(BlockWriterTest, RefusesExistingFileWithoutOverwrite) {
  std::string path = dir_.File("existing");
  Bytes old = MakeContent(1000, 1);
  WriteFile(path, old);
  auto w = BlockWriter::Open(path, 4096, /*overwrite=*/false, WriteOptions{});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kAlreadyExists) << w.status().ToString();
  EXPECT_NE(w.status().message().find(path), std::string::npos);
  EXPECT_TRUE(ReadFile(path) == old) << "refused target was modified";
}

TEST_F(BlockWriterTest, RefusedIoUringFallsBackToPwriteAndLogsOnce) {
  ScopedEnv eperm("BUNKER_IO_URING_SIMULATE_EPERM", "1");
  LogCapture log;
  for (int i = 0; i < 2; ++i) {
    std::string path = dir_.File("fallback-" + std::to_string(i));
    const uint64_t size = 6 * kChunk + 1;
    auto w = BlockWriter::Open(path, size, false, WriteOptions{});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->engine(), Engine::kPread);
    Bytes expected = WriteEveryOtherChunk(w->get(), size, 300);
    ASSERT_TRUE((*w)->Finish().ok());
    EXPECT_TRUE(ReadFile(path) == expected);
  }
  EXPECT_EQ(log.Count("io_uring unavailable (Operation not permitted); writing with a pwrite "
                      "thread pool"),
            1)
      << log.text();
}

TEST_F(BlockWriterTest, BadEngineEnvironmentLeavesNoFile) {
  ScopedEnv env("BUNKER_IO_ENGINE", "fast");
  std::string path = dir_.File("never");
  auto w = BlockWriter::Open(path, 4096, false, WriteOptions{});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(BlockWriterTest, TargetsThatAreNotVolumes) {
  auto dir = BlockWriter::Open(dir_.path().string(), 4096, true, WriteOptions{});
  EXPECT_EQ(dir.status().code(), Code::kInvalidArgument) << dir.status().ToString();
  auto null = BlockWriter::Open("/dev/null", 4096, true, WriteOptions{});
  EXPECT_EQ(null.status().code(), Code::kInvalidArgument) << null.status().ToString();
  std::string fifo = dir_.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = BlockWriter::Open(fifo, 4096, true, WriteOptions{});
  EXPECT_EQ(f.status().code(), Code::kInvalidArgument) << f.status().ToString();
  auto missing_dir = BlockWriter::Open(dir_.File("no/such/dir"), 4096, false, WriteOptions{});
  EXPECT_EQ(missing_dir.status().code(), Code::kNotFound) << missing_dir.status().ToString();
}

TEST_F(BlockWriterTest, RangeAndLifecycleErrors) {
  std::string path = dir_.File("range");
  auto w = BlockWriter::Open(path, 8192, false, WriteOptions{});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->WriteAt(4096, Bytes(4097, 1)).code(), Code::kInvalidArgument);
  EXPECT_EQ((*w)->WriteAt(UINT64_MAX, Bytes(1, 1)).code(), Code::kInvalidArgument);
  EXPECT_EQ((*w)->Zero(8192, 1).code(), Code::kInvalidArgument);
  EXPECT_TRUE((*w)->WriteAt(4096, Bytes(4096, 1)).ok());
  EXPECT_TRUE((*w)->WriteAt(0, Bytes()).ok());
  EXPECT_TRUE((*w)->Finish().ok());
  EXPECT_EQ((*w)->Finish().code(), Code::kFailedPrecondition);
  EXPECT_EQ((*w)->WriteAt(0, Bytes(1, 1)).code(), Code::kFailedPrecondition);
}

TEST_F(BlockWriterTest, ZeroSizedVolume) {
  std::string path = dir_.File("empty");
  auto w = BlockWriter::Open(path, 0, false, WriteOptions{});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
}

TEST_F(BlockWriterTest, DestroyedWithoutFinishWaitsForWrites) {
  for (Engine e : {Engine::kIoUring, Engine::kPread}) {
    std::string path = dir_.File(std::string("abandoned-") + std::string(EngineName(e)));
    WriteOptions o;
    o.engine = e;
    auto w = BlockWriter::Open(path, 32 * kChunk, false, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (uint64_t i = 0; i < 32; ++i) {
      ASSERT_TRUE((*w)->WriteAt(i * kChunk, MakeContent(kChunk, i)).ok());
    }
    w->reset();  // must not crash or leave the kernel reading freed buffers
  }
}

TEST_F(BlockWriterTest, RestoresOntoABlockDevice) {
  // Backing file full of 0xAA: whatever the restore zeroes must read as
  // zeros afterwards (BLKZEROOUT, or written zeros for unaligned ranges).
  const uint64_t device_size = 8 * kChunk;
  std::string backing = dir_.File("disk.img");
  WriteFile(backing, Bytes(device_size, 0xAA));
  std::string why;
  auto loop = test::LoopDevice::Attach(backing, &why);
  if (!loop) {
    GTEST_SKIP() << why;
  }
  for (Engine e : {Engine::kIoUring, Engine::kPread}) {
    SCOPED_TRACE(EngineName(e));
    WriteFile(backing, Bytes(device_size, 0xAA));
    // Drop the device's cached pages of the old content (through the loop
    // device the refill above is not visible otherwise).
    ASSERT_EQ(test::RunCommand("blockdev --flushbufs " + loop->device()).first, 0);

    WriteOptions o;
    o.engine = e;
    const uint64_t size = 6 * kChunk + 4096;  // smaller than the device: allowed
    auto w = BlockWriter::Open(loop->device(), size, /*overwrite=*/false, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE((*w)->is_block_device());
    EXPECT_EQ((*w)->engine(), e);
    // Even chunks written, odd chunks zeroed: chunk 1 in two unaligned
    // pieces (zeros are written), the others whole (BLKZEROOUT). Ranges never
    // overlap, as the contract asks.
    Bytes expected(size, 0);
    for (uint64_t off = 0, i = 0; off < size; off += kChunk, ++i) {
      uint64_t len = std::min(kChunk, size - off);
      if (i % 2 == 0) {
        Bytes data = MakeContent(len, 400 + i);
        std::copy(data.begin(), data.end(), expected.begin() + static_cast<ptrdiff_t>(off));
        ASSERT_TRUE((*w)->WriteAt(off, std::move(data)).ok());
      } else if (i == 1) {
        ASSERT_TRUE((*w)->Zero(off, 1000).ok());
        ASSERT_TRUE((*w)->Zero(off + 1000, len - 1000).ok());
      } else {
        ASSERT_TRUE((*w)->Zero(off, len).ok());
      }
    }
    Status st = (*w)->Finish();
    ASSERT_TRUE(st.ok()) << st.ToString();

    Bytes image = ReadFile(backing);
    ASSERT_EQ(image.size(), device_size);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), image.begin())) << "content differs";
    EXPECT_TRUE(std::all_of(image.begin() + static_cast<ptrdiff_t>(size), image.end(),
                            [](uint8_t b) { return b == 0xAA; }))
        << "wrote past the volume";
  }
  auto too_big = BlockWriter::Open(loop->device(), device_size + 512, false, WriteOptions{});
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), Code::kInvalidArgument) << too_big.status().ToString();
  EXPECT_NE(too_big.status().message().find("smaller than the volume"), std::string::npos);
}

}  // namespace
}  // namespace bunker::io
