#pragma once

// Named failpoints at every write of backup, forget, prune and key change, so
// tests can crash, fail or hang the process exactly there.
//
// Armed by the environment: BUNKER_FAILPOINT="name:action[,name:action…]"
// where action is
//   crash     — _exit(86) at once (what kill -9 would do, deterministically)
//   error     — the point returns an IOError naming itself
//   hang      — sleeps forever
//   stop      — raises SIGSTOP: the whole process freezes there until a
//               SIGCONT (lease fencing tests), then goes on
//   crash@N   — crash on the N-th time the point is reached (1-based)
//   error@N   — fail on the N-th time (likewise hang@N, stop@N)
// BUNKER_FAILPOINT_LIST=FILE appends each point name to FILE the first time it
// is reached, so a test can enumerate the points a run passes.
//
// Thread-safety: Failpoint() may be called from any thread.

#include <string_view>

#include "nodeagent/core/util/status.h"

namespace bunker {

inline constexpr int kFailpointCrashExitCode = 86;

// OK unless the point is armed with `error` (or crashes / hangs, per action).
Status Failpoint(std::string_view name);

}  // namespace bunker
