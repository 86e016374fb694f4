#pragma once

// Backend: the object store under a repository. A flat namespace of objects
// named by slash-separated paths relative to the location's root
// ("config", "keys/3f2a…", "data/3f/3f2a…", "index/…", "snapshots/…",
// "locks/…"). Implementations: file:// (file_backend.cc), and later NFS and S3,
// behind this same interface; cross-cutting behaviour (retries, rate limits,
// fault injection) wraps a Backend.
//
// Contracts every implementation keeps (the conformance suite checks them):
//  - Put is atomic: a reader sees no object or the whole object, never a
//    prefix, even if the writer is killed. Put overwrites. Put is idempotent.
//  - Get/GetRange return NotFound for a missing object; GetRange returns
//    exactly `length` bytes or fails (a short object is Corruption).
//  - Delete of a missing object is OK (idempotent).
//  - List visits every object whose name starts with `prefix` exactly once,
//    or returns an error: a partial listing is never reported as success.
//  - Transient failures are Unavailable or carry IsRetryable(); a wrapper
//    retries those. Permanent failures (auth, not found) are not retryable.
// Thread-safety: every method may be called concurrently from many threads.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::backend {

struct ObjectInfo {
  std::string name;        // full object name, e.g. "data/3f/3f2a…"
  uint64_t size = 0;       // bytes
  int64_t mtime_unix = 0;  // seconds since the epoch, 0 if unknown
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The location for messages, without credentials: "file:///srv/backups".
  virtual std::string Describe() const = 0;

  // How long after a Put returns until every List is guaranteed to show it.
  // Lease taking waits this long between writing its lease and re-listing.
  // Zero for stores with read-after-write listings (a local file system).
  virtual std::chrono::milliseconds ListSettleTime() const {
    return std::chrono::milliseconds(200);
  }

  virtual Status Put(std::string_view name, ByteSpan data) = 0;
  virtual Result<Bytes> Get(std::string_view name) = 0;
  virtual Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) = 0;
  // GetRange into a caller-owned buffer (resized to `length`), so a hot loop
  // can reuse one allocation. Same contract as GetRange; the default forwards.
  virtual Status GetRangeInto(std::string_view name, uint64_t offset, uint64_t length, Bytes* out) {
    Result<Bytes> r = GetRange(name, offset, length);
    if (!r.ok()) return r.status();
    *out = std::move(r).value();
    return Status::Ok();
  }
  virtual Result<ObjectInfo> Stat(std::string_view name) = 0;
  virtual Status Delete(std::string_view name) = 0;
  virtual Status List(std::string_view prefix,
                      const std::function<Status(const ObjectInfo&)>& visit) = 0;

  // Removes what interrupted writers left behind that is invisible to List
  // (temporary files, unfinished multipart uploads) and older than
  // `older_than_unix`. Returns how many were removed. Only prune calls it,
  // under an exclusive lease. The default has nothing to remove.
  virtual Result<uint64_t> RemoveStaleTemporaries(int64_t older_than_unix) {
    (void)older_than_unix;
    return uint64_t{0};
  }
};

// Where a repository lives, parsed from a URL:
//   file:///abs/path  (or a plain path, absolute or relative)
//   nfs://host[:port]/export/path?version=3
//   s3://bucket/prefix
struct LocationUrl {
  std::string scheme;  // "file", "nfs", "s3"
  std::string host;    // nfs server, or s3 bucket
  int port = 0;
  std::string path;   // file: absolute directory; nfs: export path; s3: key prefix
  std::string query;  // raw query string, without '?'
  std::string original;
};

// InvalidArgument with the reason when `url` is malformed or its scheme is
// unknown.
Result<LocationUrl> ParseLocationUrl(std::string_view url);

// How S3 requests name the bucket: in the path (http://host/bucket/key) or
// in the host name (http://bucket.host/key).
enum class S3AddressingStyle {
  kAuto,           // path style for a custom endpoint or an IP, virtual-hosted for AWS
  kPath,           // MinIO, Ceph RGW and most on-premises stores
  kVirtualHosted,  // AWS (required for buckets created after 2020 in new regions)
};

struct BackendOptions {
  // S3 endpoint, "http://127.0.0.1:9000" or "https://minio.corp:9000"; empty
  // means AWS (https://s3.<region>.amazonaws.com).
  std::string s3_endpoint;
  // Signing region; empty means us-east-1.
  std::string s3_region;
  // PEM file of the CA certificates to trust for an https endpoint instead
  // of the system store (on-premises stores with an internal CA).
  std::string s3_ca_file;
  S3AddressingStyle s3_addressing_style = S3AddressingStyle::kAuto;
  // S3 credentials of the location (both or neither); empty: the
  // environment or the shared credentials file, as LoadS3Credentials.
  std::string s3_access_key_id;
  std::string s3_secret_access_key;
  // Send "UNSIGNED-PAYLOAD" instead of the body's SHA-256 (saves a hash pass
  // per upload). Honoured over https only; Content-MD5 then protects bodies.
  bool s3_unsigned_payload = false;
  // Retry budget of the network backends (S3, later NFS) per operation:
  // attempts, the first included, and the time after which no retry starts.
  // 0 keeps the defaults (8 attempts, 120 s).
  int retry_max_attempts = 0;
  std::chrono::milliseconds retry_max_elapsed{0};
};

// Opens the backend for a location. For file:// with `create`, makes the
// directory if missing; without it, NotFound when the directory is missing.
Result<std::unique_ptr<Backend>> OpenBackend(std::string_view url, const BackendOptions& options,
                                             bool create);

}  // namespace bunker::backend
