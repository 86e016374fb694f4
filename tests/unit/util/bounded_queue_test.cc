#include "nodeagent/core/util/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace bunker {
namespace {

TEST(BoundedQueueTest, TryPopTakesWhatIsWaitingAndNeverBlocks) {
  BoundedQueue<int> q(2);
  EXPECT_FALSE(q.TryPop().has_value());
  ASSERT_TRUE(q.Push(1));
  ASSERT_TRUE(q.Push(2));
  EXPECT_EQ(q.TryPop(), 1);
  ASSERT_TRUE(q.Push(3));  // TryPop made room
  EXPECT_EQ(q.Pop(), 2);
  q.Close();
  EXPECT_EQ(q.TryPop(), 3);  // what is left drains after Close
  EXPECT_FALSE(q.TryPop().has_value());
  EXPECT_FALSE(q.Pop().has_value());
  EXPECT_FALSE(q.Push(4));
}

// A producer blocked on a full queue is woken by TryPop, and consumers mixing
// Pop and TryPop see every item exactly once.
TEST(BoundedQueueTest, MixedConsumersSeeEveryItemOnce) {
  constexpr int kItems = 20000;
  BoundedQueue<int> q(3);
  std::vector<std::atomic<int>> seen(kItems);
  auto consumer = [&] {
    while (std::optional<int> a = q.Pop()) {
      ++seen[*a];
      if (std::optional<int> b = q.TryPop()) ++seen[*b];
    }
  };
  std::thread c1(consumer), c2(consumer);
  for (int i = 0; i < kItems; ++i) ASSERT_TRUE(q.Push(i));
  q.Close();
  c1.join();
  c2.join();
  for (int i = 0; i < kItems; ++i) ASSERT_EQ(seen[i].load(), 1) << i;
}

}  // namespace
}  // namespace bunker
