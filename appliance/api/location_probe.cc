#include "appliance/api/location_probe.h"

#include <memory>

#include "nodeagent/core/backend/probe.h"

namespace bunker::api {

Status ProbeLocation(const std::string& url, const backend::BackendOptions& options) {
  Result<std::unique_ptr<backend::Backend>> opened = backend::OpenBackend(url, options, false);
  if (!opened.ok()) {
    return opened.Annotated("probe: open");
  }
  // The same probe `bunker-agent repo probe` runs: write, read (whole and by
  // range), stat, list and delete a probe object.
  return backend::ProbeBackend(opened->get());
}

}  // namespace bunker::api
