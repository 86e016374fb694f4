#pragma once

// BunkerdFixture: a real bunkerd in a temp data directory on a free loopback
// port (initialised with an "admin" user), driven over real HTTPS with curl
// verifying bunkerd's self-signed certificate; readiness is READY=1 on a
// NOTIFY_SOCKET the fixture listens on. For the appliance API tests.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/harness/ports.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace bunker::testing {

struct ApiReply {
  int status = 0;
  nlohmann::json body;
  std::string raw;
};

// A unix datagram socket standing in for systemd's notify socket.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    unlink(path.c_str());
    bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~NotifyListener() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  bool bound() const { return bound_; }

  // Waits until a received message contains `line`.
  bool WaitFor(const std::string& line, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (const std::string& m : messages_) {
        if (m.find(line) != std::string::npos) {
          return true;
        }
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return false;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) > 0) {
        char buf[4096];
        ssize_t n = recv(fd_, buf, sizeof(buf), 0);
        if (n > 0) {
          messages_.emplace_back(buf, static_cast<size_t>(n));
        }
      }
    }
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
  std::vector<std::string> messages_;
};

class BunkerdFixture : public ::testing::Test {
 protected:
  static std::string Bunkerd() {
    return std::string(BUNKER_BINARY_DIR) + "/appliance/bunkerd/bunkerd";
  }

  void SetUp() override {
    if (!FindExecutable("curl").ok()) {
      GTEST_SKIP() << "curl is not installed; these tests drive bunkerd over HTTPS with it";
    }
    auto dir = TempDir::Create("bunkerd-api");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
    data_ = (dir_.path() / "data").string();
    ASSERT_NO_FATAL_FAILURE(PrepareData());
    ASSERT_NO_FATAL_FAILURE(StartServer());
    admin_ = Login("admin", "admin-password");
    ASSERT_FALSE(admin_.empty());
  }

  // Creates the data directory; by default with `bunkerd init`.
  virtual void PrepareData() {
    ASSERT_TRUE(WriteFile(dir_.path() / "admin.pw", "admin-password\n").ok());
    auto init = RunCommand({Bunkerd(), "init", "--data-dir", data_, "--admin-password-file",
                            (dir_.path() / "admin.pw").string()});
    ASSERT_TRUE(init.ok() && init->ok()) << (init.ok() ? init->Describe() : "");
  }

  void TearDown() override {
    if (HasFailure()) {
      auto log = ReadFile(dir_.path() / "bunkerd.log");
      std::cerr << "[bunkerd log]\n" << (log.ok() ? *log : "(none)") << "\n";
    }
  }

  // Starts bunkerd with a bunkerd.yaml that lets users create file://
  // locations inside the temp dir, plus `config_extra_` (YAML lines).
  void StartServer(std::vector<std::string> extra_args = {}) {
    ASSERT_TRUE(
        WriteFile(dir_.path() / "bunkerd.yaml",
                  "file_location_roots: [\"" + dir_.path().string() + "\"]\n" + config_extra_)
            .ok());
    auto port = PickFreePort();
    ASSERT_TRUE(port.ok());
    port_ = *port;
    notify_ = std::make_unique<NotifyListener>((dir_.path() / "notify.sock").string());
    ASSERT_TRUE(notify_->bound());
    SpawnOptions options;
    options.env = {"NOTIFY_SOCKET=" + (dir_.path() / "notify.sock").string(), "JOURNAL_STREAM"};
    options.log_path = dir_.path() / "bunkerd.log";
    std::vector<std::string> argv = {
        Bunkerd(),    "serve", "--config", (dir_.path() / "bunkerd.yaml").string(),
        "--data-dir", data_,   "--listen", "127.0.0.1:" + std::to_string(port_)};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    auto proc = Process::Start(argv, options);
    ASSERT_TRUE(proc.ok()) << proc.status().ToString();
    server_ = std::move(proc).value();
    ASSERT_TRUE(notify_->WaitFor("READY=1", std::chrono::seconds(60)))
        << "no READY=1 on NOTIFY_SOCKET";
  }

  std::string Url(const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  ApiReply Curl(const std::string& method, const std::string& path, const std::string& token = "",
                const std::string& body = "") {
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
    argv.push_back(Url(path));
    auto run = RunCommand(argv, options);
    ApiReply r;
    if (!run.ok() || !run->ok()) {
      r.raw = run.ok() ? run->Describe() : run.status().ToString();
      return r;
    }
    size_t nl = run->out.rfind('\n');
    r.status = std::stoi(run->out.substr(nl + 1));
    r.raw = run->out.substr(0, nl);
    r.body = nlohmann::json::parse(r.raw, nullptr, false);
    return r;
  }
  ApiReply Curl(const std::string& method, const std::string& path, const std::string& token,
                const nlohmann::json& body) {
    return Curl(method, path, token, body.dump());
  }

  std::string Login(const std::string& user, const std::string& password) {
    ApiReply r = Curl("POST", "/api/v1/login", "",
                      nlohmann::json{{"username", user}, {"password", password}});
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.status == 201 ? r.body["token"].get<std::string>() : "";
  }

  // Creates a user (password "<name>-password") and logs in; its id goes to *id.
  std::string AddUser(const std::string& name, int64_t* id = nullptr) {
    ApiReply r = Curl("POST", "/api/v1/users", admin_,
                      nlohmann::json{{"name", name}, {"password", name + "-password"}});
    EXPECT_EQ(r.status, 201) << r.raw;
    if (id != nullptr && r.status == 201) {
      *id = r.body["id"].get<int64_t>();
    }
    return Login(name, name + "-password");
  }

  TempDir dir_;
  std::string data_;
  std::string config_extra_;  // more bunkerd.yaml lines for the next StartServer
  uint16_t port_ = 0;
  std::unique_ptr<NotifyListener> notify_;
  Process server_;
  std::string admin_;
};

}  // namespace bunker::testing
