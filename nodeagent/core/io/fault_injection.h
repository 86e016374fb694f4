#pragma once

// Test-only fault injection for nodeagent/core/io (internal).
//
// A hook sees the result of every open-with-O_DIRECT, read and write the
// readers and writers make, in both engines, and returns the result they
// act on: a test turns a read into -EIO, a short count, -EAGAIN, or the first
// O_DIRECT read into -EINVAL, without a faulty device. With no hook installed
// the cost is one relaxed atomic load per operation.
//
// Thread-safety: the hook is called from the engines' threads, so it must be
// thread-safe. Install or clear it only while no reader or writer is open.

#include <cstdint>
#include <functional>

namespace bunker::io::internal {

enum class FaultOp {
  kOpenDirect,  // result 0 (opened with O_DIRECT) or -errno; offset 0
  kRead,        // result: bytes read or -errno; offset: where this read started
  kWrite,       // result: bytes written or -errno; offset: where this write started
};

using FaultHook = std::function<int64_t(FaultOp op, uint64_t offset, int64_t result)>;

// Installs `hook` (empty: none).
void SetFaultHookForTest(FaultHook hook);

// What the engines call: `result`, or what the hook makes of it.
int64_t ApplyFault(FaultOp op, uint64_t offset, int64_t result);

}  // namespace bunker::io::internal
