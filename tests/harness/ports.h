#pragma once

// Loopback TCP ports for test servers.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nodeagent/core/util/status.h"

namespace bunker::testing {

// Returns `count` distinct TCP ports on 127.0.0.1 that were free a moment ago
// (bound with port 0, then released). Racy by nature: another process may take
// a port before the server binds it, so server starters retry with new ports
// when their server fails to start.
Result<std::vector<uint16_t>> PickFreePorts(size_t count);
Result<uint16_t> PickFreePort();

// True if a TCP connection to 127.0.0.1:port succeeds right now.
bool PortAcceptsConnections(uint16_t port);

}  // namespace bunker::testing
