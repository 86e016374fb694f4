#include "nodeagent/core/backend/s3_backend.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "nodeagent/core/backend/http_client.h"
#include "nodeagent/core/backend/s3_xml.h"
#include "nodeagent/core/backend/sigv4.h"

namespace bunker::backend {

namespace {

constexpr size_t kMaxKeyBytes = 1024;  // S3's limit on a key
// Room for an error document when a body of known size is expected.
constexpr uint64_t kErrorBodySlack = uint64_t{1} << 20;
// Small responses (empty bodies, errors, multipart results).
constexpr uint64_t kSmallResponse = uint64_t{1} << 20;

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// The same rules as the file backend, so a repository can move between
// backends: no empty, "." or ".." segment, no leading or trailing '/', no NUL.
Status ValidateName(std::string_view name) {
  auto bad = [&] { return InvalidArgument("invalid object name \"" + std::string(name) + "\""); };
  if (name.empty() || name.front() == '/' || name.back() == '/') return bad();
  if (name.find('\0') != std::string_view::npos) return bad();
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return bad();
    start = end + 1;
  }
  return Status::Ok();
}

// Usable as a DNS label sequence (virtual-hosted addressing).
bool IsDnsCompatibleBucket(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  for (char c : bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  if (bucket.front() == '-' || bucket.front() == '.' || bucket.back() == '-' ||
      bucket.back() == '.') {
    return false;
  }
  return bucket.find("..") == std::string_view::npos && !IsIpLiteral(bucket);
}

std::string Md5Base64(ByteSpan data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1) {
    spdlog::critical("OpenSSL MD5 failed");
    std::abort();  // broken invariant: the default provider always has MD5
  }
  return Base64Encode(ByteSpan(digest, len));
}

// "Wed, 21 Oct 2015 07:28:00 GMT" → seconds; 0 when absent or malformed
// (the time is informational).
int64_t ParseHttpDate(const std::string& text) {
  if (text.empty()) return 0;
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

Result<uint64_t> ParseDecimal(std::string_view text, std::string_view what) {
  if (text.empty() || text.size() > 19) {
    return IOError("bad " + std::string(what) + " \"" + std::string(text.substr(0, 32)) + "\"");
  }
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return IOError("bad " + std::string(what) + " \"" + std::string(text.substr(0, 32)) + "\"");
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

// ------------------------------------------------------------ credentials

Result<S3Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile) {
  S3Credentials out;
  bool in_profile = false, found = false;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      if (t.back() != ']') continue;
      std::string section = Trim(std::string_view(t).substr(1, t.size() - 2));
      // The config file spells non-default profiles "profile NAME"; accept both.
      if (section.starts_with("profile ")) section = Trim(std::string_view(section).substr(8));
      in_profile = section == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Trim(std::string_view(t).substr(0, eq));
    std::string value = Trim(std::string_view(t).substr(eq + 1));
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key == "aws_access_key_id") {
      out.access_key_id = value;
    } else if (key == "aws_secret_access_key") {
      out.secret_access_key = value;
    } else if (key == "aws_session_token") {
      out.session_token = value;
    }
  }
  if (!found) return NotFound("no profile [" + std::string(profile) + "]");
  if (out.access_key_id.empty() || out.secret_access_key.empty()) {
    return InvalidArgument("profile [" + std::string(profile) +
                           "] lacks aws_access_key_id or aws_secret_access_key");
  }
  return out;
}

Result<S3Credentials> LoadS3Credentials() {
  S3Credentials env;
  env.access_key_id = GetEnv("AWS_ACCESS_KEY_ID");
  env.secret_access_key = GetEnv("AWS_SECRET_ACCESS_KEY");
  env.session_token = GetEnv("AWS_SESSION_TOKEN");
  if (!env.access_key_id.empty() || !env.secret_access_key.empty()) {
    if (env.access_key_id.empty() || env.secret_access_key.empty()) {
      return InvalidArgument(
          "S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
    }
    env.source = "environment";
    return env;
  }
  std::string path = GetEnv("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty()) {
    std::string home = GetEnv("HOME");
    if (!home.empty()) path = home + "/.aws/credentials";
  }
  std::string profile = GetEnv("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::string looked = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set";
  if (!path.empty()) {
    std::ifstream file(path);
    if (file) {
      std::stringstream text;
      text << file.rdbuf();
      Result<S3Credentials> parsed = ParseSharedCredentials(text.str(), profile);
      if (parsed.ok()) {
        parsed->source = path + " [" + profile + "]";
        return parsed;
      }
      if (parsed.status().code() != Code::kNotFound) {
        return parsed.status().Annotated("S3 credentials file " + path);
      }
      looked += ", " + path + " has " + parsed.status().message();
    } else {
      looked += ", " + path + " cannot be read";
    }
  }
  return FailedPrecondition("no S3 credentials: " + looked);
}

// ------------------------------------------------------------ requests

S3WireRequest SignS3Request(const S3RequestSpec& spec, const S3Credentials& credentials,
                            std::string_view region, std::string_view amz_date) {
  std::string raw_path = "/";
  if (spec.path_style) {
    raw_path += spec.bucket;
    if (!spec.bucket_level) raw_path += "/" + spec.key;
  } else if (!spec.bucket_level) {
    raw_path += spec.key;
  }
  sigv4::Request sr;
  sr.method = spec.method;
  sr.canonical_uri = sigv4::CanonicalUri(raw_path, /*normalize=*/false);
  sr.query = spec.query;
  sr.payload_hash = spec.payload_hash;
  sr.headers = {{"host", spec.host},
                {"x-amz-date", std::string(amz_date)},
                {"x-amz-content-sha256", spec.payload_hash}};
  if (!credentials.session_token.empty()) {
    sr.headers.emplace_back("x-amz-security-token", credentials.session_token);
  }
  sr.headers.insert(sr.headers.end(), spec.headers.begin(), spec.headers.end());
  sigv4::Signed sig = sigv4::Sign(sr, credentials.access_key_id, credentials.secret_access_key,
                                  region, "s3", amz_date);
  S3WireRequest out;
  std::string query = sigv4::CanonicalQueryString(spec.query);
  out.target = sr.canonical_uri + (query.empty() ? "" : "?" + query);
  out.headers.assign(sr.headers.begin() + 1, sr.headers.end());  // all but Host
  out.headers.emplace_back("Authorization", std::move(sig.authorization));
  out.canonical_request = std::move(sig.canonical_request);
  return out;
}

struct S3Backend::Call {
  Call(std::string verb_in, std::string op_in, std::string key_in, bool bucket_level_in = false)
      : verb(std::move(verb_in)),
        op(std::move(op_in)),
        key(std::move(key_in)),
        bucket_level(bucket_level_in) {}

  std::string verb;  // HTTP method
  std::string op;    // for messages: "PUT", "LIST", "UploadPart 2/5", …
  std::string key;   // the object's key, or the listing prefix
  bool bucket_level = false;
  sigv4::Pairs query;
  sigv4::Pairs headers;  // sent and signed
  ByteSpan body;
  uint64_t max_response_body = kSmallResponse;
  Bytes* reuse_body = nullptr;  // see HttpRequest::reuse_body
};

S3Backend::S3Backend(S3Options options, std::string endpoint_text, bool tls, bool path_style,
                     std::unique_ptr<HttpClient> http)
    : options_(std::move(options)),
      endpoint_text_(std::move(endpoint_text)),
      tls_(tls),
      path_style_(path_style),
      http_(std::move(http)) {}

S3Backend::~S3Backend() = default;

Result<std::unique_ptr<S3Backend>> S3Backend::Open(S3Options options) {
  const std::string& bucket = options.bucket;
  if (bucket.empty()) return InvalidArgument("S3 location without a bucket");
  for (char c : bucket) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return InvalidArgument("invalid S3 bucket name \"" + bucket + "\"");
  }
  while (!options.prefix.empty() && options.prefix.front() == '/') options.prefix.erase(0, 1);
  while (!options.prefix.empty() && options.prefix.back() == '/') options.prefix.pop_back();
  if (!options.prefix.empty()) {
    RETURN_IF_ERROR(ValidateName(options.prefix).Annotate("S3 key prefix"));
  }
  if (options.region.empty()) options.region = "us-east-1";
  bool aws = options.endpoint.empty();
  std::string endpoint =
      aws ? "https://s3." + options.region + ".amazonaws.com" : std::string(options.endpoint);
  ASSIGN_OR_RETURN(HttpEndpoint ep, ParseHttpEndpoint(endpoint));
  std::string endpoint_text = ep.ToString();

  bool dns_ok = IsDnsCompatibleBucket(bucket) && !IsIpLiteral(ep.host);
  bool path_style = true;
  switch (options.addressing_style) {
    case S3AddressingStyle::kPath:
      path_style = true;
      break;
    case S3AddressingStyle::kVirtualHosted:
      if (!dns_ok) {
        return InvalidArgument("bucket \"" + bucket + "\" at " + endpoint_text +
                               " cannot be addressed virtual-hosted style (not a DNS name, or "
                               "the endpoint is an IP address); use path style");
      }
      path_style = false;
      break;
    case S3AddressingStyle::kAuto:
      // A dotted bucket in a host name breaks the *.s3 wildcard certificate.
      path_style = !(aws && dns_ok && !(ep.tls && bucket.find('.') != std::string::npos));
      break;
  }
  if (!path_style) ep.host = bucket + "." + ep.host;

  if (options.credentials.access_key_id.empty()) {
    ASSIGN_OR_RETURN(options.credentials, LoadS3Credentials());
  } else if (options.credentials.secret_access_key.empty()) {
    return InvalidArgument("S3 credentials without a secret access key");
  }
  if (options.unsigned_payload && !ep.tls) {
    spdlog::warn("S3 unsigned payloads are only used over https; {} signs every body",
                 endpoint_text);
  }
  if (!options.ca_file.empty() && !ep.tls) {
    spdlog::warn("S3 CA file {} is unused: {} is not https", options.ca_file, endpoint_text);
  }
  if (options.part_size < kMinPartSize) {
    return InvalidArgument("S3 multipart part size must be at least 5 MiB");
  }
  if (options.multipart_threshold == 0) {
    return InvalidArgument("S3 multipart threshold must be positive");
  }
  if (!options.clock) options.clock = [] { return std::chrono::system_clock::now(); };

  HttpClientOptions http_options;
  http_options.endpoint = ep;
  http_options.ca_file = options.ca_file;
  http_options.connect_timeout = options.connect_timeout;
  http_options.io_timeout = options.io_timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> http, NewHttpClient(http_options));
  bool tls = ep.tls;
  return std::unique_ptr<S3Backend>(new S3Backend(std::move(options), std::move(endpoint_text), tls,
                                                  path_style, std::move(http)));
}

std::string S3Backend::Describe() const {
  std::string out = "s3://" + options_.bucket;
  if (!options_.prefix.empty()) out += "/" + options_.prefix;
  return out + " at " + endpoint_text_;
}

std::string S3Backend::KeyOf(std::string_view name) const {
  return options_.prefix.empty() ? std::string(name) : options_.prefix + "/" + std::string(name);
}

std::string S3Backend::Where(std::string_view key) const {
  return "s3://" + options_.bucket + "/" + std::string(key) + " at " + endpoint_text_;
}

S3Backend::Stats S3Backend::stats() const {
  return {requests_.load(), multipart_uploads_.load(), parts_uploaded_.load(),
          http_->connections_opened()};
}

Result<HttpResponse> S3Backend::Send(const Call& call) {
  S3RequestSpec spec;
  spec.method = call.verb;
  spec.host = http_->endpoint().HostHeader();
  spec.bucket = options_.bucket;
  spec.path_style = path_style_;
  spec.key = call.key;
  spec.bucket_level = call.bucket_level;
  spec.query = call.query;
  spec.headers = call.headers;
  spec.payload_hash = options_.unsigned_payload && tls_ ? std::string(sigv4::kUnsignedPayload)
                                                        : sigv4::Sha256Hex(call.body);
  S3WireRequest wire = SignS3Request(spec, options_.credentials, options_.region,
                                     sigv4::FormatAmzDate(options_.clock()));
  HttpRequest req;
  req.method = call.verb;
  req.target = std::move(wire.target);
  req.headers = std::move(wire.headers);
  req.body = call.body;
  req.max_response_body = call.max_response_body;
  req.reuse_body = call.reuse_body;
  requests_.fetch_add(1);
  Result<HttpResponse> res = http_->Send(req);
  if (!res.ok()) return res.status().Annotated("s3 " + call.op + " " + Where(call.key));
  return res;
}

Status S3Backend::HttpError(const Call& call, const HttpResponse& res) const {
  s3xml::ErrorInfo info;
  if (!res.body.empty()) {
    Result<s3xml::ErrorInfo> parsed = s3xml::ParseError(AsChars(res.body));
    if (parsed.ok()) info = *parsed;
  }
  const int s = res.status;
  std::string text = "s3 " + call.op + " " + Where(call.key) + ": " + std::to_string(s) + " " +
                     (info.code.empty() ? res.reason : info.code);
  if (!info.message.empty()) text += ": " + info.message;
  std::string region = res.Header("x-amz-bucket-region");
  if (region.empty()) region = info.region;
  if (!region.empty() && region != options_.region) {
    text += " (the bucket is in region " + region + ", this agent signs for " + options_.region +
            ": set the S3 region)";
  }
  if (info.code == "RequestTimeTooSkewed") text += " (this node's clock is off: sync it with NTP)";
  if (!info.request_id.empty()) text += " [request id " + info.request_id + "]";

  const std::string& code = info.code;
  bool transient_code = code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
                        code == "ServiceUnavailable";
  if (s == 404) return NotFound(text);
  if (s == 401 || s == 403) return PermissionDenied(text);
  if (s >= 500 || s == 429 || s == 408 || transient_code) return Unavailable(text);
  if (s == 301 || s == 307 || s == 409 || s == 412 || code == "AuthorizationHeaderMalformed") {
    return FailedPrecondition(text);
  }
  if (s >= 400) return InvalidArgument(text);
  return IOError(text + " (unexpected status)");
}

// ------------------------------------------------------------ operations

Status S3Backend::Put(std::string_view name, ByteSpan data) {
  RETURN_IF_ERROR(ValidateName(name));
  std::string key = KeyOf(name);
  if (key.size() > kMaxKeyBytes) return InvalidArgument("object key longer than 1024 bytes");
  if (data.size() > options_.multipart_threshold) return PutMultipart(key, data);
  Call c("PUT", "PUT", key);
  c.body = data;
  if (options_.unsigned_payload && tls_) c.headers.emplace_back("Content-MD5", Md5Base64(data));
  ASSIGN_OR_RETURN(HttpResponse res, Send(c));
  if (res.status != 200) return HttpError(c, res);
  return Status::Ok();
}

Status S3Backend::PutMultipart(const std::string& key, ByteSpan data) {
  multipart_uploads_.fetch_add(1);
  uint64_t part_size = options_.part_size;
  if ((data.size() + part_size - 1) / part_size > kMaxParts) {
    part_size = (data.size() + kMaxParts - 1) / kMaxParts;
  }
  const uint64_t part_count = (data.size() + part_size - 1) / part_size;

  Call init("POST", "PUT (CreateMultipartUpload)", key);
  init.query = {{"uploads", ""}};
  ASSIGN_OR_RETURN(HttpResponse res, Send(init));
  if (res.status != 200) return HttpError(init, res);
  Result<std::string> id = s3xml::ParseInitiateMultipartUpload(AsChars(res.body));
  if (!id.ok()) return id.status().Annotated("s3 " + init.op + " " + Where(key));
  const std::string upload_id = *id;

  // Any failure from here aborts the upload (best effort: the parts of an
  // upload that cannot be aborted stay until a lifecycle rule removes them).
  auto abort = [&](Status failure) -> Status {
    Call a("DELETE", "PUT (AbortMultipartUpload)", key);
    a.query = {{"uploadId", upload_id}};
    Result<HttpResponse> r = Send(a);
    if (!r.ok()) {
      spdlog::warn("{}", r.status().ToString());
    } else if (r->status != 204 && r->status != 200 && r->status != 404) {
      spdlog::warn("{}", HttpError(a, *r).ToString());
    }
    return failure;
  };

  std::vector<std::pair<int, std::string>> parts;
  for (uint64_t n = 1, offset = 0; offset < data.size(); ++n, offset += part_size) {
    ByteSpan chunk = data.subspan(offset, std::min<uint64_t>(part_size, data.size() - offset));
    Call p("PUT", "PUT (UploadPart " + std::to_string(n) + "/" + std::to_string(part_count) + ")",
           key);
    p.query = {{"partNumber", std::to_string(n)}, {"uploadId", upload_id}};
    p.body = chunk;
    if (options_.unsigned_payload && tls_) p.headers.emplace_back("Content-MD5", Md5Base64(chunk));
    Result<HttpResponse> r = Send(p);
    if (!r.ok()) return abort(r.status());
    if (r->status != 200) return abort(HttpError(p, *r));
    std::string etag = r->Header("ETag");
    if (etag.empty()) {
      return abort(IOError("s3 " + p.op + " " + Where(key) + ": the server sent no ETag"));
    }
    parts.emplace_back(static_cast<int>(n), std::move(etag));
    parts_uploaded_.fetch_add(1);
  }

  std::string body = s3xml::BuildCompleteMultipartUpload(parts);
  Call done("POST", "PUT (CompleteMultipartUpload)", key);
  done.query = {{"uploadId", upload_id}};
  done.headers = {{"Content-Type", "application/xml"}};
  done.body = AsBytes(body);
  Result<HttpResponse> r = Send(done);
  if (!r.ok()) return abort(r.status());
  if (r->status != 200) return abort(HttpError(done, *r));
  Result<s3xml::CompleteMultipartOutcome> outcome =
      s3xml::ParseCompleteMultipartUpload(AsChars(r->body));
  if (!outcome.ok()) return abort(outcome.status().Annotated("s3 " + done.op + " " + Where(key)));
  if (outcome->error) {
    const s3xml::ErrorInfo& e = *outcome->error;
    std::string text = "s3 " + done.op + " " + Where(key) + ": 200 " + e.code + ": " + e.message;
    bool transient = e.code == "InternalError" || e.code == "SlowDown" ||
                     e.code == "ServiceUnavailable" || e.code == "RequestTimeout";
    return abort(transient ? Unavailable(text) : IOError(text));
  }
  return Status::Ok();
}

Result<Bytes> S3Backend::Get(std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  Call c("GET", "GET", KeyOf(name));
  c.max_response_body = kMaxGetBytes;
  ASSIGN_OR_RETURN(HttpResponse res, Send(c));
  if (res.status != 200) return HttpError(c, res);
  return std::move(res.body);
}

Result<Bytes> S3Backend::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  Bytes out;
  RETURN_IF_ERROR(GetRangeInto(name, offset, length, &out));
  return out;
}

Status S3Backend::GetRangeInto(std::string_view name, uint64_t offset, uint64_t length,
                               Bytes* out) {
  RETURN_IF_ERROR(ValidateName(name));
  if (length > kMaxGetBytes || offset > UINT64_MAX - length) {
    return InvalidArgument("range " + std::to_string(offset) + "+" + std::to_string(length) +
                           " of " + std::string(name) + " is too large");
  }
  const std::string key = KeyOf(name);
  auto shorter = [&](const std::string& ends_at) {
    return Corruption(Where(key) + " is shorter than expected: wanted bytes " +
                      std::to_string(offset) + "+" + std::to_string(length) + ", object ends at " +
                      ends_at);
  };
  if (length == 0) {  // no Range header can ask for nothing: check existence and size
    ASSIGN_OR_RETURN(ObjectInfo info, Stat(name));
    if (offset > info.size) return shorter(std::to_string(info.size));
    out->clear();
    return Status::Ok();
  }
  Call c("GET", "GET", key);
  c.headers = {
      {"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1)}};
  c.max_response_body = std::max(length, offset + length) + kErrorBodySlack;
  c.reuse_body = out;
  ASSIGN_OR_RETURN(HttpResponse res, Send(c));
  if (res.status == 206) {
    std::string range = res.Header("Content-Range");  // "bytes 1000-2233/5000"
    if (range.starts_with("bytes ")) {
      size_t dash = range.find('-');
      Result<uint64_t> start = ParseDecimal(
          std::string_view(range).substr(6, dash == std::string::npos ? 0 : dash - 6), "range");
      if (!start.ok() || *start != offset) {
        return Corruption("s3 GET " + Where(key) + ": asked for bytes from " +
                          std::to_string(offset) + ", got Content-Range \"" + range + "\"");
      }
    }
    if (res.body.size() < length) return shorter(std::to_string(offset + res.body.size()));
    if (res.body.size() > length) {
      return Corruption("s3 GET " + Where(key) + ": asked for " + std::to_string(length) +
                        " bytes, got " + std::to_string(res.body.size()));
    }
    *out = std::move(res.body);
    return Status::Ok();
  }
  if (res.status == 200) {  // the server ignored Range and sent the whole object
    if (res.body.size() < offset + length) return shorter(std::to_string(res.body.size()));
    res.body.erase(res.body.begin(), res.body.begin() + static_cast<ptrdiff_t>(offset));
    res.body.resize(length);
    *out = std::move(res.body);
    return Status::Ok();
  }
  if (res.status == 416) {                            // the object ends before `offset`
    std::string range = res.Header("Content-Range");  // "bytes */5000"
    return shorter(range.starts_with("bytes */") ? range.substr(8) : "an earlier byte");
  }
  return HttpError(c, res);
}

Result<ObjectInfo> S3Backend::Stat(std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  Call c("HEAD", "HEAD", KeyOf(name));
  ASSIGN_OR_RETURN(HttpResponse res, Send(c));
  if (res.status != 200) return HttpError(c, res);
  Result<uint64_t> size = ParseDecimal(res.Header("Content-Length"), "Content-Length");
  if (!size.ok()) return size.status().Annotated("s3 HEAD " + Where(c.key));
  return ObjectInfo{std::string(name), *size, ParseHttpDate(res.Header("Last-Modified"))};
}

Status S3Backend::Delete(std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  Call c("DELETE", "DELETE", KeyOf(name));
  ASSIGN_OR_RETURN(HttpResponse res, Send(c));
  if (res.status == 204 || res.status == 200 || res.status == 404) return Status::Ok();
  return HttpError(c, res);
}

Status S3Backend::List(std::string_view prefix,
                       const std::function<Status(const ObjectInfo&)>& visit) {
  return ListPages(prefix, "", visit);
}

Status S3Backend::ListAfter(std::string_view prefix, std::string_view start_after,
                            const std::function<Status(const ObjectInfo&)>& visit) {
  return ListPages(prefix, start_after, visit);
}

Status S3Backend::ListPages(std::string_view prefix, std::string_view start_after,
                            const std::function<Status(const ObjectInfo&)>& visit) {
  if ((!prefix.empty() && prefix.front() == '/') || prefix.find('\0') != std::string_view::npos) {
    return InvalidArgument("invalid listing prefix \"" + std::string(prefix) + "\"");
  }
  const std::string base = options_.prefix.empty() ? "" : options_.prefix + "/";
  const std::string s3_prefix = base + std::string(prefix);
  std::string token;
  for (uint64_t page_number = 1;; ++page_number) {
    Call c("GET", "LIST", s3_prefix, /*bucket_level=*/true);
    c.query = {{"list-type", "2"}, {"prefix", s3_prefix}, {"encoding-type", "url"}};
    if (!token.empty()) {
      c.query.emplace_back("continuation-token", token);
    } else if (!start_after.empty()) {
      c.query.emplace_back("start-after", base + std::string(start_after));
    }
    c.max_response_body = s3xml::kMaxDocumentBytes;
    ASSIGN_OR_RETURN(HttpResponse res, Send(c));
    if (res.status != 200) return HttpError(c, res);
    Result<s3xml::ListObjectsV2Page> page = s3xml::ParseListObjectsV2(AsChars(res.body));
    if (!page.ok()) {
      return page.status().Annotated("s3 LIST " + Where(s3_prefix) + ": page " +
                                     std::to_string(page_number) + " is malformed");
    }
    for (const s3xml::ListedObject& obj : page->objects) {
      if (!obj.key.starts_with(s3_prefix)) {
        return Corruption("s3 LIST " + Where(s3_prefix) + ": the server listed \"" + obj.key +
                          "\", outside the prefix");
      }
      std::string name = obj.key.substr(base.size());
      if (!start_after.empty() && name <= start_after) continue;
      RETURN_IF_ERROR(visit(ObjectInfo{std::move(name), obj.size, obj.mtime_unix}));
    }
    if (!page->is_truncated) return Status::Ok();
    if (page->next_continuation_token == token) {
      return Corruption("s3 LIST " + Where(s3_prefix) + ": the server repeated continuation token");
    }
    token = page->next_continuation_token;
  }
}

}  // namespace bunker::backend
