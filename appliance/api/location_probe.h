#pragma once

// Probing a backup location before it is stored: open its backend through
// nodeagent/core and write, read back, stat, list and delete a probe object.
// A location is only created when its probe passes; the probe's error (code
// and message, without credentials) is what the API reports otherwise.
//
// This is the appliance's seam over the storage: tests may pass another
// prober. Thread-safety: ProbeLocation is thread-safe.

#include <functional>
#include <string>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/util/status.h"

namespace bunker::api {

using LocationProber =
    std::function<Status(const std::string& url, const backend::BackendOptions& options)>;

// Opens `url` (a file:// directory must already exist: nothing is created)
// and runs the probe steps; the first failing step is reported.
Status ProbeLocation(const std::string& url, const backend::BackendOptions& options);

}  // namespace bunker::api
