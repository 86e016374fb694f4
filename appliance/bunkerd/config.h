#pragma once

// bunkerd's configuration: bunkerd.yaml (yaml-cpp), then command-line
// overrides. Unknown keys are errors, so a typo never silently falls back to a
// default. Example:
//
//   data_dir: /var/lib/bunker
//   listen: 0.0.0.0:8443
//   tls_cert: /etc/bunker/tls.crt   # both empty: self-signed in data_dir/tls/
//   tls_key: /etc/bunker/tls.key
//   token_ttl_hours: 24
//   max_body_bytes: 1048576
//   threads: 4            # network threads (TLS and HTTP I/O, quick requests)
//   worker_threads: 2     # password hashing (login, user create, password change)
//   probe_threads: 4      # cluster and storage probes
//   max_queued_slow_requests: 256  # per pool; more waiting: 503 busy
//   read_timeout_seconds: 30          # a stalled handshake or request is dropped
//   cluster_probe_timeout_seconds: 5  # GET /version of a cluster
//   login_max_failures: 5             # failed logins per user and address ...
//   login_failure_window_seconds: 300 # ... within this window, then 429
//   login_max_failures_per_address: 30  # over all user names, same window
//   file_location_roots: []  # where users who are not admins may create
//                            # file:// locations; empty: admins only
//   log_level: info
//   log_target: auto   # journal | stderr | auto (journal when JOURNAL_STREAM is set)

#include <cstdint>
#include <string>
#include <vector>

#include "nodeagent/core/util/status.h"

namespace bunker::bunkerd {

struct Config {
  std::string data_dir = "/var/lib/bunker";
  std::string listen = "127.0.0.1:8443";
  std::string tls_cert;
  std::string tls_key;
  int64_t token_ttl_hours = 24;
  int64_t max_body_bytes = 1 << 20;
  int64_t threads = 4;
  int64_t worker_threads = 2;
  int64_t probe_threads = 4;
  int64_t read_timeout_seconds = 30;
  int64_t cluster_probe_timeout_seconds = 5;
  int64_t login_max_failures = 5;
  int64_t login_failure_window_seconds = 300;
  int64_t login_max_failures_per_address = 30;
  std::vector<std::string> file_location_roots;  // absolute directories
  int64_t max_queued_slow_requests = 256;
  std::string log_level = "info";
  std::string log_target = "auto";
};

// Reads `path` on top of `config`. InvalidArgument naming the key for an
// unknown key or a value of the wrong type; NotFound for a missing file.
Status LoadConfigFile(const std::string& path, Config* config);

// Splits "host:port" / "[v6]:port". InvalidArgument when malformed.
Status SplitListen(const std::string& listen, std::string* host, uint16_t* port);

}  // namespace bunker::bunkerd
