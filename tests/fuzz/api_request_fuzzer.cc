// The REST API's request handling (appliance/api/handler.h): ApiHandler, the
// pure handler behind bunkerd's HTTPS server, with its real SQLite store in a
// temp directory, as the unit tests build it (no network: the location and
// cluster probes are injected).
//
// Input: flags ‖ route ‖ '\n' ‖ [query ‖ '\n'] ‖ body.
//   flags bit 0: as the user "alice" (else as the admin); bit 1: no token;
//     bit 2: the query line is there, appended to the target as "?<query>";
//     flags >> 4 chooses the segment that replaces each "{…}" of the route
//     (ids of the objects made at setup, "me", and garbage).
//   route: "METHOD pattern" of a POST or PATCH route of ApiRoutes(), e.g.
//     "PATCH /api/v1/users/{id}"; any other text picks one by its hash (so
//     seeds stay meaningful when routes are added, and mutations still reach
//     every route).
//   body: the JSON body (any bytes).
//
// Properties: Handle() never throws; it never answers 500 (or anything but
// 2xx, 3xx, 4xx and 503); every answer but 204 is JSON, and every error is
// the one error shape {"code", "message", "details": {}}.
//
// State: the handler and its store live across inputs (objects the fuzzer
// creates stay), and are made afresh every 2000 inputs, or when the admin's
// token stops working (an input changed the admin's password).

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "appliance/api/handler.h"
#include "appliance/auth/password.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

using nlohmann::json;

class ApiWorld {
 public:
  ApiWorld() {
    spdlog::set_level(spdlog::level::off);  // a request line per input otherwise
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "api-request-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) Fatal("mkdtemp " + tmpl);
    dir_ = tmpl;
    auto store = store::OpenSqliteStore((dir_ / "bunker.db").string());
    if (!store.ok()) Fatal("store: " + store.status().ToString());
    store_ = std::move(store).value();
    crypto::Key key{};
    key.fill(7);
    box_ = std::make_unique<auth::SecretBox>(key);
    api::HandlerOptions options;
    options.max_body_bytes = 256 << 10;
    options.cluster_prober = [](const kube::KubeConfig&) {
      return kube::ProbeResult{false, "not probed while fuzzing", ""};
    };
    options.file_location_roots = {dir_.string()};
    handler_ = std::make_unique<api::ApiHandler>(
        store_.get(), box_.get(), &metrics_,
        [](const std::string& url, const backend::BackendOptions&) {
          return url.find("fail") == std::string::npos ? Status::Ok()
                                                       : Unavailable("probe: injected failure");
        },
        options);
    handler_->SetReady(true);
    auto hash = auth::HashPassword("admin-password");
    if (!hash.ok() || !store_->CreateUser({0, "admin", "admin", *hash, 1}).ok()) {
      Fatal("admin user");
    }
    admin_ = Token("admin", "admin-password");
    Made("/api/v1/users", R"({"name":"alice","password":"alice-password"})");
    user_ = Token("alice", "alice-password");
    // One object of each kind, so PATCH and sub-routes reach their body checks.
    Made("/api/v1/groups", R"({"name":"ops","members":["alice"]})");
    Made("/api/v1/backup-locations",
         json{{"name", "nas"}, {"type", "file"}, {"url", "file://" + dir_.string()}}.dump());
    Made("/api/v1/clusters",
         json{{"name", "prod"},
              {"kubeconfig",
               "current-context: x\nclusters:\n- name: x\n  cluster:\n    server: "
               "https://127.0.0.1:1\ncontexts:\n- name: x\n  context:\n    cluster: x\n"}}
             .dump());
    Made("/api/v1/schedule-policies",
         R"({"name":"p","schedule":{"kind":"daily","at":"02:30"},"retain":3})");
    Made("/api/v1/rules", R"({"name":"r","actions":[{"namespace":"shop","command":"sync"}]})");
    Made("/api/v1/backups", R"({"name":"b","cluster_id":1,"location_id":1,"namespaces":["shop"]})");
    Made("/api/v1/restores", R"({"name":"rs","backup_id":1,"cluster_id":1})");
    for (const auto& route : api::ApiRoutes()) {
      if (route.first == "POST" || route.first == "PATCH") routes_.push_back(route);
    }
    if (routes_.empty()) Fatal("no POST or PATCH routes");
  }

  ~ApiWorld() {
    handler_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ApiWorld(const ApiWorld&) = delete;
  ApiWorld& operator=(const ApiWorld&) = delete;

  api::ApiResponse Call(const std::string& method, const std::string& target,
                        const std::string& token, std::string body) {
    api::ApiRequest req;
    req.method = method;
    req.target = target;
    req.body = std::move(body);
    req.remote = "127.0.0.1:1";
    if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
    return handler_->Handle(req);
  }

  // The admin's token still works.
  bool Healthy() { return Call("GET", "/api/v1/users/me", admin_, "").status == 200; }

  const std::vector<std::pair<std::string, std::string>>& routes() const { return routes_; }
  const std::string& admin() const { return admin_; }
  const std::string& user() const { return user_; }

 private:
  [[noreturn]] static void Fatal(const std::string& what) {
    std::fprintf(stderr, "api_request harness setup failed: %s\n", what.c_str());
    std::abort();
  }

  std::string Token(const std::string& name, const std::string& password) {
    api::ApiResponse r =
        Call("POST", "/api/v1/login", "", json{{"username", name}, {"password", password}}.dump());
    if (r.status != 201) Fatal("login " + name + ": " + r.body);
    return json::parse(r.body, nullptr, false).value("token", "");
  }

  void Made(const std::string& path, const std::string& body) {
    api::ApiResponse r = Call("POST", path, admin_, body);
    if (r.status != 201) Fatal(path + ": " + r.body);
  }

  std::filesystem::path dir_;  // removed with the world
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::SecretBox> box_;
  api::Metrics metrics_;
  std::unique_ptr<api::ApiHandler> handler_;
  std::string admin_, user_;
  std::vector<std::pair<std::string, std::string>> routes_;
};

std::unique_ptr<ApiWorld>& World() {
  static std::unique_ptr<ApiWorld> world;
  return world;
}

// `pattern` with each "{…}" replaced by `segment`.
std::string Fill(const std::string& pattern, const std::string& segment) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      out += segment;
      i = pattern.find('}', i);
      if (i == std::string::npos) break;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace

BUNKER_FUZZ_TARGET(api_request) {
  static uint64_t inputs = 0;
  std::unique_ptr<ApiWorld>& world = World();
  if (!world || ++inputs % 2000 == 0) world = std::make_unique<ApiWorld>();
  InputReader in(data);
  uint8_t flags = 0;
  if (!in.U8(&flags)) return false;
  std::string_view rest = AsChars(in.Rest());
  const size_t eol = rest.find('\n');
  const std::string_view line = rest.substr(0, eol);
  rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
  const auto& routes = world->routes();
  size_t route = routes.size();
  for (size_t i = 0; i < routes.size(); ++i) {
    if (line == routes[i].first + " " + routes[i].second) route = i;
  }
  if (route == routes.size()) route = std::hash<std::string_view>()(line) % routes.size();
  static const char* const kSegments[] = {
      "1",   "2",   "3",        "me", "0",   "-1", "99999999999999999999",
      "abc", "%00", "\xff\xfe", "",   "1/x", "1?", "2#"};
  const auto& [method, pattern] = routes[route];
  std::string target =
      Fill(pattern, kSegments[(flags >> 4) % (sizeof(kSegments) / sizeof(kSegments[0]))]);
  if (flags & 4) {
    size_t nl = rest.find('\n');
    target += "?" + std::string(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  const std::string token = (flags & 2) ? "" : (flags & 1) ? world->user() : world->admin();
  api::ApiResponse r;
  try {
    r = world->Call(method, target, token, std::string(rest));
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "Handle() threw: " + std::string(e.what()).substr(0, 200));
    return false;
  } catch (...) {
    FUZZ_CHECK(false, "Handle() threw a non-std exception");
    return false;
  }
  const std::string what = method + " " + target.substr(0, 120) + " -> " +
                           std::to_string(r.status) + " " + r.body.substr(0, 200);
  FUZZ_CHECK((r.status >= 200 && r.status < 500) || r.status == 503, what);
  if (r.status != 204) {
    json parsed = json::parse(r.body, nullptr, false);
    FUZZ_CHECK(!parsed.is_discarded(), "answer is not JSON: " + what);
    if (r.status >= 400 && !parsed.is_discarded()) {
      FUZZ_CHECK(parsed.is_object() && parsed.contains("code") && parsed.contains("message") &&
                     parsed.contains("details") && parsed["details"].is_object(),
                 "not the error shape: " + what);
    }
  }
  if (r.status == 401 && token == world->admin() && !world->Healthy()) {
    world.reset();  // the input changed the admin's password: start over
  }
  return r.status < 400;
}

}  // namespace bunker::fuzz
