#pragma once

// HttpClient: a small HTTP/1.1 client for one endpoint (scheme, host, port),
// used by the S3 backend. Plain TCP or TLS (OpenSSL: peer verification
// against the system trust store, or only against a CA bundle file when one
// is given; host name or IP checked against the certificate; SNI sent for
// host names; TLS 1.2 at least).
//
// Connections are kept alive and pooled: a request takes an idle connection
// (or opens one) and gives it back after a complete response that allows
// keep-alive, so parallel callers reuse connections. A request that fails on
// a reused connection before any response byte arrived (the server closed
// the idle connection) is sent once more on a fresh connection.
//
// Timeouts: connecting (DNS + TCP + TLS handshake) must finish within
// connect_timeout; every read or write must make progress within
// io_timeout (an idle timeout, so large bodies are not cut short).
//
// Errors: transport failures are converted in one place (http_client.cc):
// refused, reset, closed early, timed out, temporarily unresolvable →
// Unavailable (retryable); TLS verification failures and unknown hosts →
// FailedPrecondition (not retryable). HTTP error statuses are not errors at
// this level: the response is returned as is.
//
// The Beast/Asio machinery stays in http_client.cc.
// Thread-safety: Send() may be called from many threads at once.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::backend {

struct HttpEndpoint {
  bool tls = false;
  std::string host;  // name or IP literal (IPv6 without brackets)
  uint16_t port = 0;

  // "https://minio.corp:9000", default ports omitted, IPv6 in brackets.
  std::string ToString() const;
  // Value for the Host header: host, plus ":port" unless it is the default.
  std::string HostHeader() const;
};

// Parses "http://host[:port]" or "https://host[:port]" (an optional trailing
// '/'; IPv6 literals in brackets). InvalidArgument with the reason otherwise.
Result<HttpEndpoint> ParseHttpEndpoint(std::string_view url);

// True for an IPv4 or IPv6 literal (without brackets).
bool IsIpLiteral(std::string_view host);

struct HttpClientOptions {
  HttpEndpoint endpoint;
  // PEM file with the CA certificates to trust for TLS, instead of the
  // system store. Empty: the system store.
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};
  // Idle connections kept for reuse, and how long an idle one may wait
  // (servers close idle connections after a few seconds: node 5 s).
  size_t max_idle_connections = 64;
  std::chrono::milliseconds max_idle_time{std::chrono::seconds(4)};
};

struct HttpRequest {
  std::string method;  // "GET", "PUT", "HEAD", "POST", "DELETE"
  std::string target;  // origin-form, already encoded: "/bucket/key?x=y"
  // Sent as given. The client adds Host and Content-Length.
  std::vector<std::pair<std::string, std::string>> headers;
  // Not owned: must stay valid until Send() returns.
  ByteSpan body;
  // A response body above this size fails the request (IOError) before it
  // is read, so a hostile Content-Length cannot make us allocate.
  uint64_t max_response_body = uint64_t{64} << 20;
  // Optional: a buffer whose allocation the response body reuses (its
  // contents are discarded). The body is returned in HttpResponse::body as
  // usual; the caller can hand that buffer back next time.
  Bytes* reuse_body = nullptr;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  Bytes body;

  // Value of the first header with this name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // Sends one request and reads the whole response (see the header comment
  // for errors and the one resend on a stale pooled connection).
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;

  virtual const HttpEndpoint& endpoint() const = 0;
  // Connections opened so far (tests check that the pool reuses them).
  virtual uint64_t connections_opened() const = 0;
};

// Sets up the TLS context (loads the CA file: InvalidArgument when it cannot
// be read or holds no certificate); opens no connection yet.
Result<std::unique_ptr<HttpClient>> NewHttpClient(const HttpClientOptions& options);

}  // namespace bunker::backend
