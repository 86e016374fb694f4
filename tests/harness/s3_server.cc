#include "tests/harness/s3_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <utility>

#include "tests/harness/ports.h"

#ifndef BUNKER_SOURCE_DIR
#error "BUNKER_SOURCE_DIR must name the source tree (set by tests/harness/CMakeLists.txt)"
#endif

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Status code of `GET path` on 127.0.0.1:port, or an error.
Result<int> HttpGetStatus(uint16_t port, const std::string& path, milliseconds timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return ErrnoStatus("socket", errno);
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Status status;
  std::string response;
  const std::string request = "GET " + path +
                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nConnection: close\r\n\r\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    status = ErrnoStatus("connect 127.0.0.1:" + std::to_string(port), errno);
  } else if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
             static_cast<ssize_t>(request.size())) {
    status = ErrnoStatus("send", errno);
  } else {
    std::array<char, 512> buf{};
    while (response.find("\r\n") == std::string::npos) {
      const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) {
        status = n == 0 ? Unavailable("connection closed before a status line")
                        : ErrnoStatus("recv", errno);
        break;
      }
      response.append(buf.data(), static_cast<size_t>(n));
    }
  }
  close(fd);
  RETURN_IF_ERROR(status);
  // "HTTP/1.1 200 OK"
  const size_t space = response.find(' ');
  if (response.rfind("HTTP/", 0) != 0 || space == std::string::npos) {
    return Unavailable("not an HTTP response: " + response.substr(0, 80));
  }
  return std::atoi(response.c_str() + space + 1);
}

fs::path S3rverScript() {
  if (const char* over = std::getenv("BUNKER_S3RVER"); over != nullptr && *over != '\0') {
    return over;
  }
  return fs::path(BUNKER_SOURCE_DIR) / "tests" / "node_modules" / ".bin" / "s3rver";
}

fs::path S3rverFixes() {
  return fs::path(BUNKER_SOURCE_DIR) / "tests" / "harness" / "s3rver_fixes.js";
}

}  // namespace

Result<std::vector<std::string>> S3rverCommand(const std::vector<std::string>& args) {
  const fs::path script = S3rverScript();
  if (!fs::exists(script)) {
    return FailedPrecondition(script.string() + " is missing: run `make deps` (npm ci in tests/)");
  }
  Result<fs::path> node = FindExecutable("node");
  if (!node.ok()) {
    node = FindExecutable("nodejs");
  }
  RETURN_IF_ERROR(node.status());
  std::vector<std::string> argv = {node->string(), script.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

EnvChanges S3rverEnv() {
  const char* current = std::getenv("NODE_OPTIONS");
  std::string options = current == nullptr ? "" : current;
  if (options.find("--openssl-legacy-provider") == std::string::npos) {
    options += options.empty() ? "" : " ";
    options += "--openssl-legacy-provider";
  }
  if (options.find("s3rver_fixes.js") == std::string::npos) {
    options += " --require \"" + S3rverFixes().string() + "\"";
  }
  return {"NODE_OPTIONS=" + options};
}

Result<std::unique_ptr<S3Server>> S3Server::Start(const S3ServerOptions& options) {
  std::unique_ptr<S3Server> server(new S3Server());
  server->bucket_ = options.bucket;
  ASSIGN_OR_RETURN(server->temp_, TempDir::Create("bunker-s3"));
  ASSIGN_OR_RETURN(server->data_dir_, server->temp_.MakeSubdir("data"));
  server->log_path_ = server->temp_.path() / "s3rver.log";
  Status status;
  for (int attempt = 1; attempt <= std::max(1, options.start_attempts); ++attempt) {
    bool may_retry = false;
    status = server->StartOnce(options, attempt, may_retry);
    if (status.ok() || !may_retry) {
      break;
    }
  }
  if (!status.ok()) {
    return status.Annotate("start s3rver");
  }
  return server;
}

Status S3Server::StartOnce(const S3ServerOptions& options, int attempt, bool& may_retry) {
  may_retry = false;
  ASSIGN_OR_RETURN(port_, PickFreePort());
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "=== harness: attempt " << attempt << ", port " << port_ << " ===\n";
  }
  return SpawnAndWait(options, may_retry);
}

Status S3Server::Restart(const S3ServerOptions& options) {
  process_.Kill();  // idempotent: a no-op when it is not running
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "=== harness: restart, port " << port_ << " ===\n";
  }
  bool may_retry = false;
  return SpawnAndWait(options, may_retry).Annotate("restart s3rver");
}

Status S3Server::SpawnAndWait(const S3ServerOptions& options, bool& may_retry) {
  may_retry = false;
  ASSIGN_OR_RETURN(std::vector<std::string> argv,
                   S3rverCommand({"-d", data_dir_.string(), "-p", std::to_string(port_), "-a",
                                  "127.0.0.1", "--configure-bucket", bucket_}));
  SpawnOptions spawn;
  spawn.log_path = log_path_;
  spawn.cwd = temp_.path();
  spawn.env = S3rverEnv();
  ASSIGN_OR_RETURN(process_, Process::Start(argv, spawn));

  const auto deadline = Clock::now() + options.start_timeout;
  std::string last_probe = "port not accepting connections yet";
  while (Clock::now() < deadline) {
    if (!process_.Running()) {
      const std::string how = process_.Stop();
      may_retry = true;  // typically the port was taken since it was picked
      return Unavailable("s3rver exited during start (" + how + "); its log:\n" + LogTail());
    }
    if (PortAcceptsConnections(port_)) {
      Result<int> code = HttpGetStatus(port_, "/" + bucket_, milliseconds(2000));
      if (code.ok() && *code == 200) {
        return Status::Ok();
      }
      last_probe = code.ok() ? "GET /" + bucket_ + " answered " + std::to_string(*code)
                             : code.status().ToString();
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  process_.Stop();
  return Unavailable("s3rver not ready after " + std::to_string(options.start_timeout.count()) +
                     " ms (last probe: " + last_probe + "); its log:\n" + LogTail());
}

S3Server::~S3Server() { process_.Stop(); }

std::string S3Server::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

fs::path S3Server::ObjectPath(std::string_view key) const {
  return data_dir_ / bucket_ / (std::string(key) + "._S3rver_object");
}

EnvChanges S3Server::AwsEnv() const {
  return {
      "AWS_ACCESS_KEY_ID=" + access_key(),
      "AWS_SECRET_ACCESS_KEY=" + secret_key(),
      "AWS_DEFAULT_REGION=" + region(),
      "AWS_REGION=" + region(),
      "AWS_CONFIG_FILE=/dev/null",
      "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
      "AWS_EC2_METADATA_DISABLED=true",
      "AWS_PAGER=",
      "AWS_CLI_AUTO_PROMPT=off",
      "AWS_RETRY_MODE=standard",
      "AWS_MAX_ATTEMPTS=2",
      "NO_PROXY=127.0.0.1,localhost",
      "no_proxy=127.0.0.1,localhost",
      // Settings that would send the CLI elsewhere or change its identity.
      "AWS_PROFILE",
      "AWS_SESSION_TOKEN",
      "AWS_ENDPOINT_URL",
      "AWS_CA_BUNDLE",
      "HTTP_PROXY",
      "HTTPS_PROXY",
      "http_proxy",
      "https_proxy",
  };
}

std::vector<std::string> S3Server::AwsCommand(const std::vector<std::string>& args) const {
  std::string aws = "aws";
  if (const char* over = std::getenv("BUNKER_AWS_CLI"); over != nullptr && *over != '\0') {
    aws = over;
  } else if (access("/usr/bin/aws", X_OK) == 0) {
    aws = "/usr/bin/aws";  // Debian's awscli; PATH may hold a pip/pyenv one first
  }
  std::vector<std::string> argv = {aws, "--endpoint-url", endpoint()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string S3Server::LogTail(size_t max_bytes) const {
  Result<std::string> text = ReadFile(log_path_);
  if (!text.ok()) {
    return "(" + text.status().ToString() + ")";
  }
  if (text->size() <= max_bytes) {
    return *text;
  }
  return "[…]" + text->substr(text->size() - max_bytes);
}

}  // namespace bunker::testing
