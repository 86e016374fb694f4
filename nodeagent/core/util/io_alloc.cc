#include "nodeagent/core/util/io_alloc.h"

#include <sys/mman.h>

#include <cstdlib>
#include <limits>
#include <new>

namespace bunker {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

uint8_t* AllocateIoBuffer(size_t bytes, size_t* allocated) {
  // Overflow-safe: the rounded size and the mapping's alignment slack fit.
  if (bytes > std::numeric_limits<size_t>::max() - 2 * kHugePage) throw std::bad_alloc();
  const size_t pages = bytes == 0 ? kPage : (bytes + kPage - 1) / kPage * kPage;
  if (pages < kHugePage) {  // FreeIoBuffer tells the two kinds apart by this size
    auto* p = static_cast<uint8_t*>(std::aligned_alloc(kPage, pages));
    if (p == nullptr) throw std::bad_alloc();
    *allocated = pages;
    return p;
  }
  const size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Map size + 2 MiB, keep the 2 MiB-aligned middle, unmap the slack.
  void* raw =
      ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (base + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > base) ::munmap(raw, aligned - base);
  const uintptr_t end = base + size + kHugePage;
  if (end > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
  auto* p = reinterpret_cast<uint8_t*>(aligned);
  (void)::madvise(p, size, MADV_HUGEPAGE);  // advice only: EINVAL (no THP) changes nothing
  *allocated = size;
  return p;
}

void FreeIoBuffer(uint8_t* p, size_t allocated) {
  if (p == nullptr) return;
  if (allocated >= kHugePage) {
    ::munmap(p, allocated);
  } else {
    std::free(p);
  }
}

}  // namespace bunker
