// ApiHandler without sockets: authentication, the ownership model on backup
// locations, validation and the error body. Locations are real file://
// directories (the probe runs against them).

#include "appliance/api/handler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "appliance/auth/password.h"
#include "tests/harness/temp_dir.h"

namespace bunker::api {
namespace {

using json = nlohmann::json;

struct Reply {
  int status = 0;
  json body;
};

class HandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::Create("handler-test");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
    auto store = store::OpenSqliteStore((dir_.path() / "bunker.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    crypto::Key key{};
    key.fill(0x42);
    box_ = std::make_unique<auth::SecretBox>(key);
    HandlerOptions options;
    options.max_body_bytes = 64 << 10;
    options.file_location_roots = {dir_.path().string()};
    handler_ = std::make_unique<ApiHandler>(store_.get(), box_.get(), &metrics_, nullptr, options,
                                            [this] { return now_; });
    handler_->SetReady(true);
    store::UserRecord admin{0, "admin", "admin", *auth::HashPassword("admin-password"), now_};
    ASSERT_TRUE(store_->CreateUser(admin).ok());
    admin_ = Login("admin", "admin-password");
    ASSERT_FALSE(admin_.empty());
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body = "") {
    ApiRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    if (!token.empty()) {
      req.headers["authorization"] = "Bearer " + token;
    }
    ApiResponse res = handler_->Handle(req);
    Reply r;
    r.status = res.status;
    if (res.content_type == "application/json") {
      r.body = json::parse(res.body, nullptr, false);
      EXPECT_FALSE(r.body.is_discarded()) << res.body;
    }
    if (res.status >= 400) {
      // The one error shape.
      EXPECT_TRUE(r.body.contains("code") && r.body.contains("message") &&
                  r.body["details"].is_object())
          << res.body;
    }
    return r;
  }

  std::string Login(const std::string& user, const std::string& password) {
    Reply r =
        Call("POST", "/api/v1/login", "", json{{"username", user}, {"password", password}}.dump());
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.status == 201 ? r.body["token"].get<std::string>() : "";
  }

  std::string AddUser(const std::string& name) {
    Reply r = Call("POST", "/api/v1/users", admin_,
                   json{{"name", name}, {"password", name + "-password"}}.dump());
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return Login(name, name + "-password");
  }

  // A file:// location in a fresh directory, created by `token`'s user.
  Reply AddLocation(const std::string& token, const std::string& name, json extra = {}) {
    std::filesystem::path dir = dir_.path() / ("loc-" + name);
    std::filesystem::create_directories(dir);
    json body{{"name", name}, {"type", "file"}, {"url", "file://" + dir.string()}};
    for (auto& [k, v] : extra.items()) {
      body[k] = v;
    }
    return Call("POST", "/api/v1/backup-locations", token, body.dump());
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::SecretBox> box_;
  Metrics metrics_;
  std::unique_ptr<ApiHandler> handler_;
  int64_t now_ = 1'800'000'000;
  std::string admin_;
};

TEST_F(HandlerTest, HealthReadinessMetricsAndOpenApiNeedNoToken) {
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200);
  EXPECT_EQ(Call("GET", "/readyz", "").status, 200);
  handler_->SetReady(false);
  EXPECT_EQ(Call("GET", "/readyz", "").status, 503);
  Reply doc = Call("GET", "/api/v1/openapi.json", "");
  EXPECT_EQ(doc.status, 200);
  EXPECT_EQ(doc.body["openapi"], "3.0.3");
  EXPECT_TRUE(doc.body["paths"].contains("/api/v1/backup-locations/{id}"));
  ApiRequest req{"GET", "/metrics", {}, "", ""};
  ApiResponse m = handler_->Handle(req);
  EXPECT_NE(m.body.find("bunker_http_requests_total{method=\"GET\",route=\"/healthz\","
                        "status=\"200\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("bunker_http_request_duration_seconds_count{route=\"/readyz\"} 2"),
            std::string::npos);
}

TEST_F(HandlerTest, LoginFailuresAreUniform) {
  Reply wrong =
      Call("POST", "/api/v1/login", "", json{{"username", "admin"}, {"password", "nope"}}.dump());
  Reply unknown =
      Call("POST", "/api/v1/login", "", json{{"username", "ghost"}, {"password", "nope"}}.dump());
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(wrong.body, unknown.body);
}

TEST_F(HandlerTest, RepeatedLoginFailuresAreThrottled) {
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(
        Call("POST", "/api/v1/login", "", R"({"username":"admin","password":"wrong"})").status,
        401);
  }
  ApiRequest req{"POST",
                 "/api/v1/login",
                 {},
                 R"({"username":"admin","password":"admin-password"})",
                 "10.0.0.1:5000"};
  ApiResponse raw = handler_->Handle(req);
  EXPECT_EQ(raw.status, 201) << "another address is not throttled";
  Reply refused =
      Call("POST", "/api/v1/login", "", R"({"username":"admin","password":"admin-password"})");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body["code"], "too_many_requests");
  req.remote = "";
  raw = handler_->Handle(req);
  ASSERT_EQ(raw.status, 429);
  std::string retry_after;
  for (const auto& [k, v] : raw.headers) {
    if (k == "Retry-After") {
      retry_after = v;
    }
  }
  ASSERT_FALSE(retry_after.empty());
  EXPECT_EQ(std::stoi(retry_after), 300);  // the window, counted from the first failure
  now_ += std::stoi(retry_after) - 1;
  EXPECT_EQ(Call("POST", "/api/v1/login", "", R"({"username":"admin","password":"admin-password"})")
                .status,
            429);
  now_ += 1;
  EXPECT_FALSE(Login("admin", "admin-password").empty());
}

// Failures over many user names from one address (password spraying) are
// limited too; a success does not clear them; other addresses are free.
TEST_F(HandlerTest, PasswordSprayingFromOneAddressIsThrottled) {
  HandlerOptions options;
  options.login_max_failures_per_address = 4;
  handler_ = std::make_unique<ApiHandler>(store_.get(), box_.get(), &metrics_, nullptr, options,
                                          [this] { return now_; });
  auto login = [&](const std::string& user, const std::string& password,
                   const std::string& remote) {
    ApiRequest req{"POST",
                   "/api/v1/login",
                   {},
                   json{{"username", user}, {"password", password}}.dump(),
                   remote};
    return handler_->Handle(req).status;
  };
  EXPECT_EQ(login("u1", "guess", "10.1.1.1:1000"), 401);
  EXPECT_EQ(login("u2", "guess", "10.1.1.1:1001"), 401);
  EXPECT_EQ(login("admin", "admin-password", "10.1.1.1:1002"), 201);
  EXPECT_EQ(login("u3", "guess", "10.1.1.1:1003"), 401);
  EXPECT_EQ(login("u4", "guess", "10.1.1.1:1004"), 401);
  EXPECT_EQ(login("u5", "guess", "10.1.1.1:1005"), 429);
  EXPECT_EQ(login("admin", "admin-password", "10.1.1.1:1006"), 429);
  EXPECT_EQ(login("admin", "admin-password", "10.2.2.2:1000"), 201);
  now_ += 301;
  EXPECT_EQ(login("admin", "admin-password", "10.1.1.1:1007"), 201);
}

TEST_F(HandlerTest, TokensExpireAndCanBeRevoked) {
  EXPECT_EQ(Call("GET", "/api/v1/users/me", admin_).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/users/me", "").status, 401);
  EXPECT_EQ(Call("GET", "/api/v1/users/me", "bkr_00").status, 401);
  Reply tokens = Call("GET", "/api/v1/tokens", admin_);
  ASSERT_EQ(tokens.status, 200);
  ASSERT_EQ(tokens.body["items"].size(), 1u);
  EXPECT_FALSE(tokens.body.dump().find(admin_) != std::string::npos);  // never shown again
  std::string second = Login("admin", "admin-password");
  std::string id = tokens.body["items"][0]["id"];
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/" + id, second).status, 204);
  EXPECT_EQ(Call("GET", "/api/v1/users/me", admin_).status, 401);
  EXPECT_EQ(Call("GET", "/api/v1/users/me", second).status, 200);
  now_ += 25 * 3600;  // default lifetime is 24 h
  EXPECT_EQ(Call("GET", "/api/v1/users/me", second).status, 401);
}

TEST_F(HandlerTest, UsersSeeOnlyTheirOwnTokens) {
  std::string alice = AddUser("alice");
  Reply admin_tokens = Call("GET", "/api/v1/tokens", admin_);
  std::string admin_token_id = admin_tokens.body["items"][0]["id"];
  EXPECT_EQ(Call("GET", "/api/v1/tokens", alice).body["items"].size(), 1u);
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/" + admin_token_id, alice).status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/users", alice).status, 403);
  EXPECT_EQ(Call("POST", "/api/v1/users", alice, R"({"name":"x","password":"12345678"})").status,
            403);
}

// {owner, READ grantee, FULL grantee, group READ grantee, other user, admin}
// × {list, get, list grants, grant, delete} on one backup location.
TEST_F(HandlerTest, LocationAccessMatrix) {
  std::string owner = AddUser("owner");
  std::string reader = AddUser("reader");
  std::string full = AddUser("full");
  std::string member = AddUser("member");
  std::string other = AddUser("other");
  AddUser("extra");  // receives grants during the matrix
  ASSERT_EQ(Call("POST", "/api/v1/groups", admin_, R"({"name":"ops","members":["member"]})").status,
            201);
  Reply loc = AddLocation(owner, "nas");
  ASSERT_EQ(loc.status, 201) << loc.body.dump();
  std::string path = "/api/v1/backup-locations/" + std::to_string(loc.body["id"].get<int>());
  auto grant = [&](const std::string& token, const std::string& kind, const std::string& who,
                   const std::string& access) {
    return Call("POST", path + "/grants", token,
                json{{"grantee_type", kind}, {"grantee", who}, {"access", access}}.dump());
  };
  ASSERT_EQ(grant(owner, "user", "reader", "READ").status, 201);
  ASSERT_EQ(grant(owner, "user", "full", "FULL").status, 201);
  ASSERT_EQ(grant(owner, "group", "ops", "READ").status, 201);
  EXPECT_EQ(grant(owner, "user", "reader", "FULL").status, 409);  // one grant per grantee

  struct Cell {
    std::string who;
    std::string token;
    bool sees;
    std::string access;
    int grant_status;
  };
  std::vector<Cell> cells = {
      {"owner", owner, true, "owner", 201}, {"reader", reader, true, "READ", 403},
      {"full", full, true, "FULL", 201},    {"member", member, true, "READ", 403},
      {"other", other, false, "", 404},     {"admin", admin_, true, "owner", 201}};
  for (const Cell& c : cells) {
    SCOPED_TRACE(c.who);
    Reply list = Call("GET", "/api/v1/backup-locations", c.token);
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.body["items"].size(), c.sees ? 1u : 0u);
    Reply get = Call("GET", path, c.token);
    EXPECT_EQ(get.status, c.sees ? 200 : 404);
    if (c.sees) {
      EXPECT_EQ(get.body["access"], c.access);
    }
    EXPECT_EQ(Call("GET", path + "/grants", c.token).status, c.sees ? 200 : 404);
    // Granting "extra" READ: owner, FULL grantees and admins may (later ones get 409).
    int status = grant(c.token, "user", "extra", "READ").status;
    if (c.grant_status == 201) {
      EXPECT_TRUE(status == 201 || status == 409) << status;
    } else {
      EXPECT_EQ(status, c.grant_status);
    }
  }
  EXPECT_EQ(Call("GET", path, other).status, 404);
  EXPECT_EQ(Call("DELETE", path, other).status, 404);
  EXPECT_EQ(Call("DELETE", path, reader).status, 403);
  EXPECT_EQ(Call("DELETE", path, member).status, 403);
  EXPECT_EQ(Call("DELETE", path, full).status, 204);  // FULL may delete
  EXPECT_EQ(Call("GET", path, owner).status, 404);

  Reply again = AddLocation(owner, "nas2");
  ASSERT_EQ(again.status, 201);
  EXPECT_EQ(Call("DELETE",
                 "/api/v1/backup-locations/" + std::to_string(again.body["id"].get<int>()), admin_)
                .status,
            204);  // admins may delete anything
}

TEST_F(HandlerTest, BadInputNamesTheFieldAndStoresNothing) {
  struct Case {
    std::string body;
    int status;
    std::string field;  // expected in details.fields, "" for none
  };
  std::filesystem::create_directories(dir_.path() / "bad");
  std::string url = "file://" + (dir_.path() / "bad").string();
  std::vector<Case> cases = {
      {"{", 400, ""},
      {"[1,2]", 400, ""},
      {"", 400, ""},
      {json{{"name", 5}, {"type", "file"}, {"url", url}}.dump(), 400, "name"},
      {json{{"name", "Bad Name"}, {"type", "file"}, {"url", url}}.dump(), 400, "name"},
      {json{{"name", "ok"}, {"type", "file"}, {"url", url}, {"bogus", 1}}.dump(), 400, "bogus"},
      {json{{"name", "ok"}, {"type", "file"}}.dump(), 400, "url"},
      {json{{"name", "ok"}, {"type", "tape"}, {"url", url}}.dump(), 400, "type"},
      {json{{"name", "ok"}, {"type", "nfs"}, {"url", url}}.dump(), 400, "url"},
      {json{{"name", "ok"}, {"type", "file"}, {"url", url}, {"region", "x"}}.dump(), 400, "region"},
      {json{{"name", "ok"},
            {"type", "file"},
            {"url", "file://" + (dir_.path() / "missing").string()}}
           .dump(),
       422, ""},
      {std::string(70 << 10, ' '), 413, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 120));
    Reply r = Call("POST", "/api/v1/backup-locations", admin_, c.body);
    EXPECT_EQ(r.status, c.status) << r.body.dump();
    if (!c.field.empty()) {
      EXPECT_TRUE(r.body["details"]["fields"].contains(c.field)) << r.body.dump();
      EXPECT_NE(r.body["message"].get<std::string>().find(c.field), std::string::npos);
    }
  }
  EXPECT_TRUE(Call("GET", "/api/v1/backup-locations", admin_).body["items"].empty());
  EXPECT_EQ(Call("GET", "/api/v1/nothing", admin_).status, 404);
  EXPECT_EQ(Call("PUT", "/api/v1/backup-locations", admin_).status, 405);
  EXPECT_EQ(Call("GET", "/api/v1/backup-locations?limit=0", admin_).status, 400);
  EXPECT_EQ(Call("GET", "/api/v1/backup-locations/abc", admin_).status, 404);
}

// An S3 location is probed with the keys given for it; they are stored
// sealed and never shown.
TEST_F(HandlerTest, S3ProbeUsesTheLocationsOwnKeys) {
  backend::BackendOptions seen;
  handler_ = std::make_unique<ApiHandler>(
      store_.get(), box_.get(), &metrics_,
      [&seen](const std::string&, const backend::BackendOptions& options) {
        seen = options;
        return Status::Ok();
      },
      HandlerOptions{}, [this] { return now_; });
  Reply r = Call("POST", "/api/v1/backup-locations", admin_,
                 json{{"name", "minio"},
                      {"type", "s3"},
                      {"url", "s3://bucket/prefix"},
                      {"endpoint", "http://127.0.0.1:9"},
                      {"access_key_id", "AKIDLOCATION"},
                      {"secret_access_key", "location-secret-key"}}
                     .dump());
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(seen.s3_access_key_id, "AKIDLOCATION");
  EXPECT_EQ(seen.s3_secret_access_key, "location-secret-key");
  EXPECT_EQ(seen.s3_endpoint, "http://127.0.0.1:9");
  EXPECT_EQ(r.body.dump().find("location-secret-key"), std::string::npos);
  EXPECT_EQ(r.body.dump().find("AKIDLOCATION"), std::string::npos);
  // Without keys bunkerd's own credentials would sign: admins only.
  std::string bob = AddUser("bob");
  json keyless{{"name", "keyless"}, {"type", "s3"}, {"url", "s3://bucket/other"}};
  Reply refused = Call("POST", "/api/v1/backup-locations", bob, keyless.dump());
  EXPECT_EQ(refused.status, 403) << refused.body.dump();
  EXPECT_TRUE(refused.body["details"]["fields"].contains("access_key_id"));
  keyless["access_key_id"] = "AKIDBOB";
  keyless["secret_access_key"] = "bob-secret";
  EXPECT_EQ(Call("POST", "/api/v1/backup-locations", bob, keyless.dump()).status, 201);
  EXPECT_EQ(seen.s3_access_key_id, "AKIDBOB");
  keyless.erase("access_key_id");
  keyless.erase("secret_access_key");
  keyless["name"] = "admins-keyless";
  EXPECT_EQ(Call("POST", "/api/v1/backup-locations", admin_, keyless.dump()).status, 201);
}

// Without file_location_roots, file:// locations are for admins only.
TEST_F(HandlerTest, FileLocationsAreForAdminsWithoutRoots) {
  handler_ = std::make_unique<ApiHandler>(store_.get(), box_.get(), &metrics_, nullptr,
                                          HandlerOptions{}, [this] { return now_; });
  std::string bob = AddUser("bob");
  Reply refused = AddLocation(bob, "mine");
  EXPECT_EQ(refused.status, 403) << refused.body.dump();
  EXPECT_EQ(refused.body["code"], "permission_denied");
  EXPECT_NE(refused.body["message"].get<std::string>().find("admins only"), std::string::npos);
  EXPECT_TRUE(refused.body["details"]["fields"].contains("url"));
  // Other location types are not affected by the rule (this one fails its
  // probe: no such NFS server).
  Reply nfs = Call("POST", "/api/v1/backup-locations", bob,
                   R"({"name":"n","type":"nfs","url":"nfs://127.0.0.1:1/export"})");
  EXPECT_NE(nfs.status, 403) << nfs.body.dump();
  EXPECT_EQ(AddLocation(admin_, "admins").status, 201);
  EXPECT_EQ(Call("GET", "/api/v1/backup-locations", bob).body["items"].size(), 0u);
}

// With roots: inside after resolving ".." and symlinks, and the stored URL
// is the resolved path; escapes are refused and nothing is written there.
TEST_F(HandlerTest, UserFileLocationsMustResolveInsideARoot) {
  std::string bob = AddUser("bob");
  auto outside = testing::TempDir::Create("handler-outside");
  ASSERT_TRUE(outside.ok());
  std::filesystem::create_directories(dir_.path() / "in" / "deeper");
  std::filesystem::create_directory_symlink(outside->path(), dir_.path() / "in" / "out-link");
  auto add = [&](const std::string& name, const std::string& path) {
    return Call("POST", "/api/v1/backup-locations", bob,
                json{{"name", name}, {"type", "file"}, {"url", "file://" + path}}.dump());
  };
  std::string in = (dir_.path() / "in").string();
  for (const std::string& escape :
       {outside->path().string(), in + "/../../" + outside->path().filename().string(),
        in + "/out-link", in + "/out-link/", std::string("/")}) {
    SCOPED_TRACE(escape);
    Reply r = add("escape", escape);
    EXPECT_EQ(r.status, 403) << r.body.dump();
    EXPECT_NE(r.body["details"]["fields"]["url"].get<std::string>().find(dir_.path().string()),
              std::string::npos)
        << r.body.dump();
  }
  EXPECT_TRUE(std::filesystem::is_empty(outside->path()));
  Reply ok = add("mine", in + "/deeper/../deeper/");
  ASSERT_EQ(ok.status, 201) << ok.body.dump();
  EXPECT_EQ(ok.body["url"],
            "file://" + std::filesystem::canonical(dir_.path() / "in" / "deeper").string());
  // A root given with a trailing slash or through a symlink works the same.
  std::filesystem::create_directory_symlink(dir_.path(), outside->path() / "root-link");
  HandlerOptions options;
  options.file_location_roots = {(outside->path() / "root-link").string() + "/"};
  handler_ = std::make_unique<ApiHandler>(store_.get(), box_.get(), &metrics_, nullptr, options,
                                          [this] { return now_; });
  EXPECT_EQ(add("second", in).status, 201);
}

// Request lines that are not UTF-8 and bodies nested too deep are 4xx, never
// 500 (the messages echo the path).
TEST_F(HandlerTest, OddRequestLinesAndDeepBodiesAreClientErrors) {
  Reply r = Call("GET", "/api/v1/backup-locations/\xff\xfe", admin_);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/\xc3(", admin_).status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/backup-locations?name=\xff", admin_).status, 200);
  std::string deep =
      R"({"name":"p","labels":)" + std::string(100, '[') + std::string(100, ']') + "}";
  Reply nested = Call("POST", "/api/v1/schedule-policies", admin_, deep);
  EXPECT_EQ(nested.status, 400) << nested.body.dump();
  EXPECT_NE(nested.body["message"].get<std::string>().find("nests deeper"), std::string::npos);
}

// Which requests the server moves off its network threads.
TEST_F(HandlerTest, ClassifiesSlowRequests) {
  auto work = [&](const std::string& method, const std::string& target) {
    return handler_->Classify(ApiRequest{method, target, {}, "", ""});
  };
  using W = ApiHandler::Work;
  EXPECT_EQ(work("POST", "/api/v1/login"), W::kCompute);
  EXPECT_EQ(work("POST", "/api/v1/users"), W::kCompute);
  EXPECT_EQ(work("PATCH", "/api/v1/users/me"), W::kCompute);
  EXPECT_EQ(work("POST", "/api/v1/clusters"), W::kWait);
  EXPECT_EQ(work("PATCH", "/api/v1/clusters/3"), W::kWait);
  EXPECT_EQ(work("POST", "/api/v1/clusters/3/probe?x=1"), W::kWait);
  EXPECT_EQ(work("POST", "/api/v1/backup-locations"), W::kWait);
  EXPECT_EQ(work("GET", "/healthz"), W::kQuick);
  EXPECT_EQ(work("GET", "/api/v1/clusters"), W::kQuick);
  EXPECT_EQ(work("PATCH", "/api/v1/backup-locations/1"), W::kQuick);
  EXPECT_EQ(work("GET", "/nowhere"), W::kQuick);
}

// Answers the server writes itself are counted under their route (or
// "unmatched"); methods outside HTTP's are one "other" label.
TEST_F(HandlerTest, ServerAnswersAreCounted) {
  handler_->RecordServerResponse("POST", "/api/v1/backup-locations?x=1", 413, 0.01, "1.2.3.4:5");
  handler_->RecordServerResponse("", "", 400, 0.0, "");
  handler_->RecordServerResponse("BREW", "/coffee", 404, 0.0, "");
  ApiResponse m = handler_->Handle(ApiRequest{"GET", "/metrics", {}, "", ""});
  for (
      const char* sample :
      {R"(bunker_http_requests_total{method="POST",route="/api/v1/backup-locations",status="413"} 1)",
       R"(bunker_http_requests_total{method="-",route="unmatched",status="400"} 1)",
       R"(bunker_http_requests_total{method="other",route="unmatched",status="404"} 1)"}) {
    EXPECT_NE(m.body.find(sample), std::string::npos) << sample << "\n" << m.body;
  }
}

TEST_F(HandlerTest, SecretsAreWriteOnlyAndEncryptedAtRest) {
  Reply r = AddLocation(admin_, "vault", json{{"repository_password", "hunter2-very-secret"}});
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["has_repository_password"], true);
  Reply got =
      Call("GET", "/api/v1/backup-locations/" + std::to_string(r.body["id"].get<int>()), admin_);
  EXPECT_EQ(got.body.dump().find("hunter2"), std::string::npos);
  store_.reset();  // close, then look at the raw files
  for (const char* f : {"bunker.db", "bunker.db-wal"}) {
    auto raw = testing::ReadFile(dir_.path() / f);
    if (raw.ok()) {
      EXPECT_EQ(raw->find("hunter2"), std::string::npos) << f;
    }
  }
}

// openapi.json documents exactly the routes the handler serves: every
// (method, path) in one is in the other, every path parameter is declared,
// and every operation lists its responses.
TEST(OpenApiTest, DocumentsEveryRouteAndNothingElse) {
  json doc = json::parse(OpenApiDocument(), nullptr, false);
  ASSERT_TRUE(doc.is_object());
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      documented.emplace(upper, path);
      EXPECT_TRUE(op.contains("responses") && !op["responses"].empty()) << method << " " << path;
      for (size_t at = path.find('{'); at != std::string::npos; at = path.find('{', at + 1)) {
        std::string name = path.substr(at + 1, path.find('}', at) - at - 1);
        bool declared = false;
        for (const json& p : op.value("parameters", json::array())) {
          declared = declared || (p["in"] == "path" && p["name"] == name);
        }
        EXPECT_TRUE(declared) << method << " " << path << " does not declare {" << name << "}";
      }
    }
  }
  std::set<std::pair<std::string, std::string>> served;
  for (const auto& route : ApiRoutes()) {
    served.insert(route);
  }
  for (const auto& r : served) {
    EXPECT_TRUE(documented.count(r)) << "served but not documented: " << r.first << " " << r.second;
  }
  for (const auto& r : documented) {
    EXPECT_TRUE(served.count(r)) << "documented but not served: " << r.first << " " << r.second;
  }
  EXPECT_GE(served.size(), 60u);
}

TEST_F(HandlerTest, PaginationWalksEverything) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(AddLocation(admin_, "l" + std::to_string(i)).status, 201);
  }
  std::vector<std::string> names;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    Reply r = Call("GET", "/api/v1/backup-locations?limit=2" + after, admin_);
    ASSERT_EQ(r.status, 200);
    for (const json& item : r.body["items"]) {
      names.push_back(item["name"]);
    }
    if (r.body["next_after"].is_null()) {
      break;
    }
    after = "&after=" + std::to_string(r.body["next_after"].get<int>());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"l0", "l1", "l2", "l3", "l4"}));
}

// Lists answer from one store query per page: a user who is not an admin
// walks, through next_after, exactly what they own and what is granted to
// them or their group, with the access of each, whatever the page size.
TEST_F(HandlerTest, ListPagesShowOnlyWhatTheCallerMaySee) {
  std::string owner = AddUser("owner");
  std::string member = AddUser("member");
  ASSERT_EQ(Call("POST", "/api/v1/groups", admin_, R"({"name":"ops","members":["member"]})").status,
            201);
  std::vector<int> ids;
  for (int i = 0; i < 8; ++i) {
    Reply r = AddLocation(i % 3 == 0 ? member : owner, "l" + std::to_string(i));
    ASSERT_EQ(r.status, 201) << r.body.dump();
    ids.push_back(r.body["id"].get<int>());
  }
  auto grant = [&](int id, const std::string& kind, const std::string& who,
                   const std::string& access) {
    return Call("POST", "/api/v1/backup-locations/" + std::to_string(id) + "/grants", owner,
                json{{"grantee_type", kind}, {"grantee", who}, {"access", access}}.dump())
        .status;
  };
  ASSERT_EQ(grant(ids[1], "group", "ops", "READ"), 201);
  ASSERT_EQ(grant(ids[4], "user", "member", "FULL"), 201);
  ASSERT_EQ(grant(ids[5], "group", "ops", "READ"), 201);
  ASSERT_EQ(grant(ids[5], "user", "member", "FULL"), 201);  // the higher grant wins
  // member owns l0, l3, l6; sees l1 (group READ), l4 (FULL), l5 (FULL).
  std::vector<std::pair<std::string, std::string>> want = {{"l0", "owner"}, {"l1", "READ"},
                                                           {"l3", "owner"}, {"l4", "FULL"},
                                                           {"l5", "FULL"},  {"l6", "owner"}};
  for (int limit : {1, 4, 1000}) {
    SCOPED_TRACE(limit);
    std::vector<std::pair<std::string, std::string>> seen;
    std::string after;
    for (int page = 0; page < 20; ++page) {
      Reply r =
          Call("GET", "/api/v1/backup-locations?limit=" + std::to_string(limit) + after, member);
      ASSERT_EQ(r.status, 200);
      EXPECT_LE(r.body["items"].size(), static_cast<size_t>(limit));
      for (const json& item : r.body["items"]) {
        seen.emplace_back(item["name"], item["access"]);
      }
      if (r.body["next_after"].is_null()) {
        break;
      }
      EXPECT_EQ(r.body["next_after"], r.body["items"].back()["id"]);
      after = "&after=" + std::to_string(r.body["next_after"].get<int>());
    }
    EXPECT_EQ(seen, want);
  }
  // A name filter never reveals an invisible object; a visible one is found.
  EXPECT_EQ(Call("GET", "/api/v1/backup-locations?name=l2", member).body["items"].size(), 0u);
  Reply named = Call("GET", "/api/v1/backup-locations?name=l4", member);
  ASSERT_EQ(named.body["items"].size(), 1u);
  EXPECT_EQ(named.body["items"][0]["access"], "FULL");
  EXPECT_TRUE(named.body["next_after"].is_null());
  // Exactly `limit` left: no next page.
  Reply last =
      Call("GET", "/api/v1/backup-locations?limit=2&after=" + std::to_string(ids[4]), member);
  EXPECT_EQ(last.body["items"].size(), 2u);
  EXPECT_TRUE(last.body["next_after"].is_null());
  // Bad paging parameters are still one 400 naming both.
  Reply bad = Call("GET", "/api/v1/backup-locations?limit=0&after=x", member);
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(bad.body["details"]["fields"].contains("limit"));
  EXPECT_TRUE(bad.body["details"]["fields"].contains("after"));
  // Users and groups page the same way (admins only).
  Reply users = Call("GET", "/api/v1/users?limit=1", admin_);
  ASSERT_EQ(users.status, 200);
  EXPECT_EQ(users.body["items"].size(), 1u);
  EXPECT_EQ(users.body["next_after"], users.body["items"][0]["id"]);
  EXPECT_EQ(Call("GET", "/api/v1/users?limit=1", member).status, 403);
  Reply groups = Call("GET", "/api/v1/groups?name=ops", admin_);
  ASSERT_EQ(groups.body["items"].size(), 1u);
  EXPECT_EQ(groups.body["items"][0]["member_ids"].size(), 1u);
}

}  // namespace
}  // namespace bunker::api
