#pragma once

// HttpsServer: Boost.Beast HTTPS front of ApiHandler — listener → one session
// per connection (on its own strand) → ApiHandler::Handle → response. The
// only file that includes Asio/Beast is server.cc.
//
// Limits: TLS ≥ 1.2; request bodies above max_body_bytes get 413 and the
// connection is closed; headers above max_header_bytes get 431; a request
// that is not HTTP gets 400; a client that stalls a handshake or a request
// for longer than read_timeout is dropped (a request it had begun is logged
// and counted as 408; the connection is closed without an answer, as the
// stream is gone). These answers are logged and counted like any other
// (ApiHandler::RecordServerResponse).
//
// Threads: `threads` network threads do only TLS and HTTP I/O and answer
// quick requests (ApiHandler::Classify); password hashing runs on a pool of
// `worker_threads`, cluster and storage probes on a pool of `probe_threads`
// (so probes of a silent cluster never hold up logins), and each response is
// written back on its connection's strand. Beyond the requests a pool
// is running, at most `max_queued_slow` wait for it; beyond that the server answers 503 with
// Retry-After (a flood of logins cannot pile up without bound, and hung
// probes do not refuse logins).
//
// Ownership: borrows the handler, which must outlive the server.
// Thread-safety: Start/Stop from one thread; the server runs `threads` +
// `worker_threads` + `probe_threads` threads of its own, which call the handler concurrently.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "appliance/api/handler.h"
#include "nodeagent/core/util/status.h"

namespace bunker::api {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8443;   // 0 picks a free port (see HttpsServer::port())
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  std::chrono::seconds read_timeout{30};
  int threads = 4;
  int worker_threads = 2;
  int probe_threads = 4;
  size_t max_queued_slow = 256;
};

class HttpsServer {
 public:
  // Binds, listens and starts serving. InvalidArgument for a bad address or
  // unreadable certificate/key; IOError when the port cannot be bound.
  static Result<std::unique_ptr<HttpsServer>> Start(const ServerOptions& options,
                                                    ApiHandler* handler);
  ~HttpsServer();  // Stop()s

  uint16_t port() const;

  // Stops accepting, lets requests in flight finish (up to `grace`), then
  // closes every connection and joins the threads. A worker busy past the
  // grace (a probe still waiting for its timeout) is joined too, so Stop
  // can take up to the probe timeout longer. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  struct Impl;

 private:
  explicit HttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bunker::api
