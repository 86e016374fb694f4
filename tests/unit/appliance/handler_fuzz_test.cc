// ApiHandler against random input: every POST and PATCH route gets a few
// thousand generated bodies (random types, extreme numbers, deep nesting,
// invalid UTF-8, truncated JSON, known field names with wrong values) and
// generated targets (real ids, garbage ids, bytes that are not UTF-8), as an
// admin and as a user. The handler must never throw and never answer 500:
// bad input is always a 4xx in the one error shape. Probes are injected (no
// storage or network is touched). The seed is fixed; BUNKER_FUZZ_SEED
// overrides it and BUNKER_FUZZ_ITERATIONS the count.

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "appliance/api/handler.h"
#include "appliance/auth/password.h"
#include "tests/harness/temp_dir.h"

namespace bunker::api {
namespace {

using json = nlohmann::json;

// Every field name any route reads.
const std::vector<std::string> kFields = {"name",
                                          "password",
                                          "role",
                                          "members",
                                          "user_id",
                                          "group_id",
                                          "grantee_type",
                                          "grantee",
                                          "access",
                                          "description",
                                          "username",
                                          "type",
                                          "url",
                                          "endpoint",
                                          "region",
                                          "addressing_style",
                                          "access_key_id",
                                          "secret_access_key",
                                          "repository_password",
                                          "kubeconfig",
                                          "context",
                                          "data_mover",
                                          "schedule",
                                          "kind",
                                          "every_minutes",
                                          "at",
                                          "days",
                                          "day",
                                          "retain",
                                          "incrementals_between_fulls",
                                          "actions",
                                          "namespace",
                                          "pod_selector",
                                          "container",
                                          "command",
                                          "all_pods",
                                          "timeout_seconds",
                                          "abort_on_failure",
                                          "cluster_id",
                                          "location_id",
                                          "namespaces",
                                          "label_selector",
                                          "pre_rule_id",
                                          "post_rule_id",
                                          "schedule_policy_id",
                                          "labels",
                                          "backup_id",
                                          "namespace_mapping",
                                          "storage_class_mapping",
                                          "project_mapping",
                                          "replace_policy"};

const std::vector<std::string> kWords = {"",
                                         "x",
                                         "admin",
                                         "user",
                                         "READ",
                                         "FULL",
                                         "file",
                                         "nfs",
                                         "s3",
                                         "csi",
                                         "generic",
                                         "interval",
                                         "daily",
                                         "weekly",
                                         "monthly",
                                         "02:30",
                                         "24:61",
                                         "mon",
                                         "full",
                                         "incremental",
                                         "retain",
                                         "replace",
                                         "path",
                                         "auto",
                                         "shop",
                                         "default",
                                         "file:///tmp/fuzz",
                                         "s3://bucket/p",
                                         "nfs://host/export",
                                         "file://relative",
                                         "../../etc",
                                         "a-b.c_d",
                                         "-bad-",
                                         "UPPER",
                                         "ünï",
                                         "12345678",
                                         "\u00e9\u4e2d",
                                         "null",
                                         "{",
                                         "\"",
                                         "\\",
                                         "kubeconfig: [",
                                         "me"};

class HandlerFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);  // thousands of request lines otherwise
    auto dir = testing::TempDir::Create("handler-fuzz");
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(dir).value();
    auto store = store::OpenSqliteStore((dir_.path() / "bunker.db").string());
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    crypto::Key key{};
    key.fill(7);
    box_ = std::make_unique<auth::SecretBox>(key);
    HandlerOptions options;
    options.max_body_bytes = 256 << 10;
    options.cluster_prober = [](const kube::KubeConfig&) {
      return kube::ProbeResult{false, "not probed in this test", ""};
    };
    options.file_location_roots = {dir_.path().string()};
    handler_ = std::make_unique<ApiHandler>(
        store_.get(), box_.get(), &metrics_,
        [](const std::string& url, const backend::BackendOptions&) {
          return url.find("fail") == std::string::npos ? Status::Ok()
                                                       : Unavailable("probe: injected failure");
        },
        options);
    handler_->SetReady(true);
    ASSERT_TRUE(
        store_->CreateUser({0, "admin", "admin", *auth::HashPassword("admin-password"), 1}).ok());
    admin_ = Token("admin", "admin-password");
    ASSERT_TRUE(
        Call("POST", "/api/v1/users", admin_, R"({"name":"alice","password":"alice-password"})")
            .status == 201);
    user_ = Token("alice", "alice-password");
    // One object of each kind, so PATCH and sub-routes reach their body checks.
    Created("/api/v1/groups", R"({"name":"ops","members":["alice"]})");
    Created(
        "/api/v1/backup-locations",
        json{{"name", "nas"}, {"type", "file"}, {"url", "file://" + dir_.path().string()}}.dump());
    Created("/api/v1/clusters",
            json{{"name", "prod"},
                 {"kubeconfig",
                  "current-context: x\nclusters:\n- name: x\n  cluster:\n    server: "
                  "https://127.0.0.1:1\ncontexts:\n- name: x\n  context:\n    cluster: x\n"}}
                .dump());
    Created("/api/v1/schedule-policies",
            R"({"name":"p","schedule":{"kind":"daily","at":"02:30"},"retain":3})");
    Created("/api/v1/rules", R"({"name":"r","actions":[{"namespace":"shop","command":"sync"}]})");
    Created("/api/v1/backups",
            R"({"name":"b","cluster_id":1,"location_id":1,"namespaces":["shop"]})");
    Created("/api/v1/restores", R"({"name":"rs","backup_id":1,"cluster_id":1})");
  }

  struct Reply {
    int status = 0;
    std::string body;
  };

  Reply Call(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body) {
    ApiRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.remote = "127.0.0.1:1";
    if (!token.empty()) {
      req.headers["authorization"] = "Bearer " + token;
    }
    ApiResponse res = handler_->Handle(req);
    return {res.status, res.body};
  }

  std::string Token(const std::string& user, const std::string& password) {
    Reply r =
        Call("POST", "/api/v1/login", "", json{{"username", user}, {"password", password}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body, nullptr, false).value("token", "");
  }

  void Created(const std::string& path, const std::string& body) {
    Reply r = Call("POST", path, admin_, body);
    ASSERT_EQ(r.status, 201) << path << ": " << r.body;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::SecretBox> box_;
  Metrics metrics_;
  std::unique_ptr<ApiHandler> handler_;
  std::string admin_;
  std::string user_;
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool OneIn(size_t n) { return Below(n) == 0; }

  json Value(int depth) {
    switch (Below(depth > 4 ? 6 : 9)) {
      case 0:
        return nullptr;
      case 1:
        return OneIn(2);
      case 2: {
        static const int64_t kInts[] = {0,    1,      -1,        2,         7,        31,
                                        1000, 100001, INT32_MAX, INT64_MAX, INT64_MIN};
        return kInts[Below(std::size(kInts))];
      }
      case 3:
        return OneIn(2) ? json(UINT64_MAX) : json(OneIn(2) ? 1e308 : -0.5);
      case 4:
        return kWords[Below(kWords.size())];
      case 5:
        return OneIn(20) ? std::string(Below(5000), 'a') : kWords[Below(kWords.size())] + "x";
      case 6: {
        json a = json::array();
        for (size_t i = Below(4); i > 0; --i) {
          a.push_back(Value(depth + 1));
        }
        return a;
      }
      default:
        return Object(depth + 1);
    }
  }

  json Object(int depth) {
    json o = json::object();
    for (size_t i = Below(6); i > 0; --i) {
      const std::string& key =
          OneIn(10) ? kWords[Below(kWords.size())] : kFields[Below(kFields.size())];
      o[key] = key.ends_with("_id") && OneIn(2) ? json(1 + Below(3)) : Value(depth);
    }
    return o;
  }

  // A body: mostly a random object, sometimes broken text.
  std::string Body() {
    std::string text = Object(0).dump();
    switch (Below(12)) {
      case 0:
        return text.substr(0, Below(text.size() + 1));  // truncated
      case 1: {
        std::string bytes = "\xff\xfe\xc3\x28\xed\xa0\x80";  // invalid UTF-8
        text.insert(Below(text.size() + 1), bytes.substr(Below(bytes.size())));
        return text;
      }
      case 2: {
        size_t depth = OneIn(2) ? 40 : 100000;
        std::string open = OneIn(2) ? "[" : "{\"name\":";
        std::string deep;
        for (size_t i = 0; i < depth; ++i) {
          deep += open;
        }
        return "{\"labels\":" + deep;
      }
      case 3:
        return R"({"retain":1e400,"name":"x"})";
      case 4:
        return R"({"retain":123456789012345678901234567890,"every_minutes":-0})";
      case 5:
        return R"({"name":"dup","name":"dup2","url":"\ud800"})";
      case 6:
        return OneIn(2) ? "[]" : "\"just a string\"";
      default:
        return text;
    }
  }

  // Mostly ids of the objects SetUp made (so routes reach their body
  // checks), sometimes garbage.
  std::string Segment() {
    static const std::vector<std::string> kIds = {"me",  "0",        "-1",  "99999999999999999999",
                                                  "abc", "\xff\xfe", "%00", ""};
    return OneIn(4) ? kIds[Below(kIds.size())] : std::to_string(1 + Below(2));
  }

  // `pattern` with each {…} replaced by a generated segment.
  std::string Target(const std::string& pattern) {
    std::string out;
    for (size_t i = 0; i < pattern.size(); ++i) {
      if (pattern[i] == '{') {
        out += Segment();
        i = pattern.find('}', i);
      } else {
        out += pattern[i];
      }
    }
    if (OneIn(8)) {
      out += "?limit=" + Segment() + "&name=\xc3&after=" + Segment();
    }
    return out;
  }

 private:
  std::mt19937_64 rng_;
};

uint64_t SeedOr(uint64_t fallback) {
  const char* s = std::getenv("BUNKER_FUZZ_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : fallback;
}
int IterationsOr(int fallback) {
  const char* n = std::getenv("BUNKER_FUZZ_ITERATIONS");
  return n != nullptr ? std::atoi(n) : fallback;
}

TEST_F(HandlerFuzzTest, RandomBodiesNeverGiveA500) {
  uint64_t seed = SeedOr(20261126);
  int iterations = IterationsOr(3000);
  std::vector<std::pair<std::string, std::string>> routes;
  for (const auto& route : ApiRoutes()) {
    if (route.first == "POST" || route.first == "PATCH") {
      routes.push_back(route);
    }
  }
  ASSERT_GE(routes.size(), 20u);
  Generator gen(seed);
  std::map<int, int> statuses;
  for (int i = 0; i < iterations; ++i) {
    const auto& [method, pattern] = routes[gen.Below(routes.size())];
    std::string target = gen.Target(pattern);
    std::string body = gen.Body();
    const std::string& token = gen.OneIn(4) ? user_ : admin_;
    Reply r = Call(method, target, token, body);
    statuses[r.status]++;
    ASSERT_TRUE((r.status >= 200 && r.status < 500) || r.status == 503)
        << "seed " << seed << " iteration " << i << ": " << method << " " << target << " "
        << body.substr(0, 300) << " -> " << r.status << " " << r.body;
    json parsed = json::parse(r.body, nullptr, false);
    if (r.status != 204) {
      ASSERT_FALSE(parsed.is_discarded()) << method << " " << target << " -> " << r.body;
    }
    if (r.status >= 400) {
      ASSERT_TRUE(parsed.contains("code") && parsed.contains("message") &&
                  parsed["details"].is_object())
          << r.body;
    }
  }
  // The generator reaches more than the body parser: some requests succeed.
  EXPECT_GT(statuses[400], 0);
  EXPECT_GT(statuses[200] + statuses[201] + statuses[204], 0);
  std::string summary;
  for (const auto& [status, count] : statuses) {
    summary += std::to_string(status) + ":" + std::to_string(count) + " ";
  }
  std::cout << "statuses " << summary << "\n";
}

// Every route, DELETE and GET included, with generated ids and query
// strings (and a body now and then): never a 500 either.
TEST_F(HandlerFuzzTest, RandomTargetsOnEveryRouteNeverGiveA500) {
  uint64_t seed = SeedOr(7);
  Generator gen(seed);
  const std::vector<std::pair<std::string, std::string>> routes = ApiRoutes();
  int iterations = IterationsOr(2000);
  for (int i = 0; i < iterations; ++i) {
    const auto& [method, pattern] = routes[gen.Below(routes.size())];
    std::string target = gen.Target(pattern);
    std::string body = gen.OneIn(4) ? gen.Body() : "";
    Reply r = Call(method, target, gen.OneIn(3) ? user_ : admin_, body);
    ASSERT_TRUE((r.status >= 200 && r.status < 500) || r.status == 503)
        << "seed " << seed << ": " << method << " " << target << " -> " << r.status << " "
        << r.body;
  }
}

}  // namespace
}  // namespace bunker::api
