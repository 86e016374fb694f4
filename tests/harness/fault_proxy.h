#pragma once

// FaultProxy: a TCP proxy for tests that sits between a client and a real
// server on loopback and misbehaves on demand, so tests can show how the
// client copes with a flaky network or an overloaded server:
//
//   auto proxy = FaultProxy::Start(s3().port());       // 127.0.0.1:<free port>
//   proxy->RespondSlowDown(3);  // next 3 HTTP requests: 503 SlowDown
//   proxy->DropAfterBytes(1000);  // next connection: reset after 1000 bytes
//   proxy->SetDelay(200ms);       // every forwarded chunk waits 200 ms
//
// It understands just enough HTTP/1.1 on the client-to-server direction to
// find request boundaries (headers + Content-Length), so a 503 can replace
// one request on a kept-alive connection; requests with chunked bodies or
// "Expect: 100-continue" switch that connection to plain forwarding.
// If the target refuses the connection, the client's connection is reset.
//
// One thread per connection (poll on both sockets). Fault setters are
// thread-safe and apply to connections accepted (drops) or requests seen
// (slow downs) after the call. The destructor stops everything.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nodeagent/core/util/status.h"

namespace bunker::testing {

class FaultProxy {
 public:
  enum class Direction { kToClient, kToServer };

  // Listens on 127.0.0.1 and a free port, forwarding to 127.0.0.1:target_port.
  static Result<std::unique_ptr<FaultProxy>> Start(uint16_t target_port);

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  ~FaultProxy();

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT".
  std::string endpoint() const;

  // The next `connections` accepted connections are reset (RST both ways)
  // once `bytes` bytes went through in `direction` on each of them.
  void DropAfterBytes(uint64_t bytes, int connections = 1,
                      Direction direction = Direction::kToClient);
  // Each forwarded chunk, both directions, waits this long first (0: off).
  void SetDelay(std::chrono::milliseconds delay);
  // The next `requests` HTTP requests are answered by the proxy itself with
  // "503 Slow Down" and an S3 <Error><Code>SlowDown</Code> body; they never
  // reach the server. The connection stays usable.
  void RespondSlowDown(int requests);
  // Turns every fault off.
  void ClearFaults();

  uint64_t connections_accepted() const { return accepted_.load(); }
  uint64_t requests_seen() const { return requests_.load(); }
  uint64_t slow_downs_sent() const { return slow_downs_sent_.load(); }
  uint64_t connections_dropped() const { return dropped_.load(); }

 private:
  FaultProxy() = default;
  void AcceptLoop();
  void Serve(int client_fd);

  uint16_t port_ = 0;
  uint16_t target_port_ = 0;
  int listen_fd_ = -1;
  int wake_read_ = -1;  // readable once the proxy stops (every poll watches it)
  int wake_write_ = -1;
  std::thread acceptor_;

  std::mutex mu_;
  std::vector<std::thread> workers_;  // guarded by mu_

  std::atomic<int> drop_connections_{0};
  std::atomic<uint64_t> drop_bytes_{0};
  std::atomic<int> drop_direction_{0};
  std::atomic<int64_t> delay_ms_{0};
  std::atomic<int> slow_downs_{0};

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> slow_downs_sent_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace bunker::testing
