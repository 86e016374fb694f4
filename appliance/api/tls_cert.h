#pragma once

// The server's TLS certificate. When none is configured, bunkerd generates a
// self-signed one on first start (ECDSA P-256, SHA-256, 10 years, subject
// CN=bunkerd, SANs localhost, 127.0.0.1, ::1 and the host name) into the data
// directory, both files 0600, and reuses it on later starts. Clients trust it
// by pinning the certificate file as their CA (bunkerctl --ca-file).
// Thread-safety: not for concurrent calls on the same paths.

#include <string>

#include "nodeagent/core/util/status.h"

namespace bunker::api {

// Creates `cert_path` and `key_path` unless both exist. FailedPrecondition
// when only one of them exists (a half-written pair is not silently replaced).
Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path);

}  // namespace bunker::api
