#pragma once

// Memory for large I/O buffers (read pools, pack buffers, codec scratch).
// Always 4 KiB-aligned (what O_DIRECT needs). Regions of 2 MiB or more are
// mapped on their own (never carved from the malloc heap), 2 MiB-aligned and
// advised as transparent huge pages: the pipeline sweeps through these
// buffers continuously, and huge pages turn ~512 page faults and TLB misses
// per 2 MiB into one. A kernel without THP (or with it set to "never")
// ignores the advice; nothing depends on it.

#include <cstddef>
#include <cstdint>

namespace bunker {

// Rounds `bytes` up to the granularity used; throws std::bad_alloc (also
// when the rounded size would overflow). *allocated receives the rounded
// size, which FreeIoBuffer needs.
uint8_t* AllocateIoBuffer(size_t bytes, size_t* allocated);
// Releases what AllocateIoBuffer returned (`allocated` as it reported; a
// null pointer is ignored).
void FreeIoBuffer(uint8_t* p, size_t allocated);

// Backs the untouched buffer [p, p + bytes) from AllocateIoBuffer with
// ordinary 4 KiB pages, faulted in by madvise(MADV_POPULATE_WRITE) (or
// by touching each page on kernels before 5.14). For buffers that are
// written once front to back and handed to the device (pack buffers), where
// huge pages buy nothing after the first touch and the first touch is what
// costs: under a hypervisor that takes back free guest memory (free page
// reporting), a fresh huge page often comes from memory the host must back
// again. Measured here for 52 MiB: huge pages 5 ms when the memory was just
// freed by this process, 94-173 ms after other programs had churned memory;
// 4 KiB pages 19-51 ms either way.
void PopulateSmallPages(uint8_t* p, size_t bytes);

}  // namespace bunker
