#pragma once

// ApiClient: a small synchronous HTTPS client for bunkerd's REST API (Beast;
// the only bunkerctl file that includes Asio/Beast is client.cc).
//
// TLS is always verified — against `ca_file` when given (e.g. bunkerd's
// self-signed data_dir/tls/cert.pem), else the system store — including the
// host name or IP address, unless `insecure_skip_tls_verify` is set
// explicitly. Tokens are sent as "Authorization: Bearer" and never logged.
// Thread-safety: one request at a time per object.

#include <chrono>
#include <string>

#include "nodeagent/core/util/status.h"

namespace bunker::bunkerctl {

struct ClientOptions {
  std::string server;  // "https://host:port"
  std::string ca_file;
  bool insecure_skip_tls_verify = false;
  std::string token;
  std::chrono::seconds timeout{30};
};

struct ClientResponse {
  int status = 0;
  std::string body;
};

class ApiClient {
 public:
  explicit ApiClient(ClientOptions options) : options_(std::move(options)) {}

  // One request on a fresh connection. Unavailable for connection and TLS
  // failures (with the reason); any HTTP status is a successful result.
  Result<ClientResponse> Call(const std::string& method, const std::string& path,
                              const std::string& body = "");

 private:
  ClientOptions options_;
};

}  // namespace bunker::bunkerctl
