#include "nodeagent/core/util/io_alloc.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <new>
#include <utility>

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

namespace {

// The page-aligned region that covers [p, p + bytes).
std::pair<void*, size_t> PageRegion(uint8_t* p, size_t bytes) {
  const auto start = reinterpret_cast<uintptr_t>(p) / kPage * kPage;
  const size_t span = (reinterpret_cast<uintptr_t>(p) + bytes - start + kPage - 1) / kPage * kPage;
  return {reinterpret_cast<void*>(start), span};
}

}  // namespace

void PopulateSmallPages(uint8_t* p, size_t bytes) {
  if (p == nullptr || bytes == 0) return;
  const auto [region, span] = PageRegion(p, bytes);
  (void)::madvise(region, span, MADV_NOHUGEPAGE);  // advice: without THP there is nothing to undo
#ifdef MADV_POPULATE_WRITE
  // In 2 MiB steps: each call holds the address space's lock while it
  // faults, and other threads' brk and mmap wait for it (a 17 MiB call
  // stalled the main thread's heap growth for 14 ms).
  constexpr size_t kStep = size_t{2} << 20;
  auto* base = static_cast<uint8_t*>(region);
  size_t done = 0;
  while (done < span) {
    const size_t n = std::min(kStep, span - done);
    if (::madvise(base + done, n, MADV_POPULATE_WRITE) != 0) break;
    done += n;
  }
  if (done == span) return;
#endif
  // Kernels before 5.14 (EINVAL): the same page faults, one at a time.
  for (size_t at = 0; at < bytes; at += kPage) p[at] = 0;
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
