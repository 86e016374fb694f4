#include "nodeagent/core/util/buffer_pool.h"

#include <cstdint>
#include <thread>

#include <gtest/gtest.h>

namespace bunker {
namespace {

TEST(BufferPoolTest, BuffersAreAlignedAndBounded) {
  BufferPool pool(5000, 2);
  EXPECT_EQ(pool.buffer_size(), 8192u);
  Buffer a = pool.Acquire();
  Buffer b = pool.Acquire();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % BufferPool::kAlignment, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % BufferPool::kAlignment, 0u);
  EXPECT_FALSE(pool.TryAcquire());
  a.Release();
  Buffer c = pool.TryAcquire();
  EXPECT_TRUE(c);
}

TEST(BufferPoolTest, AcquireWaitsForARelease) {
  BufferPool pool(4096, 1);
  Buffer a = pool.Acquire();
  std::thread t([&] { a.Release(); });
  Buffer b = pool.Acquire();  // returns once the thread released `a`
  t.join();
  EXPECT_TRUE(b);
}

TEST(BufferPoolTest, MovedFromHandleDoesNotReturnTwice) {
  BufferPool pool(4096, 1);
  Buffer a = pool.Acquire();
  Buffer b = std::move(a);
  a.Release();  // no-op
  EXPECT_FALSE(pool.TryAcquire());
  b.Release();
  EXPECT_TRUE(pool.TryAcquire());
}

}  // namespace
}  // namespace bunker
