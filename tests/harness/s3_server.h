#pragma once

// A real S3 server for tests: s3rver (npm, pinned in tests/package-lock.json)
// on 127.0.0.1 and a free port, with one bucket, storing objects in a fresh
// temp directory. Path-style requests (http://127.0.0.1:PORT/BUCKET/KEY).
//
// s3rver accepts the credentials S3RVER / S3RVER. It does not check SigV4
// signatures (a wrong secret is accepted), so signing must be tested
// elsewhere.
//
// Requirements: node, and tests/node_modules installed by `make deps`
// (npm ci in tests/). BUNKER_S3RVER=/path/to/s3rver overrides the script.
//
// Every s3rver of the tests runs with S3rverEnv(): Node's OpenSSL legacy
// provider (s3rver 3.7 makes ListObjectsV2 continuation tokens with DES; without
// it every listing of more than 1000 keys fails with 500) and
// tests/harness/s3rver_fixes.js preloaded (atomic, read-after-write PUTs, as
// real S3 stores have).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nodeagent/core/util/status.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace bunker::testing {

// argv that runs s3rver with `args` under node: {node, s3rver script, args…}.
// FailedPrecondition when tests/node_modules is not installed.
Result<std::vector<std::string>> S3rverCommand(const std::vector<std::string>& args);

// The environment every s3rver runs with (see above): NODE_OPTIONS is the
// inherited one plus --openssl-legacy-provider and --require of
// s3rver_fixes.js (once; idempotent when the caller already has them).
EnvChanges S3rverEnv();

struct S3ServerOptions {
  std::string bucket = "bunker-test";
  // From spawning s3rver until GET /<bucket> answers 200.
  std::chrono::milliseconds start_timeout{std::chrono::seconds(30)};
  // Fresh ports are picked for each attempt (a port may be taken meanwhile).
  int start_attempts = 3;
};

// One running s3rver and its temp directory:
//   <dir>/data/       s3rver's data directory (<bucket>/<key>._S3rver_object …)
//   <dir>/s3rver.log  its stdout and stderr
// The destructor stops the server and removes the directory. Not copyable or
// movable (hold it by unique_ptr); not thread-safe.
class S3Server {
 public:
  static constexpr std::string_view kAccessKey = "S3RVER";
  static constexpr std::string_view kSecretKey = "S3RVER";
  static constexpr std::string_view kRegion = "us-east-1";

  // Starts a server and waits until the bucket answers. On failure the error
  // message includes s3rver's log.
  static Result<std::unique_ptr<S3Server>> Start(const S3ServerOptions& options = {});

  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;
  ~S3Server();

  // "http://127.0.0.1:PORT" (no trailing slash).
  std::string endpoint() const;
  uint16_t port() const { return port_; }
  const std::string& bucket() const { return bucket_; }
  std::string access_key() const { return std::string(kAccessKey); }
  std::string secret_key() const { return std::string(kSecretKey); }
  std::string region() const { return std::string(kRegion); }

  const std::filesystem::path& dir() const { return temp_.path(); }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& log_path() const { return log_path_; }
  // Where s3rver keeps the bytes of object `key` of bucket(); an s3rver
  // implementation detail, for tests that check what reached the server.
  std::filesystem::path ObjectPath(std::string_view key) const;

  // Environment for the AWS CLI (and SDKs): this server's credentials and
  // region, no config or credentials files, no instance metadata lookups, no
  // proxy for loopback, no pager, at most 2 attempts per request.
  EnvChanges AwsEnv() const;
  // argv for the AWS CLI against this server: {aws, --endpoint-url, URL,
  // args…}. Prefers Debian's awscli (/usr/bin/aws) over another `aws` that may
  // come first in PATH; BUNKER_AWS_CLI overrides. Run it with AwsEnv().
  std::vector<std::string> AwsCommand(const std::vector<std::string>& args) const;

  pid_t pid() const { return process_.pid(); }
  bool Running() { return process_.Running(); }

  // s3rver's log (the last `max_bytes`), for failure messages.
  std::string LogTail(size_t max_bytes = 16384) const;

  // Clean shutdown (SIGTERM, SIGKILL after 10 s); idempotent. The data
  // directory stays until destruction.
  void Stop() { process_.Stop(); }
  // SIGKILL, as if the server crashed; clients then fail to connect.
  void Kill() { process_.Kill(); }

  // Starts s3rver again on the same port and data directory, as a server that
  // comes back after a crash (stopping it first with SIGKILL if it still
  // runs), and waits until the bucket answers like Start(). Objects stored
  // before stay; endpoint() stays valid. Fails (with the log tail) if the port
  // was taken meanwhile. Call it from the thread that started the server.
  Status Restart(const S3ServerOptions& options = {});

 private:
  S3Server() = default;
  // One try on a fresh port; sets `may_retry` when another try could succeed.
  Status StartOnce(const S3ServerOptions& options, int attempt, bool& may_retry);
  // Spawns s3rver on port_ and waits until the bucket answers; sets
  // `may_retry` when it exited during start.
  Status SpawnAndWait(const S3ServerOptions& options, bool& may_retry);

  TempDir temp_;
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  std::string bucket_;
  uint16_t port_ = 0;
  Process process_;
};

}  // namespace bunker::testing
