#include "appliance/kube/version_probe.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

namespace bunker::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct Target {
  std::string host;  // without brackets
  std::string port = "443";
  std::string prefix;  // path prefix, "" or "/…"
};

// "https://host[:port][/prefix]" (checked to start with https:// by the
// kubeconfig parser).
bool SplitServer(const std::string& server, Target* t, std::string* why) {
  std::string rest = server.substr(std::string("https://").size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    t->prefix = rest.substr(slash);
  }
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) {
      *why = "server URL: unterminated IPv6 literal";
      return false;
    }
    t->host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      t->port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    t->host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      t->port = authority.substr(colon + 1);
    }
  }
  if (t->host.empty() || t->port.empty()) {
    *why = "server URL has no host or port";
    return false;
  }
  return true;
}

bool IsIp(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string Describe(const boost::system::error_code& ec, SSL* ssl_handle, const char* step) {
  std::string what = ec.message();
  if (ec.category() == asio::error::get_ssl_category() && ssl_handle != nullptr) {
    long verify = SSL_get_verify_result(ssl_handle);
    if (verify != X509_V_OK) {
      what = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    }
  }
  return std::string(step) + ": " + what;
}

}  // namespace

ProbeResult ProbeVersion(const KubeConfig& config, std::chrono::milliseconds timeout) {
  ProbeResult out;
  Target target;
  if (!SplitServer(config.server, &target, &out.reason)) {
    return out;
  }
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (config.insecure_skip_tls_verify) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    if (!config.ca_pem.empty()) {
      ctx.add_certificate_authority(asio::buffer(config.ca_pem), ec);
    } else {
      ctx.set_default_verify_paths(ec);
    }
    if (ec) {
      out.reason = "certificate-authority-data: " + ec.message();
      return out;
    }
    ctx.set_verify_mode(ssl::verify_peer);
  }
  if (!config.client_cert_pem.empty()) {
    ctx.use_certificate_chain(asio::buffer(config.client_cert_pem), ec);
    if (!ec) {
      ctx.use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem, ec);
    }
    if (ec) {
      out.reason = "client certificate or key: " + ec.message();
      return out;
    }
  }

  asio::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  SSL* handle = stream.native_handle();
  if (!config.insecure_skip_tls_verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    if (IsIp(target.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, target.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, target.host.c_str(), 0);
    }
  }
  if (!IsIp(target.host)) {
    SSL_set_tlsext_host_name(handle, target.host.c_str());
  }

  bool done = false;
  auto run = [&]() -> asio::awaitable<void> {
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    tcp::resolver resolver(ioc);
    auto endpoints = co_await resolver.async_resolve(target.host, target.port, token);
    if (ec) {
      out.reason = Describe(ec, nullptr, ("resolve " + target.host).c_str());
      co_return;
    }
    co_await beast::get_lowest_layer(stream).async_connect(endpoints, token);
    if (ec) {
      out.reason = Describe(ec, nullptr, ("connect to " + target.host + ":" + target.port).c_str());
      co_return;
    }
    co_await stream.async_handshake(ssl::stream_base::client, token);
    if (ec) {
      out.reason = Describe(ec, handle, "TLS handshake");
      co_return;
    }
    http::request<http::empty_body> req{http::verb::get, target.prefix + "/version", 11};
    req.set(http::field::host, target.host);
    req.set(http::field::user_agent, "bunkerd");
    req.set(http::field::accept, "application/json");
    if (!config.token.empty()) {
      req.set(http::field::authorization, "Bearer " + config.token);
    }
    co_await http::async_write(stream, req, token);
    if (ec) {
      out.reason = Describe(ec, handle, "send GET /version");
      co_return;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 10);
    co_await http::async_read(stream, buffer, parser, token);
    if (ec) {
      out.reason = Describe(ec, handle, "read /version response");
      co_return;
    }
    const auto& res = parser.get();
    if (res.result_int() != 200) {
      out.reason = "GET /version: HTTP " + std::to_string(res.result_int()) + " " +
                   std::string(res.reason());
      co_return;
    }
    nlohmann::json body = nlohmann::json::parse(res.body(), nullptr, false);
    if (!body.is_object() || !body.contains("gitVersion") || !body["gitVersion"].is_string()) {
      out.reason = "GET /version: the answer is not a Kubernetes version object";
      co_return;
    }
    out.version = body["gitVersion"].get<std::string>();
    out.reachable = true;
  };
  asio::co_spawn(ioc, run(), [&](const std::exception_ptr&) { done = true; });
  ioc.run_for(timeout);
  if (!done) {
    // Abort what is in flight and let the coroutine unwind before the
    // stream and the context go away; then say why.
    beast::get_lowest_layer(stream).socket().close(ec);
    ioc.restart();
    ioc.run_for(std::chrono::seconds(2));
    out.reachable = false;
    out.version.clear();
    out.reason =
        "no answer from " + config.server + " within " + std::to_string(timeout.count()) + " ms";
  }
  return out;
}

}  // namespace bunker::kube
