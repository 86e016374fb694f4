// bunkerd end to end: the real binary in a temp data directory on a free
// loopback port, driven over real HTTPS with curl (verifying bunkerd's
// self-signed certificate), with a NOTIFY_SOCKET this test listens on.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/ports.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"
#include "tests/integration/appliance/bunkerd_fixture.h"

namespace bunker::testing {
namespace {

using json = nlohmann::json;

struct Reply {
  int status = 0;
  json body;
  std::string raw;
};

std::string Bunkerd() { return std::string(BUNKER_BINARY_DIR) + "/appliance/bunkerd/bunkerd"; }

class BunkerdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!FindExecutable("curl").ok()) {
      GTEST_SKIP() << "curl is not installed; these tests drive bunkerd over HTTPS with it";
    }
    auto dir = TempDir::Create("bunkerd");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
    data_ = (dir_.path() / "data").string();
    ASSERT_TRUE(WriteFile(dir_.path() / "admin.pw", "admin-password\n").ok());
    auto init = RunCommand({Bunkerd(), "init", "--data-dir", data_, "--admin-password-file",
                            (dir_.path() / "admin.pw").string()});
    ASSERT_TRUE(init.ok() && init->ok()) << (init.ok() ? init->Describe() : "");
    ASSERT_NO_FATAL_FAILURE(StartServer());
    admin_ = Login("admin", "admin-password");
    ASSERT_FALSE(admin_.empty());
  }

  void TearDown() override {
    if (HasFailure()) {
      auto log = ReadFile(dir_.path() / "bunkerd.log");
      std::cerr << "[bunkerd log]\n" << (log.ok() ? *log : "(none)") << "\n";
    }
  }

  void StartServer(EnvChanges extra_env = {}) {
    auto port = PickFreePort();
    ASSERT_TRUE(port.ok());
    port_ = *port;
    notify_ = std::make_unique<NotifyListener>((dir_.path() / "notify.sock").string());
    ASSERT_TRUE(notify_->bound());
    SpawnOptions options;
    options.env = {"NOTIFY_SOCKET=" + (dir_.path() / "notify.sock").string()};
    options.env.insert(options.env.end(), extra_env.begin(), extra_env.end());
    options.log_path = dir_.path() / "bunkerd.log";
    // Users may create file:// locations in the temp dir (admins only otherwise).
    ASSERT_TRUE(WriteFile(dir_.path() / "bunkerd.yaml",
                          "file_location_roots: [\"" + dir_.path().string() + "\"]\n")
                    .ok());
    auto proc =
        Process::Start({Bunkerd(), "serve", "--config", (dir_.path() / "bunkerd.yaml").string(),
                        "--data-dir", data_, "--listen", "127.0.0.1:" + std::to_string(port_)},
                       options);
    ASSERT_TRUE(proc.ok()) << proc.status().ToString();
    server_ = std::move(proc).value();
    ASSERT_TRUE(notify_->WaitFor("READY=1", std::chrono::seconds(60)))
        << "no READY=1 on NOTIFY_SOCKET";
  }

  std::string StopServer() { return server_.Stop(); }

  std::string Url(const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  Reply Curl(const std::string& method, const std::string& path, const std::string& token = "",
             const std::string& body = "", std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"curl", "-sS",  "--cacert", data_ + "/tls/cert.pem",
                                     "-X",   method, "-w",       "\n%{http_code}"};
    if (!token.empty()) {
      argv.insert(argv.end(), {"-H", "Authorization: Bearer " + token});
    }
    RunOptions options;
    if (!body.empty()) {
      argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
      options.stdin_data = body;
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(Url(path));
    auto run = RunCommand(argv, options);
    Reply r;
    if (!run.ok() || !run->ok()) {
      r.raw = run.ok() ? run->Describe() : run.status().ToString();
      return r;
    }
    size_t nl = run->out.rfind('\n');
    r.status = std::stoi(run->out.substr(nl + 1));
    r.raw = run->out.substr(0, nl);
    r.body = json::parse(r.raw, nullptr, false);
    return r;
  }

  std::string Login(const std::string& user, const std::string& password) {
    Reply r =
        Curl("POST", "/api/v1/login", "", json{{"username", user}, {"password", password}}.dump());
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.status == 201 ? r.body["token"].get<std::string>() : "";
  }

  std::string AddUser(const std::string& name) {
    Reply r = Curl("POST", "/api/v1/users", admin_,
                   json{{"name", name}, {"password", name + "-password"}}.dump());
    EXPECT_EQ(r.status, 201) << r.raw;
    return Login(name, name + "-password");
  }

  Reply AddLocation(const std::string& token, const std::string& name) {
    auto dir = dir_.MakeSubdir("loc-" + name);
    EXPECT_TRUE(dir.ok());
    return Curl("POST", "/api/v1/backup-locations", token,
                json{{"name", name}, {"type", "file"}, {"url", "file://" + dir->string()}}.dump());
  }

  TempDir dir_;
  std::string data_;
  uint16_t port_ = 0;
  std::unique_ptr<NotifyListener> notify_;
  Process server_;
  std::string admin_;
};

TEST_F(BunkerdTest, NotifiesReadyAndServesHealthOverHttps) {
  EXPECT_TRUE(notify_->WaitFor("STATUS=serving https://127.0.0.1:", std::chrono::seconds(1)));
  EXPECT_EQ(Curl("GET", "/healthz").status, 200);
  EXPECT_EQ(Curl("GET", "/readyz").status, 200);
  Reply doc = Curl("GET", "/api/v1/openapi.json");
  EXPECT_EQ(doc.status, 200);
  EXPECT_EQ(doc.body["info"]["title"], "Bunker appliance API");
  Reply metrics = Curl("GET", "/metrics");
  EXPECT_NE(metrics.raw.find("bunker_http_requests_total{method=\"POST\",route=\"/api/v1/login\""),
            std::string::npos)
      << metrics.raw;
}

TEST_F(BunkerdTest, SigtermStopsCleanly) {
  EXPECT_EQ(StopServer(), "exit 0");
  EXPECT_TRUE(notify_->WaitFor("STOPPING=1", std::chrono::seconds(1)));
}

TEST_F(BunkerdTest, CertificateIsVerifiedAndPlainHttpIsRefused) {
  // Without bunkerd's certificate as CA, curl refuses the self-signed one.
  auto run = RunCommand({"curl", "-sS", Url("/healthz")});
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 60) << run->Describe();
  auto plain =
      RunCommand({"curl", "-sS", "http://127.0.0.1:" + std::to_string(port_) + "/healthz"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->ok() && plain->out.find("\"ok\"") != std::string::npos);
  auto tls11 = RunCommand({"curl", "-sS", "--cacert", data_ + "/tls/cert.pem", "--tlsv1.1",
                           "--tls-max", "1.1", Url("/healthz")});
  ASSERT_TRUE(tls11.ok());
  EXPECT_FALSE(tls11->ok()) << "TLS 1.1 must be refused";
}

TEST_F(BunkerdTest, LocationLifecycle) {
  Reply created = AddLocation(admin_, "nas");
  ASSERT_EQ(created.status, 201) << created.raw;
  std::string path = "/api/v1/backup-locations/" + std::to_string(created.body["id"].get<int>());
  Reply list = Curl("GET", "/api/v1/backup-locations", admin_);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["items"].size(), 1u);
  EXPECT_EQ(list.body["items"][0]["name"], "nas");
  EXPECT_EQ(Curl("GET", path, admin_).body["type"], "file");
  EXPECT_EQ(AddLocation(admin_, "nas").status, 409);
  EXPECT_EQ(Curl("DELETE", path, admin_).status, 204);
  EXPECT_EQ(Curl("GET", path, admin_).status, 404);
}

TEST_F(BunkerdTest, LocationAccessByRole) {
  std::string owner = AddUser("owner");
  std::string reader = AddUser("reader");
  std::string full = AddUser("full");
  std::string other = AddUser("other");
  Reply loc = AddLocation(owner, "shared");
  ASSERT_EQ(loc.status, 201) << loc.raw;
  std::string path = "/api/v1/backup-locations/" + std::to_string(loc.body["id"].get<int>());
  for (auto [who, access] : {std::pair{"reader", "READ"}, std::pair{"full", "FULL"}}) {
    ASSERT_EQ(Curl("POST", path + "/grants", owner,
                   json{{"grantee_type", "user"}, {"grantee", who}, {"access", access}}.dump())
                  .status,
              201);
  }
  struct Cell {
    const char* who;
    std::string token;
    int get;
    size_t listed;
  };
  for (const Cell& c :
       {Cell{"owner", owner, 200, 1}, Cell{"reader", reader, 200, 1}, Cell{"full", full, 200, 1},
        Cell{"other", other, 404, 0}, Cell{"admin", admin_, 200, 1}}) {
    SCOPED_TRACE(c.who);
    EXPECT_EQ(Curl("GET", path, c.token).status, c.get);
    EXPECT_EQ(Curl("GET", "/api/v1/backup-locations", c.token).body["items"].size(), c.listed);
  }
  EXPECT_EQ(Curl("DELETE", path, other).status, 404);
  EXPECT_EQ(Curl("DELETE", path, reader).status, 403);
  EXPECT_EQ(Curl("DELETE", path, full).status, 204);
}

TEST_F(BunkerdTest, BadInputIsRefusedAndNothingIsStored) {
  Reply malformed = Curl("POST", "/api/v1/backup-locations", admin_, "{\"name\":");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.body["code"], "malformed_json");
  Reply unknown = Curl("POST", "/api/v1/backup-locations", admin_,
                       R"({"name":"x","type":"file","url":"file:///tmp","colour":"red"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_TRUE(unknown.body["details"]["fields"].contains("colour")) << unknown.raw;
  Reply wrong_type = Curl("POST", "/api/v1/users", admin_, R"({"name":["a"],"password":1})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_TRUE(wrong_type.body["details"]["fields"].contains("name"));
  EXPECT_TRUE(wrong_type.body["details"]["fields"].contains("password"));
  Reply missing = Curl("POST", "/api/v1/backup-locations", admin_, R"({"name":"x"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["details"]["fields"]["url"], "required");
  Reply huge = Curl("POST", "/api/v1/backup-locations", admin_, std::string(2 << 20, ' '));
  EXPECT_EQ(huge.status, 413) << huge.raw;
  EXPECT_EQ(huge.body["code"], "payload_too_large");
  EXPECT_TRUE(Curl("GET", "/api/v1/backup-locations", admin_).body["items"].empty());
  EXPECT_EQ(Curl("GET", "/api/v1/users", admin_).body["items"].size(), 1u);
  EXPECT_EQ(Curl("GET", "/api/v1/users").status, 401);
}

TEST_F(BunkerdTest, ObjectsUsersAndTokensSurviveARestart) {
  std::string bob = AddUser("bob");
  ASSERT_EQ(AddLocation(bob, "bobs").status, 201);
  std::string revoked = Login("bob", "bob-password");
  Reply tokens = Curl("GET", "/api/v1/tokens", revoked);
  ASSERT_EQ(tokens.status, 200);
  std::string revoked_id;
  for (const json& t : tokens.body["items"]) {
    revoked_id = t["id"];  // the newest is last
  }
  ASSERT_EQ(Curl("DELETE", "/api/v1/tokens/" + revoked_id, bob).status, 204);

  ASSERT_EQ(StopServer(), "exit 0");
  ASSERT_NO_FATAL_FAILURE(StartServer());

  Reply me = Curl("GET", "/api/v1/users/me", bob);
  EXPECT_EQ(me.status, 200) << me.raw;
  EXPECT_EQ(me.body["name"], "bob");
  EXPECT_EQ(Curl("GET", "/api/v1/users/me", revoked).status, 401);
  Reply list = Curl("GET", "/api/v1/backup-locations", bob);
  ASSERT_EQ(list.body["items"].size(), 1u);
  EXPECT_EQ(list.body["items"][0]["name"], "bobs");
  EXPECT_FALSE(Login("bob", "bob-password").empty());
}

TEST_F(BunkerdTest, PingsTheWatchdog) {
  ASSERT_EQ(StopServer(), "exit 0");
  ASSERT_NO_FATAL_FAILURE(StartServer({"WATCHDOG_USEC=200000"}));
  EXPECT_TRUE(notify_->WaitFor("WATCHDOG=1", std::chrono::seconds(5)));
}

TEST(BunkerdUnitTest, SystemdAnalyzeVerifies) {
  auto analyze = FindExecutable("systemd-analyze");
  if (!analyze.ok()) {
    GTEST_SKIP() << "systemd-analyze is not installed (Debian package systemd)";
  }
  auto unit = ReadFile(std::string(BUNKER_SOURCE_DIR) + "/systemd/bunkerd.service");
  ASSERT_TRUE(unit.ok()) << unit.status().ToString();
  for (const char* key : {"Type=notify", "WatchdogSec=", "Restart=on-failure",
                          "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                          "ReadWritePaths=/var/lib/bunker", "User=bunker"}) {
    EXPECT_NE(unit->find(key), std::string::npos) << key;
  }
  // verify checks that ExecStart's binary exists: point it at the one just
  // built, changing nothing else.
  std::string text = *unit;
  const std::string installed = "/usr/bin/bunkerd";
  size_t at = text.find(installed);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, installed.size(), Bunkerd());
  auto dir = TempDir::Create("unit");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(WriteFile(dir->path() / "bunkerd.service", text).ok());
  auto run = RunCommand({analyze->string(), "verify", (dir->path() / "bunkerd.service").string()});
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(run->ok()) << run->Describe();
}

}  // namespace
}  // namespace bunker::testing
