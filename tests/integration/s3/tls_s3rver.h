#pragma once

// s3rver over https for the S3 integration tests (the harness's S3Server
// speaks plain http), and test certificates made with the openssl CLI.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/ports.h"
#include "tests/harness/process.h"
#include "tests/harness/s3_server.h"
#include "tests/harness/temp_dir.h"
#include "tests/integration/s3/s3_test_util.h"

namespace bunker::backend::s3test {

namespace fs = std::filesystem;

inline constexpr std::string_view kTlsBucket = "bunker-tls";

inline Status RunQuietly(const std::vector<std::string>& argv, const fs::path& cwd) {
  testing::RunOptions options;
  options.cwd = cwd;
  ASSIGN_OR_RETURN(testing::RunResult r, testing::RunCommand(argv, options));
  if (!r.ok()) return Internal(r.Describe());
  return Status::Ok();
}

// A CA, and a server certificate it signed for `san` ("IP:127.0.0.1,…").
inline Status MakeCertificates(const fs::path& dir, const std::string& ca_name,
                               const std::string& san) {
  const std::string ca = ca_name;
  RETURN_IF_ERROR(RunQuietly(
      {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out",
       ca + ".pem", "-days", "2", "-subj", "/CN=Bunker Test " + ca, "-addext",
       "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
      dir));
  RETURN_IF_ERROR(testing::WriteFile(
      dir / (ca + "-ext.cnf"),
      "subjectAltName=" + san + "\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"));
  RETURN_IF_ERROR(
      RunQuietly({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + "-server.key",
                  "-out", ca + "-server.csr", "-subj", "/CN=s3 test server"},
                 dir));
  return RunQuietly({"openssl", "x509", "-req", "-in", ca + "-server.csr", "-CA", ca + ".pem",
                     "-CAkey", ca + ".key", "-CAcreateserial", "-out", ca + "-server.pem", "-days",
                     "2", "-extfile", ca + "-ext.cnf"},
                    dir);
}

// s3rver over https (the harness's S3Server speaks plain http).
class TlsS3rver {
 public:
  static Result<std::unique_ptr<TlsS3rver>> Start(const fs::path& key, const fs::path& cert,
                                                  const fs::path& dir) {
    auto server = std::unique_ptr<TlsS3rver>(new TlsS3rver());
    ASSIGN_OR_RETURN(server->port_, testing::PickFreePort());
    fs::create_directories(dir / "data");
    ASSIGN_OR_RETURN(
        std::vector<std::string> argv,
        testing::S3rverCommand({"-d", (dir / "data").string(), "-p", std::to_string(server->port_),
                                "-a", "127.0.0.1", "--configure-bucket", std::string(kTlsBucket),
                                "--key", key.string(), "--cert", cert.string()}));
    testing::SpawnOptions spawn;
    spawn.log_path = dir / "s3rver-tls.log";
    spawn.cwd = dir;
    spawn.env = testing::S3rverEnv();
    ASSIGN_OR_RETURN(server->process_, testing::Process::Start(argv, spawn));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!testing::PortAcceptsConnections(server->port_)) {
      if (!server->process_.Running() || std::chrono::steady_clock::now() > deadline) {
        Result<std::string> log = testing::ReadFile(spawn.log_path);
        return Unavailable("s3rver over TLS did not start: " + (log.ok() ? *log : ""));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return server;
  }
  uint16_t port() const { return port_; }

 private:
  TlsS3rver() = default;
  uint16_t port_ = 0;
  testing::Process process_;
};

}  // namespace bunker::backend::s3test
