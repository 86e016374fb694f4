#include "appliance/bunkerctl/client.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

namespace bunker::bunkerctl {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

namespace {

Status ParseServer(const std::string& server, std::string* host, std::string* port) {
  constexpr std::string_view kScheme = "https://";
  if (server.rfind(kScheme, 0) != 0) {
    return InvalidArgument("server \"" + server + "\" must start with https://");
  }
  std::string rest = server.substr(kScheme.size());
  if (size_t slash = rest.find('/'); slash != std::string::npos) {
    rest = rest.substr(0, slash);
  }
  size_t colon = rest.rfind(':');
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) {
      return InvalidArgument("server \"" + server + "\": unterminated [IPv6]");
    }
    *host = rest.substr(1, close - 1);
    *port = close + 1 < rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "443";
  } else if (colon != std::string::npos) {
    *host = rest.substr(0, colon);
    *port = rest.substr(colon + 1);
  } else {
    *host = rest;
    *port = "443";
  }
  if (host->empty() || port->empty()) {
    return InvalidArgument("server \"" + server + "\": expected https://host[:port]");
  }
  return Status::Ok();
}

}  // namespace

Result<ClientResponse> ApiClient::Call(const std::string& method, const std::string& path,
                                       const std::string& body) {
  std::string host;
  std::string port;
  RETURN_IF_ERROR(ParseServer(options_.server, &host, &port));
  const std::string where = options_.server;
  try {
    net::io_context ioc;
    ssl::context tls(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (options_.insecure_skip_tls_verify) {
      tls.set_verify_mode(ssl::verify_none);
    } else {
      tls.set_verify_mode(ssl::verify_peer);
      if (!options_.ca_file.empty()) {
        tls.load_verify_file(options_.ca_file, ec);
        if (ec) {
          return InvalidArgument("CA file " + options_.ca_file + ": " + ec.message());
        }
      } else {
        tls.set_default_verify_paths();
      }
    }
    beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
    if (!options_.insecure_skip_tls_verify) {
      stream.set_verify_callback(ssl::host_name_verification(host));
    }
    boost::system::error_code ip_ec;
    net::ip::make_address(host, ip_ec);
    if (ip_ec) {  // SNI only for names
      SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
    }
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) {
      return Unavailable("resolve " + host + ": " + ec.message());
    }
    beast::get_lowest_layer(stream).expires_after(options_.timeout);
    beast::get_lowest_layer(stream).connect(endpoints, ec);
    if (ec) {
      return Unavailable("connect to " + where + ": " + ec.message());
    }
    stream.handshake(ssl::stream_base::client, ec);
    if (ec) {
      long verify = SSL_get_verify_result(stream.native_handle());
      std::string reason =
          verify != X509_V_OK ? X509_verify_cert_error_string(verify) : ec.message();
      return Unavailable("TLS handshake with " + where + ": " + reason +
                         " (trust bunkerd's certificate with --ca-file)");
    }
    http::request<http::string_body> req{http::string_to_verb(method), path, 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "bunkerctl");
    if (!options_.token.empty()) {
      req.set(http::field::authorization, "Bearer " + options_.token);
    }
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req, ec);
    if (ec) {
      return Unavailable("send to " + where + ": " + ec.message());
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream, buffer, parser, ec);
    if (ec) {
      return Unavailable("read from " + where + ": " + ec.message());
    }
    stream.shutdown(ec);  // the server may just close: not an error for us
    return ClientResponse{static_cast<int>(parser.get().result_int()),
                          std::move(parser.get().body())};
  } catch (const std::exception& e) {
    return Unavailable("request to " + where + ": " + e.what());
  }
}

}  // namespace bunker::bunkerctl
