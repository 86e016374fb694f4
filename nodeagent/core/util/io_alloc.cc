#include "nodeagent/core/util/io_alloc.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace bunker {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

uint8_t* AllocateIoBuffer(size_t bytes, size_t* allocated) {
  const size_t align = bytes >= kHugePage ? kHugePage : kPage;
  const size_t size = (bytes + align - 1) / align * align;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(align, size == 0 ? align : size));
  if (p == nullptr) throw std::bad_alloc();
  if (align == kHugePage) {
    // Advice only: EINVAL (no THP support) changes nothing.
    (void)::madvise(p, size, MADV_HUGEPAGE);
  }
  if (allocated != nullptr) *allocated = size == 0 ? align : size;
  return p;
}

}  // namespace bunker
