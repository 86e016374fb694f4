#include "nodeagent/core/backend/http_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <type_traits>

namespace bunker::backend {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

constexpr size_t kMaxResponseHeaderBytes = 64 * 1024;
// Beast reads at most the free capacity of the buffer (512 bytes at least):
// without room, a 16 MiB body takes 32768 reads.
constexpr size_t kReadBufferBytes = 256 * 1024;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// The one place where Asio, Beast and OpenSSL errors become Status values.
// `step` names what was going on ("connect", "TLS handshake", "send the
// request", "read the response").
Status TransportError(std::string_view step, const ErrorCode& ec, std::chrono::milliseconds timeout,
                      SSL* ssl_handle) {
  std::string what = std::string(step) + " failed: ";
  if (ec == beast::error::timeout || ec == asio::error::timed_out) {
    return Unavailable(std::string(step) + " timed out after " + Millis(timeout));
  }
  if (ec == asio::error::host_not_found || ec == asio::error::no_data) {
    return FailedPrecondition(what + "cannot resolve the host name (" + ec.message() + ")");
  }
  if (ec == asio::error::host_not_found_try_again) {
    return Unavailable(what + "temporary DNS failure (" + ec.message() + ")");
  }
  if (ec == http::error::body_limit) {
    return IOError(what + "the response body is larger than this request allows");
  }
  if (ec == http::error::header_limit) {
    return IOError(what + "the response header is larger than " +
                   std::to_string(kMaxResponseHeaderBytes) + " bytes");
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == asio::error::eof || ec == ssl::error::stream_truncated) {
    return Unavailable(what + "the server closed the connection");
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    // Any other parse error: garbage on the wire (a proxy, a half-dead server).
    return Unavailable(what + "malformed HTTP response (" + ec.message() + ")");
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    std::string detail = ec.message();
    if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        ssl_handle != nullptr) {
      long result = SSL_get_verify_result(ssl_handle);
      detail = std::string("certificate verify failed: ") + X509_verify_cert_error_string(result) +
               " (trust the server's CA with the CA file option, or check the host name)";
    }
    return FailedPrecondition(what + detail);
  }
  // Refused, reset, unreachable, broken pipe, aborted: the server or the
  // network is down right now.
  return Unavailable(what + ec.message());
}

// Runs one asynchronous operation on `ioc` to completion, on this thread.
// `start` receives the completion handler.
template <typename Start>
ErrorCode RunOp(asio::io_context& ioc, Start&& start) {
  ErrorCode result = asio::error::operation_aborted;
  start([&result](ErrorCode ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// One connection, used by one request at a time.
class Connection {
 public:
  virtual ~Connection() = default;

  // Sends the request and reads the response. On failure, *may_resend says
  // whether the request can safely go out again on another connection: no
  // response byte arrived and nothing timed out (the typical sign of a
  // server that closed this connection while it was idle).
  virtual Result<HttpResponse> RoundTrip(const HttpRequest& request, bool* may_resend) = 0;

  bool reusable() const { return reusable_; }
  Clock::time_point idle_since() const { return idle_since_; }
  void MarkIdle() { idle_since_ = Clock::now(); }

 protected:
  bool reusable_ = false;
  Clock::time_point idle_since_{};
};

template <typename Stream>
class StreamConnection final : public Connection {
 public:
  // Plain TCP.
  explicit StreamConnection(
      const HttpClientOptions& options) requires std::is_same_v<Stream, beast::tcp_stream>
      : options_(options), stream_(ioc_) {
    buffer_.reserve(kReadBufferBytes);
  }
  // TLS.
  StreamConnection(const HttpClientOptions& options,
                   ssl::context& ctx) requires(!std::is_same_v<Stream, beast::tcp_stream>)
      : options_(options), stream_(ioc_, ctx) {
    buffer_.reserve(kReadBufferBytes);
  }

  Status Connect() {
    const HttpEndpoint& ep = options_.endpoint;
    auto& lowest = beast::get_lowest_layer(stream_);
    std::vector<tcp::endpoint> targets;
    ErrorCode ec;
    asio::ip::address ip = asio::ip::make_address(ep.host, ec);
    if (!ec) {
      targets.emplace_back(ip, ep.port);
    } else {
      tcp::resolver resolver(ioc_);
      std::optional<ErrorCode> resolved;
      tcp::resolver::results_type results;
      resolver.async_resolve(ep.host, std::to_string(ep.port),
                             [&](ErrorCode e, tcp::resolver::results_type r) {
                               resolved = e;
                               results = std::move(r);
                             });
      ioc_.restart();
      ioc_.run_for(options_.connect_timeout);
      if (!resolved) {
        resolver.cancel();
        ioc_.restart();
        ioc_.run();
        return TransportError("resolve " + ep.host, beast::error::timeout, options_.connect_timeout,
                              nullptr);
      }
      if (*resolved) {
        return TransportError("resolve " + ep.host, *resolved, options_.connect_timeout, nullptr);
      }
      for (const auto& entry : results) targets.push_back(entry.endpoint());
    }
    lowest.expires_after(options_.connect_timeout);
    ec = RunOp(ioc_, [&](auto handler) { lowest.async_connect(targets, std::move(handler)); });
    if (ec) return TransportError("connect", ec, options_.connect_timeout, nullptr);
    lowest.socket().set_option(tcp::no_delay(true), ec);
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      RETURN_IF_ERROR(Handshake());
    }
    return Status::Ok();
  }

  Result<HttpResponse> RoundTrip(const HttpRequest& request, bool* may_resend) override {
    reusable_ = false;
    *may_resend = false;
    auto& lowest = beast::get_lowest_layer(stream_);

    http::request<http::buffer_body> req;
    req.version(11);
    http::verb verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown) {
      req.method_string(request.method);
    } else {
      req.method(verb);
    }
    req.target(request.target);
    req.set(http::field::host, options_.endpoint.HostHeader());
    for (const auto& [name, value] : request.headers) req.insert(name, value);
    bool has_body = !request.body.empty() || verb == http::verb::put || verb == http::verb::post;
    if (has_body) req.content_length(request.body.size());
    req.body().data = request.body.empty()
                          ? nullptr
                          : const_cast<uint8_t*>(request.body.data());  // never written
    req.body().size = request.body.size();
    req.body().more = false;

    http::request_serializer<http::buffer_body> serializer(req);
    while (!serializer.is_done()) {
      lowest.expires_after(options_.io_timeout);
      ErrorCode ec = RunOp(ioc_, [&](auto handler) {
        http::async_write_some(stream_, serializer, std::move(handler));
      });
      if (ec) {
        *may_resend = ec != beast::error::timeout;
        return TransportError("send the request", ec, options_.io_timeout, SslHandle());
      }
    }

    http::response_parser<http::vector_body<uint8_t>> parser;
    parser.header_limit(kMaxResponseHeaderBytes);
    parser.body_limit(request.max_response_body);
    if (verb == http::verb::head) parser.skip(true);
    if (request.reuse_body != nullptr) {
      Bytes reused = std::move(*request.reuse_body);
      reused.clear();  // keeps the capacity
      parser.get().body() = std::move(reused);
    }
    while (!parser.is_done()) {
      lowest.expires_after(options_.io_timeout);
      ErrorCode ec = RunOp(ioc_, [&](auto handler) {
        http::async_read_some(stream_, buffer_, parser, std::move(handler));
      });
      if (ec) {
        *may_resend = ec != beast::error::timeout && !parser.got_some() && buffer_.size() == 0;
        return TransportError("read the response", ec, options_.io_timeout, SslHandle());
      }
    }
    lowest.expires_never();

    http::response<http::vector_body<uint8_t>> res = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.reason = std::string(res.reason());
    for (const auto& field : res) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(res.body());
    reusable_ = res.keep_alive() && buffer_.size() == 0;
    return out;
  }

 private:
  SSL* SslHandle() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      return nullptr;
    } else {
      return stream_.native_handle();
    }
  }

  Status Handshake() {
    const std::string& host = options_.endpoint.host;
    SSL* handle = stream_.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    if (IsIpLiteral(host)) {
      if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
        return InvalidArgument("cannot check a certificate against IP " + host);
      }
    } else {
      if (SSL_set_tlsext_host_name(handle, host.c_str()) != 1) {
        return InvalidArgument("cannot send SNI for host " + host);
      }
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1) {
        return InvalidArgument("cannot check a certificate against host " + host);
      }
    }
    stream_.set_verify_mode(ssl::verify_peer);
    beast::get_lowest_layer(stream_).expires_after(options_.connect_timeout);
    ErrorCode ec = RunOp(ioc_, [&](auto handler) {
      stream_.async_handshake(ssl::stream_base::client, std::move(handler));
    });
    if (ec) return TransportError("TLS handshake", ec, options_.connect_timeout, handle);
    return Status::Ok();
  }

  const HttpClientOptions& options_;
  asio::io_context ioc_{1};
  Stream stream_;
  beast::flat_buffer buffer_;
};

using PlainConnection = StreamConnection<beast::tcp_stream>;
using TlsConnection = StreamConnection<beast::ssl_stream<beast::tcp_stream>>;

class BeastHttpClient final : public HttpClient {
 public:
  explicit BeastHttpClient(HttpClientOptions options)
      : options_(std::move(options)), ssl_ctx_(ssl::context::tls_client) {}

  Status Init() {
    if (!options_.endpoint.tls) return Status::Ok();
    SSL_CTX* ctx = ssl_ctx_.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    ErrorCode ec;
    if (!options_.ca_file.empty()) {
      ssl_ctx_.load_verify_file(options_.ca_file, ec);
      if (ec) {
        return InvalidArgument("CA file " + options_.ca_file + " cannot be used: " + ec.message() +
                               " (it must be a readable PEM file with at least one certificate)");
      }
    } else {
      ssl_ctx_.set_default_verify_paths(ec);
      if (ec) return FailedPrecondition("cannot load the system CA store: " + ec.message());
    }
    ssl_ctx_.set_verify_mode(ssl::verify_peer);
    return Status::Ok();
  }

  Result<HttpResponse> Send(const HttpRequest& request) override {
    try {
      for (int round = 0;; ++round) {
        std::unique_ptr<Connection> conn = TakeIdle();
        bool reused = conn != nullptr;
        if (!reused) {
          ASSIGN_OR_RETURN(conn, Open());
        }
        bool may_resend = false;
        Result<HttpResponse> res = conn->RoundTrip(request, &may_resend);
        if (!res.ok()) {
          // A pooled connection the server had closed while idle fails
          // before any response byte; send once more on a fresh connection.
          if (reused && may_resend && round == 0) continue;
          return res.status();
        }
        if (conn->reusable()) GiveBack(std::move(conn));
        return res;
      }
    } catch (const std::bad_alloc&) {
      return IOError("out of memory while receiving the response");
    } catch (const std::exception& e) {
      return Internal(std::string("HTTP client: ") + e.what());
    }
  }

  const HttpEndpoint& endpoint() const override { return options_.endpoint; }
  uint64_t connections_opened() const override { return opened_.load(); }

 private:
  Result<std::unique_ptr<Connection>> Open() {
    opened_.fetch_add(1);
    if (options_.endpoint.tls) {
      auto conn = std::make_unique<TlsConnection>(options_, ssl_ctx_);
      RETURN_IF_ERROR(conn->Connect());
      return std::unique_ptr<Connection>(std::move(conn));
    }
    auto conn = std::make_unique<PlainConnection>(options_);
    RETURN_IF_ERROR(conn->Connect());
    return std::unique_ptr<Connection>(std::move(conn));
  }

  std::unique_ptr<Connection> TakeIdle() {
    std::vector<std::unique_ptr<Connection>> expired;  // closed outside the lock
    std::unique_ptr<Connection> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Clock::time_point now = Clock::now();
      while (!idle_.empty()) {
        std::unique_ptr<Connection> c = std::move(idle_.back());
        idle_.pop_back();
        if (now - c->idle_since() <= options_.max_idle_time) {
          out = std::move(c);
          break;
        }
        expired.push_back(std::move(c));
      }
    }
    return out;
  }

  void GiveBack(std::unique_ptr<Connection> conn) {
    conn->MarkIdle();
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(conn));
  }

  const HttpClientOptions options_;
  ssl::context ssl_ctx_;  // configured in Init(), then only read
  std::atomic<uint64_t> opened_{0};
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_; most recent last
};

}  // namespace

std::string HttpEndpoint::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

std::string HttpEndpoint::ToString() const {
  return std::string(tls ? "https://" : "http://") + HostHeader();
}

bool IsIpLiteral(std::string_view host) {
  ErrorCode ec;
  asio::ip::make_address(std::string(host), ec);
  return !ec;
}

Result<HttpEndpoint> ParseHttpEndpoint(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("S3 endpoint \"" + std::string(url) + "\": " + std::string(why) +
                           " (expected http://host:port or https://host[:port])");
  };
  HttpEndpoint ep;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    ep.tls = true;
    rest = url.substr(8);
  } else {
    return bad("unknown scheme");
  }
  if (rest.ends_with("/")) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return bad("only a scheme, host and port are allowed");
  }
  std::string_view port_text;
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    ep.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    if (!IsIpLiteral(ep.host)) return bad("invalid IPv6 literal");
  } else {
    size_t colon = rest.find(':');
    ep.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
  }
  if (ep.host.empty()) return bad("missing host");
  ep.port = ep.tls ? 443 : 80;
  if (!port_text.empty()) {
    uint32_t port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) return bad("invalid port");
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return bad("invalid port");
    ep.port = static_cast<uint16_t>(port);
  }
  return ep;
}

std::string HttpResponse::Header(std::string_view name) const {
  std::string want = Lower(name);
  for (const auto& [n, v] : headers) {
    if (Lower(n) == want) return v;
  }
  return "";
}

bool HttpResponse::HasHeader(std::string_view name) const {
  std::string want = Lower(name);
  for (const auto& [n, v] : headers) {
    if (Lower(n) == want) return true;
  }
  return false;
}

Result<std::unique_ptr<HttpClient>> NewHttpClient(const HttpClientOptions& options) {
  if (options.endpoint.host.empty() || options.endpoint.port == 0) {
    return InvalidArgument("HTTP client without an endpoint");
  }
  auto client = std::make_unique<BeastHttpClient>(options);
  RETURN_IF_ERROR(client->Init());
  return std::unique_ptr<HttpClient>(std::move(client));
}

}  // namespace bunker::backend
