// bunkerd hardening over real HTTPS (BunkerdFixture: a real bunkerd in a
// temp dir): slow work (cluster probes, password hashing) never holds up
// quick requests; answers the server writes itself (400 malformed HTTP, 408
// slow client, 413, 431) are logged and counted like any other; a flood of
// wrong passwords gets 429 with Retry-After and the right password works once
// the window has passed; file:// locations of users stay inside
// file_location_roots.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "tests/integration/appliance/bunkerd_fixture.h"

namespace bunker::testing {
namespace {

using json = nlohmann::json;

// A TCP server on loopback that accepts connections and never says a word:
// a cluster API server that is up but hangs. Release() closes every
// connection (and each later one at once), which ends the probes.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd_, 64) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
          return;  // shut down
        }
        std::lock_guard lock(mu_);
        if (released_) {
          close(c);
          continue;
        }
        held_.push_back(c);
        accepted_++;
      }
    });
  }
  ~SilentServer() {
    Release();
    shutdown(fd_, SHUT_RDWR);  // wakes accept()
    if (thread_.joinable()) {
      thread_.join();
    }
    close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    for (int c : held_) {
      close(c);
    }
    held_.clear();
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  bool released_ = false;  // guarded by mu_
  std::vector<int> held_;  // guarded by mu_
};

// Sends raw bytes over TLS and prints what comes back until the server
// closes (Python's ssl; bunkerd's certificate is not checked here).
constexpr const char* kRawClient = R"py(
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60) as raw:
    with ctx.wrap_socket(raw) as s:
        s.sendall(bytes.fromhex(sys.argv[2]))
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ssl.SSLError, ConnectionError):
            pass
        sys.stdout.write(out.decode("latin-1"))
)py";

std::string Hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

class BunkerdHardeningTest : public BunkerdFixture {
 protected:
  void SetUp() override {
    if (!FindExecutable("python3").ok()) {
      GTEST_SKIP() << "python3 is needed for the raw TLS client";
    }
    // One network thread: anything slow run on it would stall every request.
    config_extra_ =
        "threads: 1\nworker_threads: 1\nprobe_threads: 2\nmax_queued_slow_requests: 1\n"
        "cluster_probe_timeout_seconds: 120\n"
        "read_timeout_seconds: 2\nlogin_max_failures: 3\nlogin_failure_window_seconds: 2\n";
    BunkerdFixture::SetUp();
  }

  // Raw bytes over TLS; what bunkerd answered before closing.
  std::string Raw(const std::string& bytes) {
    EXPECT_TRUE(WriteFile(dir_.path() / "raw_client.py", kRawClient).ok());
    auto run = RunCommand(
        {"python3", (dir_.path() / "raw_client.py").string(), std::to_string(port_), Hex(bytes)});
    EXPECT_TRUE(run.ok() && run->ok()) << (run.ok() ? run->Describe() : "");
    return run.ok() ? run->out : "";
  }

  // POST /api/v1/login; the status and the Retry-After header.
  std::pair<int, std::string> LoginWithRetryAfter(const std::string& user,
                                                  const std::string& password) {
    RunOptions options;
    options.stdin_data = json{{"username", user}, {"password", password}}.dump();
    auto run = RunCommand({"curl", "-sS", "-o", "/dev/null", "--cacert", data_ + "/tls/cert.pem",
                           "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                           "@-", "-w", "%{http_code} %header{retry-after}", Url("/api/v1/login")},
                          options);
    EXPECT_TRUE(run.ok() && run->ok()) << (run.ok() ? run->Describe() : "");
    if (!run.ok() || !run->ok()) {
      return {0, ""};
    }
    size_t space = run->out.find(' ');
    return {std::stoi(run->out.substr(0, space)),
            space == std::string::npos ? "" : run->out.substr(space + 1)};
  }

  std::string Metrics() { return Curl("GET", "/metrics").raw; }
};

// Four cluster registrations probe a server that accepts and never answers
// (the probe timeout is 120 s): two hold both probe threads, one waits for
// a thread and one finds the queue full (max_queued_slow_requests: 1) and is
// answered 503 busy at once. Meanwhile /healthz, a list and a login (password
// hashing has its own pool and queue) are answered; no registration has
// finished until the server lets go, and then three are stored as
// unreachable.
TEST_F(BunkerdHardeningTest, SlowProbesDoNotHoldUpOtherRequests) {
  SilentServer silent;
  ASSERT_NE(silent.port(), 0);
  std::string kubeconfig =
      "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
      "    server: https://127.0.0.1:" +
      std::to_string(silent.port()) +
      "\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: k\n"
      "    user: u\nusers:\n- name: u\n  user:\n    token: silent-token\n";
  std::atomic<int> finished{0};
  std::vector<ApiReply> replies(4);
  std::vector<std::thread> clients;
  // However the test ends, the server lets go and every client is joined.
  struct JoinAll {
    SilentServer& silent;
    std::vector<std::thread>& clients;
    ~JoinAll() {
      silent.Release();
      for (std::thread& t : clients) {
        if (t.joinable()) {
          t.join();
        }
      }
    }
  } join_all{silent, clients};
  auto start = [&](int i) {
    clients.emplace_back([&, i] {
      replies[i] = Curl("POST", "/api/v1/clusters", admin_,
                        json{{"name", "hung-" + std::to_string(i)}, {"kubeconfig", kubeconfig}});
      finished++;
    });
  };
  start(0);
  start(1);
  // Wait (bounded) until both probe threads hold a connection to the server.
  for (int i = 0; i < 600 && silent.accepted() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(silent.accepted(), 2) << "the probes did not reach the silent server; finished "
                                  << finished.load() << ": " << replies[0].raw << " / "
                                  << replies[1].raw;
  start(2);
  start(3);
  // One of the last two waits in the queue, the other is turned away.
  for (int i = 0; i < 600 && finished.load() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(finished.load(), 1) << "not exactly one registration was turned away: "
                                << replies[0].raw << " / " << replies[1].raw << " / "
                                << replies[2].raw << " / " << replies[3].raw;
  int busy = replies[2].status == 503 ? 2 : 3;
  EXPECT_EQ(replies[busy].status, 503) << replies[busy].raw;
  EXPECT_EQ(replies[busy].body["code"], "busy") << replies[busy].raw;

  EXPECT_EQ(Curl("GET", "/healthz").status, 200);
  ApiReply list = Curl("GET", "/api/v1/clusters", admin_);
  EXPECT_EQ(list.status, 200);
  EXPECT_TRUE(list.body["items"].empty()) << list.raw;
  EXPECT_FALSE(Login("admin", "admin-password").empty());
  EXPECT_EQ(finished.load(), 1) << "a registration finished before the silent server let go";
  EXPECT_EQ(silent.accepted(), 2) << "a third probe ran on a third thread";

  silent.Release();
  for (std::thread& t : clients) {
    t.join();
  }
  for (int i = 0; i < 4; ++i) {
    if (i == busy) {
      continue;
    }
    EXPECT_EQ(replies[i].status, 201) << replies[i].raw;
    EXPECT_EQ(replies[i].body["status"]["reachable"], false) << replies[i].raw;
    EXPECT_EQ(replies[i].raw.find("silent-token"), std::string::npos) << replies[i].raw;
  }
  EXPECT_EQ(Curl("GET", "/api/v1/clusters", admin_).body["items"].size(), 3u);
  EXPECT_NE(
      Metrics().find(
          R"(bunker_http_requests_total{method="POST",route="/api/v1/clusters",status="503"} 1)"),
      std::string::npos);
  EXPECT_EQ(server_.Stop(), "exit 0");
  auto log = ReadFile(dir_.path() / "bunkerd.log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->find("silent-token"), std::string::npos) << *log;
}

// 400, 408, 413 and 431 come from the server, not the handler; each is a
// request line in the log (user "-") and a sample in /metrics.
TEST_F(BunkerdHardeningTest, ServerAnswersAreLoggedAndCounted) {
  std::string bad = Raw("GET\x01 / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(bad.rfind("HTTP/1.1 400", 0), 0u) << bad;
  EXPECT_NE(bad.find("\"bad_request\""), std::string::npos) << bad;

  // A body that never finishes: dropped after read_timeout (2 s), nothing
  // answered (the stream is closed), logged as 408.
  std::string slow = Raw("POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
  EXPECT_EQ(slow, "");

  ApiReply huge = Curl("POST", "/api/v1/backup-locations", admin_, std::string(2 << 20, ' '));
  EXPECT_EQ(huge.status, 413) << huge.raw;

  std::string big_header =
      Raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 << 10, 'a') + "\r\n\r\n");
  EXPECT_EQ(big_header.rfind("HTTP/1.1 431", 0), 0u) << big_header.substr(0, 200);

  // Beast lets bytes that are not UTF-8 through in the target; the error
  // message echoing the path must not bring bunkerd down.
  std::string odd = Raw("GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(odd.rfind("HTTP/1.1 404", 0), 0u) << odd;
  EXPECT_EQ(Curl("GET", "/healthz").status, 200);

  std::string metrics = Metrics();
  for (
      const char* sample : {
          R"(bunker_http_requests_total{method="-",route="unmatched",status="400"} 1)",
          R"(bunker_http_requests_total{method="POST",route="/api/v1/login",status="408"} 1)",
          R"(bunker_http_requests_total{method="POST",route="/api/v1/backup-locations",status="413"} 1)",
          R"(bunker_http_requests_total{method="GET",route="/healthz",status="431"} 1)",
      }) {
    EXPECT_NE(metrics.find(sample), std::string::npos) << sample << "\n" << metrics;
  }
  EXPECT_EQ(server_.Stop(), "exit 0");
  auto log = ReadFile(dir_.path() / "bunkerd.log");
  ASSERT_TRUE(log.ok());
  for (const char* line : {"- - 400 ", "POST /api/v1/login 408 ",
                           "POST /api/v1/backup-locations 413 ", "GET /healthz 431 "}) {
    size_t at = log->find(line);
    ASSERT_NE(at, std::string::npos) << line << "\n" << *log;
    std::string rest = log->substr(at, log->find('\n', at) - at);
    EXPECT_NE(rest.find("user=- remote=127.0.0.1:"), std::string::npos) << rest;
  }
}

// Three wrong passwords (login_max_failures: 3) and the fourth attempt,
// even with the right password, is 429 with Retry-After; another user from
// the same address is not affected; after Retry-After seconds the right
// password works again.
TEST_F(BunkerdHardeningTest, PasswordFloodIsThrottledUntilTheWindowPasses) {
  AddUser("bob");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(LoginWithRetryAfter("admin", "wrong-" + std::to_string(i)).first, 401);
  }
  auto [wrong_status, wrong_retry] = LoginWithRetryAfter("admin", "wrong-again");
  EXPECT_EQ(wrong_status, 429);
  auto [status, retry_after] = LoginWithRetryAfter("admin", "admin-password");
  EXPECT_EQ(status, 429);
  ASSERT_FALSE(retry_after.empty());
  int seconds = std::stoi(retry_after);
  EXPECT_GE(seconds, 1);
  EXPECT_LE(seconds, 2);
  EXPECT_FALSE(Login("bob", "bob-password").empty());
  std::this_thread::sleep_for(std::chrono::seconds(seconds) + std::chrono::milliseconds(200));
  EXPECT_EQ(LoginWithRetryAfter("admin", "admin-password").first, 201);
}

// Users create file:// locations only inside file_location_roots (the temp
// dir here), judged after resolving ".." and symlinks; the stored URL is the
// resolved one. Admins may use any directory.
TEST_F(BunkerdHardeningTest, UserFileLocationsStayInsideTheRoots) {
  std::string bob = AddUser("bob");
  auto outside = TempDir::Create("bunkerd-outside");
  ASSERT_TRUE(outside.ok());
  auto inside = dir_.MakeSubdir("inside");
  ASSERT_TRUE(inside.ok());
  std::filesystem::create_directory_symlink(outside->path(), dir_.path() / "link-out");
  auto add = [&](const std::string& token, const std::string& name, const std::string& path) {
    return Curl("POST", "/api/v1/backup-locations", token,
                json{{"name", name}, {"type", "file"}, {"url", "file://" + path}});
  };
  for (const std::string& path :
       {outside->path().string(),
        inside->string() + "/../../" + outside->path().filename().string(),
        (dir_.path() / "link-out").string()}) {
    SCOPED_TRACE(path);
    ApiReply refused = add(bob, "escape", path);
    EXPECT_EQ(refused.status, 403) << refused.raw;
    EXPECT_EQ(refused.body["code"], "permission_denied");
    EXPECT_NE(
        refused.body["details"]["fields"]["url"].get<std::string>().find("file_location_roots"),
        std::string::npos)
        << refused.raw;
  }
  EXPECT_TRUE(Curl("GET", "/api/v1/backup-locations", admin_).body["items"].empty());
  EXPECT_TRUE(std::filesystem::is_empty(outside->path()));

  ApiReply ok = add(bob, "mine", inside->string() + "/../inside");
  ASSERT_EQ(ok.status, 201) << ok.raw;
  EXPECT_EQ(ok.body["url"], "file://" + std::filesystem::canonical(*inside).string());
  EXPECT_EQ(add(admin_, "admins", outside->path().string()).status, 201);
}

// The new bunkerd.yaml keys are checked like the others: a bad value is a
// usage error naming the key.
TEST_F(BunkerdHardeningTest, BadLimitsInTheConfigAreUsageErrors) {
  for (const std::string& line :
       {std::string("file_location_roots: [\"relative/dir\"]"),
        std::string("file_location_roots: /x"), std::string("worker_threads: 0"),
        std::string("probe_threads: many"), std::string("max_queued_slow_requests: -1"),
        std::string("read_timeout_seconds: 0"), std::string("login_max_failures: 0"),
        std::string("cluster_probe_timeout_seconds: 9999")}) {
    SCOPED_TRACE(line);
    ASSERT_TRUE(WriteFile(dir_.path() / "bad.yaml", line + "\n").ok());
    auto run = RunCommand({Bunkerd(), "serve", "--config", (dir_.path() / "bad.yaml").string(),
                           "--data-dir", data_, "--listen", "127.0.0.1:0"});
    ASSERT_TRUE(run.ok());
    EXPECT_EQ(run->exit_code, 2) << run->Describe();
    EXPECT_NE(run->err.find(line.substr(0, line.find(':'))), std::string::npos) << run->Describe();
  }
}

}  // namespace
}  // namespace bunker::testing
