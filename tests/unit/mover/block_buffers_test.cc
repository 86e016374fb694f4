// BlockBackupBuffers: the memory a block backup works in, made while the
// command line derives the repository key.

#include <sys/mman.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "nodeagent/core/mover/block_backup.h"

namespace bunker::mover {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Resident pages of [p, p + bytes) (4 KiB-aligned).
size_t ResidentPages(const uint8_t* p, size_t bytes) {
  std::vector<unsigned char> resident(bytes / 4096);
  if (::mincore(const_cast<uint8_t*>(p), bytes, resident.data()) != 0) return 0;
  return static_cast<size_t>(
      std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }));
}

TEST(BlockBackupBuffersTest, ReadPoolHasItsPagesInAndOnlyServesItsOwnShape) {
  BlockBackupBuffers buffers(/*workers=*/2, /*read_queue_depth=*/16);
  const size_t count = BlockReadPoolBuffers(16, 2);
  EXPECT_EQ(count, 26u);  // 16 in flight, 4 queued, 2 held per worker, 2 handed over
  // Another shape (a repository with another block size, other workers or
  // queue depth) is not served: the backup makes its own pool.
  EXPECT_EQ(buffers.ReadPool(64 << 10, count), nullptr);
  EXPECT_EQ(buffers.ReadPool(kMiB, BlockReadPoolBuffers(16, 3)), nullptr);

  BufferPool* pool = buffers.ReadPool(kMiB, count);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->buffer_size(), kMiB);
  EXPECT_EQ(pool->count(), count);
  std::vector<Buffer> taken;
  for (size_t i = 0; i < count; ++i) {
    Buffer b = pool->TryAcquire();
    ASSERT_TRUE(b) << "buffer " << i;
    // Handed out only once every page is in: the reader's first reads fault
    // nothing.
    EXPECT_EQ(ResidentPages(b.data(), b.capacity()), kMiB / 4096) << "buffer " << i;
    taken.push_back(std::move(b));
  }
  EXPECT_FALSE(pool->TryAcquire());  // exactly `count`
  // The pack buffers come from the same thread, after the read pool: one
  // while the key is derived, the others once the backup takes the first.
  repo::PackBufferMaker* maker = buffers.pack_buffers();
  for (int i = 0; i < 500 && maker->made() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(maker->made(), 1u);
  std::vector<AlignedBytes> packs;
  for (int i = 0; i < 3; ++i) {
    packs.push_back(maker->Take());
    ASSERT_GE(packs.back().capacity(), repo::PackWriterOptions{}.target_size)
        << "pack buffer " << i;
    EXPECT_EQ(ResidentPages(packs.back().data(), packs.back().capacity() / 4096 * 4096),
              packs.back().capacity() / 4096)
        << "pack buffer " << i;
  }
  EXPECT_EQ(maker->made(), 3u);
  EXPECT_EQ(maker->Take().capacity(), 0u);  // the budget: uploaders + 1
}

TEST(BlockBackupBuffersTest, UnusedBuffersStopMakingWhenDestroyed) {
  // A backup that fails before it starts (wrong password) never takes a
  // pack buffer: destruction must not wait for, or make, the rest.
  auto buffers = std::make_unique<BlockBackupBuffers>(2, 16);
  ASSERT_NE(buffers->ReadPool(kMiB, BlockReadPoolBuffers(16, 2)), nullptr);
  buffers.reset();
}

}  // namespace
}  // namespace bunker::mover
