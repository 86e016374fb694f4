#pragma once

// S3Backend: a repository in an S3-compatible bucket (MinIO, Ceph RGW, AWS,
// GCS's XML API), under a key prefix: object "data/3f/3f2a…" of location
// s3://bucket/repo is the key "repo/data/3f/3f2a…".
//
// Requests are signed with SigV4 (header auth, x-amz-content-sha256 = the
// body's SHA-256; UNSIGNED-PAYLOAD plus Content-MD5 only over https and only
// when enabled). Put is one PUT, or a multipart upload above
// multipart_threshold (aborted on failure; S3 makes the object appear only
// on CompleteMultipartUpload, so Put stays atomic). GetRange is a ranged GET
// that must return exactly the bytes asked for. List is ListObjectsV2 with
// continuation tokens, all pages or an error.
//
// Errors name the operation, the object, the endpoint and the server's
// error code: "s3 PUT s3://bucket/repo/config at http://127.0.0.1:9000: 403
// SignatureDoesNotMatch: …". 404 → NotFound; 401/403 → PermissionDenied;
// 5xx, 429, 408, SlowDown/RequestTimeout and transport failures →
// Unavailable (retryable); other 4xx → InvalidArgument/FailedPrecondition.
// No retries here: OpenBackend wraps this in a RetryingBackend (and this
// class implements ResumableList so a listing resumes after a failure).
//
// Credentials are never logged nor put in messages.
// Thread-safety: every method may be called from many threads; requests
// share a pool of keep-alive connections (http_client.h).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/backend/resumable_list.h"

namespace bunker::backend {

class HttpClient;
struct HttpResponse;

struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only
  std::string source;         // where they came from, for messages ("environment", a file)
};

// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) from the
// environment, else the shared credentials file (AWS_SHARED_CREDENTIALS_FILE
// or ~/.aws/credentials), profile AWS_PROFILE or "default".
// FailedPrecondition naming every place looked at when none has them.
Result<S3Credentials> LoadS3Credentials();

// The keys of `profile` in the text of a shared credentials file (INI).
// NotFound when the profile is missing; InvalidArgument when it lacks a key.
Result<S3Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile);

// One S3 request as the backend puts it on the wire, computed without a
// network or a clock: the signing cross-check against botocore
// (tests/unit/backend/sigv4_test.cc) builds requests with it.
struct S3RequestSpec {
  std::string method;  // "GET", "PUT", …
  std::string host;    // the Host header: endpoint host[:port], "bucket." first if virtual-hosted
  std::string bucket;
  bool path_style = true;
  std::string key;            // raw object key (prefix included); unused when bucket_level
  bool bucket_level = false;  // a request on the bucket itself (ListObjectsV2)
  std::vector<std::pair<std::string, std::string>> query;    // raw parameters
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, sent and signed
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct S3WireRequest {
  std::string target;  // "/bucket/key%20name?list-type=2&prefix=…"
  // Every header to send except Host (HttpClient adds it), Authorization last.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string canonical_request;  // for diagnostics and tests
};

// `amz_date` is "YYYYMMDDTHHMMSSZ".
S3WireRequest SignS3Request(const S3RequestSpec& spec, const S3Credentials& credentials,
                            std::string_view region, std::string_view amz_date);

struct S3Options {
  std::string bucket;
  std::string prefix;    // key prefix without leading or trailing '/', may be empty
  std::string endpoint;  // empty: https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";
  std::string ca_file;  // https only: trust these CAs instead of the system store
  S3AddressingStyle addressing_style = S3AddressingStyle::kAuto;
  bool unsigned_payload = false;
  // Empty access key: LoadS3Credentials() at Open.
  S3Credentials credentials;

  // Put uses a multipart upload above this size, in parts of part_size
  // bytes (at least 5 MiB, at most 10000 parts: larger objects get larger
  // parts).
  uint64_t multipart_threshold = uint64_t{64} << 20;
  uint64_t part_size = uint64_t{16} << 20;

  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};

  // The time requests are signed with; default system_clock::now (a seam
  // for tests).
  std::function<std::chrono::system_clock::time_point()> clock;
};

class S3Backend final : public Backend, public ResumableList {
 public:
  // Largest object Get accepts (a hostile Content-Length is refused).
  static constexpr uint64_t kMaxGetBytes = uint64_t{4} << 30;
  static constexpr uint64_t kMinPartSize = uint64_t{5} << 20;
  static constexpr uint64_t kMaxParts = 10000;

  // Checks the options and sets up the HTTP client; does not contact the
  // server (errors surface on the first request; see ProbeBackend).
  static Result<std::unique_ptr<S3Backend>> Open(S3Options options);
  ~S3Backend() override;

  // "s3://bucket/prefix at http://127.0.0.1:9000".
  std::string Describe() const override;
  Status Put(std::string_view name, ByteSpan data) override;
  Result<Bytes> Get(std::string_view name) override;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  // Reads the range into *out, reusing its allocation for the response body.
  Status GetRangeInto(std::string_view name, uint64_t offset, uint64_t length, Bytes* out) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  Status Delete(std::string_view name) override;
  Status List(std::string_view prefix,
              const std::function<Status(const ObjectInfo&)>& visit) override;
  Status ListAfter(std::string_view prefix, std::string_view start_after,
                   const std::function<Status(const ObjectInfo&)>& visit) override;

  // Counters since Open, for tests and metrics.
  struct Stats {
    uint64_t requests = 0;
    uint64_t multipart_uploads = 0;
    uint64_t parts_uploaded = 0;
    uint64_t connections_opened = 0;
  };
  Stats stats() const;
  bool path_style() const { return path_style_; }

 private:
  struct Call;  // one signed request (s3_backend.cc)

  S3Backend(S3Options options, std::string endpoint_text, bool tls, bool path_style,
            std::unique_ptr<HttpClient> http);

  std::string KeyOf(std::string_view name) const;
  std::string Where(std::string_view key) const;
  Result<HttpResponse> Send(const Call& call);
  Status HttpError(const Call& call, const HttpResponse& response) const;
  Status PutMultipart(const std::string& key, ByteSpan data);
  Status ListPages(std::string_view prefix, std::string_view start_after,
                   const std::function<Status(const ObjectInfo&)>& visit);

  const S3Options options_;
  const std::string endpoint_text_;  // for messages
  const bool tls_;
  const bool path_style_;
  const std::unique_ptr<HttpClient> http_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> multipart_uploads_{0};
  std::atomic<uint64_t> parts_uploaded_{0};
};

}  // namespace bunker::backend
