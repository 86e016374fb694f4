// bunker_api_load: bunkerd under many concurrent keep-alive HTTPS clients.
// Not a test (timings gate nothing): tests/bench/api_load.sh starts bunkerd in
// a temp dir and runs this against it for `make bench`.
//
// Setup (sequential): the admin logs in, creates --users users, each logs in
// (one bearer token per user) and creates two file:// backup locations under
// --location-dir and two schedule policies. Load: --clients coroutines, each
// with its own TLS connection kept alive, client i acting as user i % users,
// loop for --seconds over a mix of
//   list  45%  GET /api/v1/{backup-locations|schedule-policies}?limit=20
//   get   40%  GET /api/v1/{…}/{id} of an object its user owns
//   create 15% POST /api/v1/schedule-policies (12%) or backup-locations (3%,
//              probed by bunkerd on a new file:// directory)
// (--create-percent changes the share of creates; 0 measures a fixed data set.)
// Any status other than the expected one, and any connection failure, is an
// error (the first few are printed). A connection the server closes is
// reopened and counted as a reconnect. Prints a table per operation
// (requests, errors, p50/p99/max latency) and the total throughput; with
// --json FILE also writes the numbers as JSON. Exit status 0 only when there
// were no errors.
//
// Thread-safety: one io_context run by one thread; all state is touched from
// it only.

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Reply {
  int status = 0;  // 0: no HTTP answer (see error)
  std::string body;
  std::string error;
};

// One keep-alive HTTPS connection to bunkerd, reopened when it was closed.
class Connection {
 public:
  Connection(asio::io_context& ioc, ssl::context& tls, std::string host, std::string port)
      : ioc_(ioc), tls_(tls), host_(std::move(host)), port_(std::move(port)) {}

  int reconnects() const { return reconnects_; }

  asio::awaitable<Reply> Request(http::verb verb, const std::string& target,
                                 const std::string& token, const std::string& body) {
    Reply reply;
    beast::error_code ec;
    auto token_ec = asio::redirect_error(asio::use_awaitable, ec);
    if (!stream_) {
      stream_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, tls_);
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream_->native_handle()), host_.c_str());
      tcp::resolver resolver(ioc_);
      auto endpoints = co_await resolver.async_resolve(host_, port_, token_ec);
      if (!ec) {
        beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(60));
        co_await beast::get_lowest_layer(*stream_).async_connect(endpoints, token_ec);
      }
      if (!ec) {
        co_await stream_->async_handshake(ssl::stream_base::client, token_ec);
      }
      if (ec) {
        reply.error = "connect: " + ec.message();
        stream_.reset();
        co_return reply;
      }
      ++opened_;
      if (opened_ > 1) {
        ++reconnects_;
      }
    }
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::authorization, "Bearer " + token);
    req.keep_alive(true);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(60));
    co_await http::async_write(*stream_, req, token_ec);
    if (ec) {
      reply.error = "write: " + ec.message();
      stream_.reset();
      co_return reply;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    co_await http::async_read(*stream_, buffer_, parser, token_ec);
    if (ec) {
      reply.error = "read: " + ec.message();
      stream_.reset();
      buffer_.clear();
      co_return reply;
    }
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = std::move(parser.get().body());
    if (!parser.get().keep_alive()) {
      stream_.reset();
      buffer_.clear();
    }
    co_return reply;
  }

 private:
  asio::io_context& ioc_;
  ssl::context& tls_;
  std::string host_;
  std::string port_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
  int opened_ = 0;
  int reconnects_ = 0;
};

struct OpStats {
  std::vector<uint32_t> micros;
  int64_t errors = 0;
};

struct UserState {
  std::string token;
  std::vector<int64_t> locations;
  std::vector<int64_t> policies;
};

struct Options {
  std::string server;
  std::string ca_file;
  std::string admin_password_file;
  std::string location_dir;
  int clients = 200;
  int seconds = 30;
  int users = 10;
  int create_percent = 15;
  std::string json_out;
};

class Load {
 public:
  Load(asio::io_context& ioc, ssl::context& tls, Options options, std::string host,
       std::string port)
      : ioc_(ioc),
        tls_(tls),
        o_(std::move(options)),
        host_(std::move(host)),
        port_(std::move(port)) {}

  asio::awaitable<void> Setup() {
    Connection c(ioc_, tls_, host_, port_);
    std::ifstream in(o_.admin_password_file);
    std::string admin_password;
    std::getline(in, admin_password);
    std::string admin = co_await Login(c, std::string("admin"), admin_password);
    if (admin.empty()) {
      co_return;
    }
    users_.resize(o_.users);
    for (int u = 0; u < o_.users; ++u) {
      std::string name = "load-user-" + std::to_string(u);
      std::string password = "load-password-" + std::to_string(u);
      std::string body = json{{"name", name}, {"password", password}}.dump();
      Reply r = co_await c.Request(http::verb::post, std::string("/api/v1/users"), admin, body);
      if (r.status != 201) {
        SetupFailed("create user " + name, r);
        co_return;
      }
      users_[u].token = co_await Login(c, name, password);
      if (users_[u].token.empty()) {
        co_return;
      }
      for (int k = 0; k < 2; ++k) {
        int64_t id = co_await CreateLocation(
            c, users_[u].token, "setup-u" + std::to_string(u) + "-" + std::to_string(k));
        int64_t pid = co_await CreatePolicy(
            c, users_[u].token, "setup-u" + std::to_string(u) + "-" + std::to_string(k));
        if (id == 0 || pid == 0) {
          setup_error_ = setup_error_.empty() ? "setup create failed" : setup_error_;
          co_return;
        }
        users_[u].locations.push_back(id);
        users_[u].policies.push_back(pid);
      }
    }
    setup_ok_ = true;
  }

  asio::awaitable<void> Client(int index) {
    Connection c(ioc_, tls_, host_, port_);
    UserState& user = users_[index % o_.users];
    std::mt19937_64 rng(1000 + index);
    int created = 0;
    while (Clock::now() < deadline_) {
      int pick = static_cast<int>(rng() % 100);
      bool locations = (rng() & 1) != 0;
      std::string collection = locations ? "backup-locations" : "schedule-policies";
      std::string op;
      Reply r;
      int expect = 200;
      auto start = Clock::now();
      // Reads keep their 45:40 ratio when --create-percent changes.
      int reads = 100 - o_.create_percent;
      if (pick < reads * 45 / 85) {
        op = "list";
        r = co_await c.Request(http::verb::get, "/api/v1/" + collection + "?limit=20", user.token,
                               std::string());
      } else if (pick < reads) {
        op = "get";
        const std::vector<int64_t>& ids = locations ? user.locations : user.policies;
        int64_t id = ids[rng() % ids.size()];
        r = co_await c.Request(http::verb::get, "/api/v1/" + collection + "/" + std::to_string(id),
                               user.token, std::string());
      } else {
        expect = 201;
        std::string name = "c" + std::to_string(index) + "-" + std::to_string(created++);
        if (pick < 100 - o_.create_percent / 5) {
          op = "create policy";
          r = co_await c.Request(http::verb::post, std::string("/api/v1/schedule-policies"),
                                 user.token, PolicyBody(name));
        } else {
          op = "create location";
          r = co_await c.Request(http::verb::post, std::string("/api/v1/backup-locations"),
                                 user.token, LocationBody(name));
        }
      }
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      OpStats& s = stats_[op];
      s.micros.push_back(static_cast<uint32_t>(std::min<int64_t>(micros.count(), UINT32_MAX)));
      if (r.status != expect) {
        ++s.errors;
        if (error_samples_.size() < 10) {
          error_samples_.push_back(
              op + ": " +
              (r.status == 0 ? r.error
                             : "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200)));
        }
        if (r.status == 0) {
          // Back off a little so a dead server does not spin the loop.
          asio::steady_timer t(ioc_, std::chrono::milliseconds(100));
          co_await t.async_wait(asio::use_awaitable);
        }
      } else if (op == "create policy" || op == "create location") {
        json body = json::parse(r.body, nullptr, false);
        if (body.is_object() && body.contains("id") && body["id"].is_number_integer()) {
          (op == "create policy" ? user.policies : user.locations)
              .push_back(body["id"].get<int64_t>());
        }
      }
    }
    reconnects_ += c.reconnects();
    ++clients_done_;
  }

  void Start() {
    start_ = Clock::now();
    deadline_ = start_ + std::chrono::seconds(o_.seconds);
    for (int i = 0; i < o_.clients; ++i) {
      asio::co_spawn(ioc_, Client(i), asio::detached);
    }
  }

  // Prints the table; returns the total error count.
  int64_t Report() {
    double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    std::vector<uint32_t> all;
    int64_t errors = 0;
    json out{{"clients", o_.clients},
             {"users", o_.users},
             {"create_percent", o_.create_percent},
             {"seconds", elapsed},
             {"ops", json::object()}};
    std::printf("bunkerd API load: %d keep-alive HTTPS clients, %d users, %d%% creates, %.1f s\n\n",
                o_.clients, o_.users, o_.create_percent, elapsed);
    std::printf("%-16s %10s %8s %10s %10s %10s\n", "operation", "requests", "errors", "p50 ms",
                "p99 ms", "max ms");
    auto row = [&](const std::string& name, std::vector<uint32_t>& v, int64_t errs) {
      std::sort(v.begin(), v.end());
      auto pct = [&](double q) {
        return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))] / 1e3;
      };
      double max = v.empty() ? 0.0 : v.back() / 1e3;
      std::printf("%-16s %10zu %8lld %10.2f %10.2f %10.2f\n", name.c_str(), v.size(),
                  static_cast<long long>(errs), pct(0.50), pct(0.99), max);
      return json{{"requests", v.size()},
                  {"errors", errs},
                  {"p50_ms", pct(0.50)},
                  {"p99_ms", pct(0.99)},
                  {"max_ms", max}};
    };
    for (auto& [name, s] : stats_) {
      out["ops"][name] = row(name, s.micros, s.errors);
      all.insert(all.end(), s.micros.begin(), s.micros.end());
      errors += s.errors;
    }
    out["total"] = row("total", all, errors);
    double rps = all.size() / elapsed;
    out["requests_per_second"] = rps;
    out["reconnects"] = reconnects_;
    std::printf("\nthroughput %.0f requests/s; %lld errors; %lld reconnects\n", rps,
                static_cast<long long>(errors), static_cast<long long>(reconnects_));
    for (const std::string& e : error_samples_) {
      std::printf("  error: %s\n", e.c_str());
    }
    if (!o_.json_out.empty()) {
      std::ofstream(o_.json_out) << out.dump(2) << "\n";
    }
    return errors;
  }

  bool setup_ok() const { return setup_ok_; }
  const std::string& setup_error() const { return setup_error_; }
  bool all_done() const { return clients_done_ == o_.clients; }

 private:
  asio::awaitable<std::string> Login(Connection& c, const std::string& user,
                                     const std::string& password) {
    std::string request = json{{"username", user}, {"password", password}}.dump();
    Reply r =
        co_await c.Request(http::verb::post, std::string("/api/v1/login"), std::string(), request);
    json body = json::parse(r.body, nullptr, false);
    if (r.status != 201 || !body.is_object() || !body.contains("token")) {
      SetupFailed("login " + user, r);
      co_return "";
    }
    co_return body["token"].get<std::string>();
  }

  std::string PolicyBody(const std::string& name) {
    return json{
        {"name", name}, {"schedule", {{"kind", "interval"}, {"every_minutes", 60}}}, {"retain", 3}}
        .dump();
  }
  // Creates the location's directory (bunkerd probes an existing one).
  std::string LocationBody(const std::string& name) {
    std::error_code ec;
    std::filesystem::create_directories(o_.location_dir + "/" + name, ec);
    return json{{"name", name}, {"type", "file"}, {"url", "file://" + o_.location_dir + "/" + name}}
        .dump();
  }

  asio::awaitable<int64_t> CreateLocation(Connection& c, const std::string& token,
                                          const std::string& name) {
    Reply r = co_await c.Request(http::verb::post, std::string("/api/v1/backup-locations"), token,
                                 LocationBody(name));
    co_return IdOf(r, "create location " + name);
  }
  asio::awaitable<int64_t> CreatePolicy(Connection& c, const std::string& token,
                                        const std::string& name) {
    Reply r = co_await c.Request(http::verb::post, std::string("/api/v1/schedule-policies"), token,
                                 PolicyBody(name));
    co_return IdOf(r, "create policy " + name);
  }
  int64_t IdOf(const Reply& r, const std::string& what) {
    json body = json::parse(r.body, nullptr, false);
    if (r.status != 201 || !body.is_object() || !body.contains("id")) {
      SetupFailed(what, r);
      return 0;
    }
    return body["id"].get<int64_t>();
  }
  void SetupFailed(const std::string& what, const Reply& r) {
    setup_error_ =
        what + ": " + (r.status == 0 ? r.error : "HTTP " + std::to_string(r.status) + " " + r.body);
  }

  asio::io_context& ioc_;
  ssl::context& tls_;
  Options o_;
  std::string host_;
  std::string port_;
  std::vector<UserState> users_;
  bool setup_ok_ = false;
  std::string setup_error_;
  Clock::time_point start_;
  Clock::time_point deadline_;
  std::map<std::string, OpStats> stats_;
  std::vector<std::string> error_samples_;
  int64_t reconnects_ = 0;
  int clients_done_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"bunker_api_load: concurrent keep-alive HTTPS clients against bunkerd"};
  app.add_option("--server", o.server, "https://127.0.0.1:PORT")->required();
  app.add_option("--ca-file", o.ca_file, "bunkerd's certificate (PEM)")->required();
  app.add_option("--admin-password-file", o.admin_password_file, "The admin's password")
      ->required();
  app.add_option("--location-dir", o.location_dir, "Directory for file:// locations")->required();
  app.add_option("--clients", o.clients, "Concurrent connections")->capture_default_str();
  app.add_option("--seconds", o.seconds, "Duration of the load")->capture_default_str();
  app.add_option("--users", o.users, "Users (one token each)")->capture_default_str();
  app.add_option("--create-percent", o.create_percent,
                 "Share of creates (4/5 policies, 1/5 locations); the rest is 45:40 list:get")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--json", o.json_out, "Also write the numbers here as JSON");
  CLI11_PARSE(app, argc, argv);

  const std::string scheme = "https://";
  std::string authority = o.server.rfind(scheme, 0) == 0 ? o.server.substr(scheme.size()) : "";
  size_t colon = authority.rfind(':');
  if (authority.empty() || colon == std::string::npos || o.users < 1 || o.clients < 1) {
    std::cerr << "bunker_api_load: --server must be https://IP:PORT; --users, --clients >= 1\n";
    return 2;
  }
  asio::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  tls.set_verify_mode(ssl::verify_peer);
  tls.load_verify_file(o.ca_file);

  Load load(ioc, tls, o, authority.substr(0, colon), authority.substr(colon + 1));
  asio::co_spawn(ioc, load.Setup(), asio::detached);
  ioc.run();
  if (!load.setup_ok()) {
    std::cerr << "bunker_api_load: setup failed: " << load.setup_error() << "\n";
    return 1;
  }
  ioc.restart();
  load.Start();
  ioc.run();
  if (!load.all_done()) {
    std::cerr << "bunker_api_load: not every client finished\n";
    return 1;
  }
  return load.Report() == 0 ? 0 : 1;
}
