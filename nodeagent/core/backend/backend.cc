#include "nodeagent/core/backend/backend.h"

#include <unistd.h>

#include <climits>
#include <string>

#include "nodeagent/core/backend/file_backend.h"
#include "nodeagent/core/backend/nfs_backend.h"
#include "nodeagent/core/backend/retrying_backend.h"
#include "nodeagent/core/backend/s3_backend.h"

namespace bunker::backend {

namespace {

Status BadUrl(std::string_view url, std::string_view why) {
  return InvalidArgument("repository URL \"" + std::string(url) + "\": " + std::string(why));
}

std::string Absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

std::string Normalize(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

}  // namespace

Result<LocationUrl> ParseLocationUrl(std::string_view url) {
  LocationUrl out;
  out.original = std::string(url);
  if (url.empty()) return BadUrl(url, "empty");
  if (url.find('\0') != std::string_view::npos) return BadUrl(url, "contains a NUL byte");
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    if (url.find(':') != std::string_view::npos && url.find('/') > url.find(':')) {
      return BadUrl(url, "unknown form; use file:///path, nfs://host/export or s3://bucket/prefix");
    }
    out.scheme = "file";
    out.path = Normalize(Absolute(std::string(url)));
    return out;
  }
  out.scheme = std::string(url.substr(0, scheme_end));
  std::string_view rest = url.substr(scheme_end + 3);
  size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    out.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  if (out.scheme == "file") {
    if (!out.query.empty()) return BadUrl(url, "file URLs take no query");
    if (rest.empty() || rest.front() != '/') {
      return BadUrl(url, "file URLs need an absolute path: file:///srv/backups");
    }
    out.path = Normalize(std::string(rest));
    return out;
  }
  if (out.scheme == "nfs" || out.scheme == "s3") {
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (authority.empty()) {
      return BadUrl(url, out.scheme == "s3" ? "missing bucket: s3://bucket/prefix"
                                            : "missing server: nfs://host/export/path");
    }
    // host, host:port, [IPv6], [IPv6]:port. A bucket name has no colon.
    std::string_view port;
    bool has_port = false;
    if (authority.front() == '[') {
      const size_t close = authority.find(']');
      if (close == std::string_view::npos) return BadUrl(url, "unterminated [IPv6 address]");
      std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') return BadUrl(url, "unexpected text after the ]");
        port = after.substr(1);
        has_port = true;
      }
      authority = authority.substr(1, close - 1);
      if (authority.empty() ||
          authority.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
        return BadUrl(url, "invalid IPv6 address in brackets");
      }
      if (out.scheme == "s3") return BadUrl(url, "s3 URLs name a bucket, not an address");
    } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
      if (authority.find(':', colon + 1) != std::string_view::npos) {
        return BadUrl(url, "an IPv6 address goes in brackets: nfs://[fd00::1]/export");
      }
      port = authority.substr(colon + 1);
      has_port = true;
      authority = authority.substr(0, colon);
    }
    if (has_port) {
      std::string text(port);
      char* end = nullptr;
      long p = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || p <= 0 || p > 65535 || text.front() == '-' ||
          text.front() == '+' || text.front() == ' ') {
        return BadUrl(url, "invalid port \"" + text + "\"");
      }
      out.port = static_cast<int>(p);
    }
    if (authority.empty()) {
      return BadUrl(url, out.scheme == "s3" ? "missing bucket: s3://bucket/prefix"
                                            : "missing server: nfs://host/export/path");
    }
    out.host = std::string(authority);
    out.path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    if (out.scheme == "nfs" && (out.path.empty() || out.path == "/")) {
      return BadUrl(url, "missing export path: nfs://host/export/path");
    }
    return out;
  }
  return BadUrl(url, "unknown scheme \"" + out.scheme + "\" (supported: file, nfs, s3)");
}

Result<std::unique_ptr<Backend>> OpenBackend(std::string_view url, const BackendOptions& options,
                                             bool create) {
  ASSIGN_OR_RETURN(LocationUrl loc, ParseLocationUrl(url));
  if (loc.scheme == "file") {
    return FileBackend::Open(loc.path, create);
  }
  if (loc.scheme == "s3") {
    // The bucket must exist (`create` does not make buckets); nothing is
    // contacted here: the first request, or ProbeBackend, reports problems.
    if (loc.port != 0) return BadUrl(url, "s3 URLs name a bucket, not host:port");
    if (!loc.query.empty()) {
      return BadUrl(url, "s3 URLs take no query; endpoint and region are options");
    }
    S3Options s3;
    s3.bucket = loc.host;
    s3.prefix = loc.path;
    s3.endpoint = options.s3_endpoint;
    s3.region = options.s3_region.empty() ? "us-east-1" : options.s3_region;
    s3.ca_file = options.s3_ca_file;
    s3.addressing_style = options.s3_addressing_style;
    s3.unsigned_payload = options.s3_unsigned_payload;
    if (!options.s3_access_key_id.empty()) {
      s3.credentials.access_key_id = options.s3_access_key_id;
      s3.credentials.secret_access_key = options.s3_secret_access_key;
      s3.credentials.source = "the backup location";
    }
    Result<std::unique_ptr<S3Backend>> s3_backend = S3Backend::Open(std::move(s3));
    if (!s3_backend.ok()) return s3_backend.status().Annotated("open " + std::string(url));
    RetryOptions retry;
    if (options.retry_max_attempts > 0) retry.max_attempts = options.retry_max_attempts;
    if (options.retry_max_elapsed.count() > 0) retry.max_elapsed = options.retry_max_elapsed;
    return std::unique_ptr<Backend>(
        new RetryingBackend(std::move(s3_backend).value(), std::move(retry)));
  }
  if (loc.scheme == "nfs") {
    return NfsBackend::Open(url, create);
  }
  return Unimplemented(
      "the " + loc.scheme +
      " backend is not built yet; this bunker-agent supports file:// and s3:// locations");
}

}  // namespace bunker::backend
