#include "appliance/api/server.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace bunker::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

struct HttpsServer::Impl {
  ServerOptions options;
  ApiHandler* handler = nullptr;
  net::io_context ioc;
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  // Run the slow requests (declared after `ioc`: destroyed first, so
  // sessions held by jobs they never ran still find their io_context).
  struct Pool {
    std::unique_ptr<net::thread_pool> threads;
    size_t size = 1;                 // threads in the pool
    std::atomic<size_t> pending{0};  // posted and not finished: running or waiting
  };
  Pool workers;  // ApiHandler::Work::kCompute
  Pool probers;  // ApiHandler::Work::kWait
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopped{false};
  uint16_t port = 0;

  void Accept();
};

namespace {

ApiResponse LimitResponse(const beast::error_code& ec, size_t max_body) {
  if (ec == http::error::body_limit) {
    return ErrorResponse(413, "payload_too_large",
                         "the request body exceeds " + std::to_string(max_body) + " bytes");
  }
  return ErrorResponse(431, "header_too_large", "the request headers are too large");
}

// handler->Handle(), which never throws by contract; should a bug make it
// throw anyway, the request gets a 500 and the process lives on (an
// exception leaving a network or pool thread would end bunkerd).
ApiResponse HandleSafely(ApiHandler* handler, const ApiRequest& request) {
  try {
    return handler->Handle(request);
  } catch (const std::exception& e) {
    spdlog::error("{} {}: the handler threw: {}", request.method, request.target.substr(0, 200),
                  e.what());
  } catch (...) {
    spdlog::error("{} {}: the handler threw", request.method, request.target.substr(0, 200));
  }
  return ErrorResponse(500, "internal", "internal error; see the bunkerd log");
}

// One TLS connection; keeps itself alive through its pending operations.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpsServer::Impl* server)
      : stream_(std::move(socket), server->tls), server_(server) {
    beast::error_code ec;
    tcp::endpoint peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    remote_ = ec ? "" : peer.address().to_string() + ":" + std::to_string(peer.port());
  }

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::OnRun, shared_from_this()));
  }

 private:
  void OnRun() {
    beast::get_lowest_layer(stream_).expires_after(server_->options.read_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            beast::bind_front_handler(&Session::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      return;  // bad client, scanner or timeout: nothing to answer
    }
    DoRead();
  }

  void DoRead() {
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    read_start_ = std::chrono::steady_clock::now();
    beast::get_lowest_layer(stream_).expires_after(server_->options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - read_start_).count();
  }

  // The request line when it was read (the parser fills it before the
  // fields, so it is known for 413 and often for 431), else empty.
  bool RequestLine(std::string* method, std::string* target) const {
    if (!parser_ || parser_->get().method_string().empty()) {
      return false;
    }
    *method = std::string(parser_->get().method_string());
    *target = std::string(parser_->get().target());
    return true;
  }

  // Logs and counts an answer the server gives itself (no handler call).
  void RecordOwn(int status) {
    std::string method;
    std::string target;
    RequestLine(&method, &target);
    server_->handler->RecordServerResponse(method, target, status, Seconds(), remote_);
  }

  // Answers with `res` (which the server made itself) and closes.
  void AnswerOwn(ApiResponse res) {
    RecordOwn(res.status);
    std::string method;
    std::string target;
    unsigned version = RequestLine(&method, &target) ? parser_->get().version() : 11;
    Send(std::move(res), /*close=*/true, version);
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) {
      return DoClose();
    }
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      return AnswerOwn(LimitResponse(ec, server_->options.max_body_bytes));
    }
    if (ec == beast::error::timeout) {
      // The stream closed the socket: nothing can be answered. A request
      // that had begun is logged as 408; an idle keep-alive connection is not.
      if (buffer_.size() > 0 || (parser_ && parser_->got_some())) {
        RecordOwn(408);
      }
      return;
    }
    if (ec && ec.category() == beast::http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::partial_message) {
      return AnswerOwn(
          ErrorResponse(400, "bad_request", "the request is not valid HTTP/1.1: " + ec.message()));
    }
    if (ec) {
      return;  // reset, or the client went away mid-request
    }
    http::request<http::string_body>& req = parser_->get();
    ApiRequest api;
    api.method = std::string(req.method_string());
    api.target = std::string(req.target());
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      api.headers[name] = std::string(field.value());
    }
    api.body = std::move(req.body());
    api.remote = remote_;
    const bool close = !req.keep_alive();
    const unsigned version = req.version();
    const ApiHandler::Work work = server_->handler->Classify(api);
    if (work == ApiHandler::Work::kQuick) {
      server_->in_flight++;
      ApiResponse res = HandleSafely(server_->handler, api);
      server_->in_flight--;
      return Send(std::move(res), close || server_->stopped, version);
    }
    HttpsServer::Impl::Pool& pool =
        work == ApiHandler::Work::kCompute ? server_->workers : server_->probers;
    if (pool.pending.fetch_add(1) >= pool.size + server_->options.max_queued_slow) {
      pool.pending--;
      ApiResponse busy =
          ErrorResponse(503, "busy", "too many slow requests (logins, probes) are waiting; retry");
      busy.headers.emplace_back("Retry-After", "1");
      RecordOwn(503);
      return Send(std::move(busy), close || server_->stopped, version);
    }
    server_->in_flight++;
    net::post(*pool.threads,
              [self = shared_from_this(), &pool, api = std::move(api), close, version]() mutable {
                ApiResponse res = HandleSafely(self->server_->handler, api);
                pool.pending--;
                net::post(self->stream_.get_executor(),
                          [self, res = std::move(res), close, version]() mutable {
                            self->server_->in_flight--;
                            self->Send(std::move(res), close || self->server_->stopped, version);
                          });
              });
  }

  void Send(ApiResponse api, bool close, unsigned version) {
    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(api.status));
    res_.set(http::field::server, "bunkerd");
    if (!api.content_type.empty()) {
      res_.set(http::field::content_type, api.content_type);
    }
    res_.set(http::field::cache_control, "no-store");
    res_.set("X-Content-Type-Options", "nosniff");
    for (const auto& [k, v] : api.headers) {
      res_.set(k, v);
    }
    res_.body() = std::move(api.body);
    res_.keep_alive(!close);
    res_.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(server_->options.read_timeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this(), close));
  }

  void OnWrite(bool close, beast::error_code ec, std::size_t) {
    if (ec) {
      return;
    }
    if (close) {
      return DoClose();
    }
    DoRead();
  }

  void DoClose() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown(
        [self = shared_from_this()](beast::error_code) {});  // the socket closes with us
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  HttpsServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::string remote_;
  std::chrono::steady_clock::time_point read_start_;
};

}  // namespace

void HttpsServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (!acceptor.is_open()) {
        return;  // stopping
      }
    } else {
      std::make_shared<Session>(std::move(socket), this)->Run();
    }
    Accept();
  });
}

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsServer::~HttpsServer() { Stop(); }

uint16_t HttpsServer::port() const { return impl_->port; }

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(const ServerOptions& options,
                                                        ApiHandler* handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = handler;
  beast::error_code ec;
  impl->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                        ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(impl->tls.native_handle(), TLS1_2_VERSION);
  impl->tls.use_certificate_chain_file(options.cert_file, ec);
  if (ec) {
    return InvalidArgument("TLS certificate " + options.cert_file + ": " + ec.message());
  }
  impl->tls.use_private_key_file(options.key_file, ssl::context::pem, ec);
  if (ec) {
    return InvalidArgument("TLS key " + options.key_file + ": " + ec.message());
  }
  net::ip::address address = net::ip::make_address(options.address, ec);
  if (ec) {
    return InvalidArgument("listen address \"" + options.address + "\": " + ec.message());
  }
  tcp::endpoint endpoint(address, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    impl->acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return IOError("listen on " + options.address + ":" + std::to_string(options.port) + ": " +
                   ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->workers.size = static_cast<size_t>(std::max(1, options.worker_threads));
  impl->probers.size = static_cast<size_t>(std::max(1, options.probe_threads));
  impl->workers.threads = std::make_unique<net::thread_pool>(impl->workers.size);
  impl->probers.threads = std::make_unique<net::thread_pool>(impl->probers.size);
  impl->Accept();
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
  }
  return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
}

void HttpsServer::Stop(std::chrono::milliseconds grace) {
  if (impl_ == nullptr || impl_->stopped.exchange(true)) {
    return;
  }
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) {
    t.join();
  }
  // Jobs not started are dropped; one running finishes (its response is
  // posted to the stopped io_context and never written).
  for (net::thread_pool* pool : {impl_->workers.threads.get(), impl_->probers.threads.get()}) {
    pool->stop();
    pool->join();
  }
}

}  // namespace bunker::api
