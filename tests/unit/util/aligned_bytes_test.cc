#include "nodeagent/core/util/aligned_bytes.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

namespace bunker {
namespace {

bool Aligned(const AlignedBytes& b) {
  return reinterpret_cast<uintptr_t>(b.data()) % AlignedBytes::kAlignment == 0;
}

TEST(AlignedBytesTest, GrowsKeepingContentsAndAlignment) {
  AlignedBytes b;
  EXPECT_TRUE(b.empty());
  std::vector<uint8_t> part(3000);
  std::iota(part.begin(), part.end(), uint8_t{0});
  std::vector<uint8_t> expected;
  for (int i = 0; i < 50; ++i) {  // 150 KB: several reallocations
    b.Append(part);
    expected.insert(expected.end(), part.begin(), part.end());
    ASSERT_TRUE(Aligned(b));
  }
  ASSERT_EQ(b.size(), expected.size());
  EXPECT_GE(b.capacity(), b.size());
  EXPECT_EQ(b.capacity() % AlignedBytes::kAlignment, 0u);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), b.span().begin()));
}

TEST(AlignedBytesTest, ClearKeepsStorageForReuse) {
  AlignedBytes b(1 << 20);
  const uint8_t* storage = b.data();
  const size_t cap = b.capacity();
  std::vector<uint8_t> data(1 << 19, 7);
  b.Append(data);
  b.clear();
  EXPECT_EQ(b.size(), 0u);
  b.Append(data);
  EXPECT_EQ(b.data(), storage);
  EXPECT_EQ(b.capacity(), cap);
}

TEST(AlignedBytesTest, MoveTransfersOwnership) {
  AlignedBytes a(4096);
  std::vector<uint8_t> data(100, 9);
  a.Append(data);
  const uint8_t* storage = a.data();
  AlignedBytes b(std::move(a));
  EXPECT_EQ(b.data(), storage);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.size(), 0u);       // NOLINT(bugprone-use-after-move)
  AlignedBytes c;
  c = std::move(b);
  EXPECT_EQ(c.data(), storage);
  EXPECT_EQ(c.size(), 100u);
}

}  // namespace
}  // namespace bunker
