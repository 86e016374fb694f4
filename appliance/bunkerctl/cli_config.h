#pragma once

// bunkerctl's own settings: which bunkerd to talk to, how to trust it, and the
// token from `bunkerctl login`. Kept in $BUNKER_CONFIG when set, else
// $HOME/.config/bunker/config.yaml, written 0600 (it holds a bearer token).
//
//   server: https://bunker.corp:8443
//   ca_file: /etc/bunker/ca.pem
//   insecure_skip_tls_verify: false
//   token: bkr_…
// Thread-safety: pure functions over files.

#include <string>

#include "nodeagent/core/util/status.h"

namespace bunker::bunkerctl {

struct CliConfig {
  std::string server;
  std::string ca_file;
  bool insecure_skip_tls_verify = false;
  std::string token;
};

// The config file path from the environment (see above); empty if neither
// BUNKER_CONFIG nor HOME is set.
std::string DefaultConfigPath();

// A missing file is an empty config, not an error.
Result<CliConfig> LoadCliConfig(const std::string& path);

// Writes atomically (temp file + rename), mode 0600, creating parent dirs.
Status SaveCliConfig(const std::string& path, const CliConfig& config);

}  // namespace bunker::bunkerctl
