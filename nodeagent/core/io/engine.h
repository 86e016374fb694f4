#pragma once

// Engine selection shared by BlockReader and BlockWriter (internal to
// nodeagent/core/io).
//
// The requested engine is overridden by env BUNKER_IO_ENGINE. kAuto tries to
// set up an io_uring and falls back to a thread pool when the kernel refuses
// (seccomp EPERM/ENOSYS, kernel.io_uring_disabled, RLIMIT_MEMLOCK, ...),
// logging one warning per process and direction. An explicit kIoUring that
// cannot be set up is an error, not a silent fallback.
//
// Thread-safety: ChooseEngine may be called from any thread.

#include <memory>

#include "nodeagent/core/io/block_io.h"
#include "nodeagent/core/io/uring.h"
#include "nodeagent/core/util/status.h"

namespace bunker::io::internal {

enum class Direction { kRead, kWrite };

struct EngineChoice {
  Engine engine = Engine::kPread;  // kIoUring or kPread, never kAuto
  std::unique_ptr<Uring> ring;     // set iff engine == kIoUring
};

// Resolves `requested` (after the BUNKER_IO_ENGINE override) to a concrete
// engine; for io_uring the ring has `ring_entries` entries. InvalidArgument
// for an unknown BUNKER_IO_ENGINE value; the ring setup error when io_uring
// was asked for explicitly and is unavailable.
Result<EngineChoice> ChooseEngine(Engine requested, unsigned ring_entries, Direction direction);

// Forgets that the fallback warnings were logged, so a test can check that a
// fallback logs exactly once. Not for production code.
void ResetFallbackWarningsForTest();

}  // namespace bunker::io::internal
