#include "nodeagent/core/util/aligned_bytes.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "nodeagent/core/util/io_alloc.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
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

namespace bunker {
namespace {

// Every size class, the boundary around 2 MiB included (a size that rounds
// to exactly 2 MiB in 4 KiB pages must still be freed the way it was
// allocated), growth across the boundary, and sizes that cannot be rounded.
TEST(IoAllocTest, AlignedWritableAndReleasedForEverySize) {
  constexpr size_t kMiB = size_t{1} << 20;
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{4096}, 2 * kMiB - 4097, 2 * kMiB - 1, 2 * kMiB,
                       2 * kMiB + 1, 17 * kMiB + 3}) {
    size_t allocated = 0;
    uint8_t* p = AllocateIoBuffer(bytes, &allocated);
    ASSERT_NE(p, nullptr) << bytes;
    EXPECT_GE(allocated, std::max<size_t>(bytes, 1)) << bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u) << bytes;
    if (allocated >= 2 * kMiB) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (2 * kMiB), 0u) << bytes;
      EXPECT_EQ(allocated % (2 * kMiB), 0u) << bytes;
    }
    std::memset(p, 0x5a, allocated);  // all of it is ours
    FreeIoBuffer(p, allocated);
  }
  AlignedBytes grow;
  std::vector<uint8_t> part(700 * 1024, 7);
  for (int i = 0; i < 6; ++i) grow.Append(part);  // 4 KiB pages, then a mapping
  EXPECT_EQ(grow.size(), 6 * part.size());
  EXPECT_EQ(grow.data()[grow.size() - 1], 7);
  size_t ignored = 0;
  EXPECT_THROW(AllocateIoBuffer(SIZE_MAX - 100, &ignored), std::bad_alloc);
}

// PopulateSmallPages leaves every page of the buffer resident (mincore) and
// zero, with no huge page in it (the mapping's AnonHugePages in smaps).
TEST(IoAllocTest, PopulateSmallPagesFaultsEveryPageIn) {
  constexpr size_t kMiB = size_t{1} << 20;
  size_t allocated = 0;
  uint8_t* p = AllocateIoBuffer(9 * kMiB, &allocated);
  const size_t pages = allocated / 4096;
  std::vector<unsigned char> resident(pages);
  ASSERT_EQ(::mincore(p, allocated, resident.data()), 0);
  ASSERT_LT(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }),
            static_cast<std::ptrdiff_t>(pages));  // fresh: not (all) there yet
  PopulateSmallPages(p, allocated);
  ASSERT_EQ(::mincore(p, allocated, resident.data()), 0);
  EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }),
            static_cast<std::ptrdiff_t>(pages));
  EXPECT_TRUE(std::all_of(p, p + allocated, [](uint8_t b) { return b == 0; }));
  // The smaps entry of the mapping that starts at p.
  std::ifstream smaps("/proc/self/smaps");
  char start[32];
  std::snprintf(start, sizeof start, "%lx-",
                static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p)));
  std::string line;
  bool in_mapping = false, seen = false;
  while (std::getline(smaps, line)) {
    if (line.rfind(start, 0) == 0) {
      in_mapping = seen = true;
    } else if (in_mapping && line.find('-') != std::string::npos &&
               line.find(':') == std::string::npos) {
      break;  // the next mapping's header
    } else if (in_mapping && line.rfind("AnonHugePages:", 0) == 0) {
      EXPECT_NE(line.find(" 0 kB"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(seen) << "no smaps entry starts at " << start;
  FreeIoBuffer(p, allocated);
}

}  // namespace
}  // namespace bunker
