#pragma once

// Progress of a long operation, updated by pipeline threads and read by
// whoever shows it (a terminal bar, JSON lines, the appliance). Counters only
// grow; readers see a consistent-enough view without locking.

#include <atomic>
#include <cstdint>
#include <string>

namespace bunker::mover {

struct Progress {
  std::atomic<uint64_t> bytes_total{0};   // 0 when unknown
  std::atomic<uint64_t> bytes_done{0};    // bytes read (backup) or restored
  std::atomic<uint64_t> bytes_new{0};     // plaintext stored as new blobs
  std::atomic<uint64_t> bytes_stored{0};  // bytes written to the location
  std::atomic<uint64_t> files_done{0};
};

}  // namespace bunker::mover
