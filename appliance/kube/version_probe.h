#pragma once

// The cluster status probe: GET <server>/version over HTTPS with the
// kubeconfig's CA and credentials, as `kubectl version` does. The appliance
// registers clusters it cannot reach too; the probe's outcome (reachable,
// the reason when not, the server's gitVersion) is shown in the cluster's
// status.
//
// Synchronous with one overall deadline (connect, TLS handshake, request and
// response together), so a black-holed server costs at most `timeout`.
// Boost.Beast stays in version_probe.cc.
// Thread-safety: ProbeVersion is thread-safe (each call has its own context).

#include <chrono>
#include <functional>
#include <string>

#include "appliance/kube/kubeconfig.h"

namespace bunker::kube {

struct ProbeResult {
  bool reachable = false;
  std::string reason;   // why not reachable ("" when reachable)
  std::string version;  // gitVersion from /version ("" when unknown)
};

// Never fails: every problem (refused, TLS verification, timeout, HTTP
// status, bad JSON) is a reason. Credentials never appear in the reason.
ProbeResult ProbeVersion(const KubeConfig& config,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The seam the API uses (tests may pass another).
using ClusterProber = std::function<ProbeResult(const KubeConfig& config)>;

}  // namespace bunker::kube
