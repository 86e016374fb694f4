#include "nodeagent/core/backend/sigv4.h"

#include <algorithm>
#include <ctime>
#include <map>

namespace bunker::backend::sigv4 {

namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Trims the ends and collapses inner whitespace runs to one space.
std::string TrimAll(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view DatePart(std::string_view amz_date) { return amz_date.substr(0, 8); }

}  // namespace

std::string UriEncode(std::string_view raw, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size() + raw.size() / 2);
  for (char ch : raw) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view raw_path, bool normalize) {
  if (raw_path.empty()) return "/";
  if (!normalize) return UriEncode(raw_path, /*encode_slash=*/false);
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= raw_path.size()) {
    size_t end = raw_path.find('/', start);
    if (end == std::string_view::npos) end = raw_path.size();
    std::string_view seg = raw_path.substr(start, end - start);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  std::string out = raw_path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out += UriEncode(segments[i], /*encode_slash=*/true);
  }
  if (raw_path.back() == '/' && !segments.empty()) out.push_back('/');
  return out.empty() ? "/" : out;
}

std::string CanonicalQueryString(const Pairs& raw_params) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(raw_params.size());
  for (const auto& [name, value] : raw_params) {
    encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

CanonicalHeaders CanonicalizeHeaders(const Pairs& headers) {
  // std::map sorts by lower-cased name; repeated names keep their order.
  std::map<std::string, std::string> merged;
  for (const auto& [name, value] : headers) {
    std::string key = Lower(TrimAll(name));
    auto [it, inserted] = merged.try_emplace(key, TrimAll(value));
    if (!inserted) {
      it->second.push_back(',');
      it->second += TrimAll(value);
    }
  }
  CanonicalHeaders out;
  for (const auto& [name, value] : merged) {
    out.canonical += name;
    out.canonical.push_back(':');
    out.canonical += value;
    out.canonical.push_back('\n');
    if (!out.signed_headers.empty()) out.signed_headers.push_back(';');
    out.signed_headers += name;
  }
  return out;
}

std::string CanonicalRequest(const Request& request, std::string* signed_headers) {
  CanonicalHeaders headers = CanonicalizeHeaders(request.headers);
  std::string out;
  out.reserve(256 + headers.canonical.size());
  out += request.method;
  out.push_back('\n');
  out += request.canonical_uri;
  out.push_back('\n');
  out += CanonicalQueryString(request.query);
  out.push_back('\n');
  out += headers.canonical;
  out.push_back('\n');
  out += headers.signed_headers;
  out.push_back('\n');
  out += request.payload_hash;
  if (signed_headers != nullptr) *signed_headers = std::move(headers.signed_headers);
  return out;
}

std::string CredentialScope(std::string_view date, std::string_view region,
                            std::string_view service) {
  std::string out(date);
  out.push_back('/');
  out += region;
  out.push_back('/');
  out += service;
  out += "/aws4_request";
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.push_back('\n');
  out += amz_date;
  out.push_back('\n');
  out += scope;
  out.push_back('\n');
  out += Sha256Hex(AsBytes(canonical_request));
  return out;
}

crypto::Digest SigningKey(std::string_view secret_access_key, std::string_view date,
                          std::string_view region, std::string_view service) {
  std::string seed = "AWS4";
  seed += secret_access_key;
  crypto::Digest k_date = crypto::HmacSha256(AsBytes(seed), AsBytes(date));
  // The seed holds the secret: wipe it (best effort; std::string may have copied).
  std::fill(seed.begin(), seed.end(), '\0');
  crypto::Digest k_region = crypto::HmacSha256(k_date, AsBytes(region));
  crypto::Digest k_service = crypto::HmacSha256(k_region, AsBytes(service));
  return crypto::HmacSha256(k_service, AsBytes(std::string_view("aws4_request")));
}

std::string Signature(const crypto::Digest& signing_key, std::string_view string_to_sign) {
  return HexEncode(crypto::HmacSha256(signing_key, AsBytes(string_to_sign)));
}

std::string AuthorizationHeader(std::string_view access_key_id, std::string_view scope,
                                std::string_view signed_headers, std::string_view signature) {
  std::string out(kAlgorithm);
  out += " Credential=";
  out += access_key_id;
  out.push_back('/');
  out += scope;
  out += ", SignedHeaders=";
  out += signed_headers;
  out += ", Signature=";
  out += signature;
  return out;
}

Signed Sign(const Request& request, std::string_view access_key_id,
            std::string_view secret_access_key, std::string_view region, std::string_view service,
            std::string_view amz_date) {
  Signed out;
  out.canonical_request = CanonicalRequest(request, &out.signed_headers);
  std::string scope = CredentialScope(DatePart(amz_date), region, service);
  out.string_to_sign = StringToSign(amz_date, scope, out.canonical_request);
  crypto::Digest key = SigningKey(secret_access_key, DatePart(amz_date), region, service);
  out.authorization = AuthorizationHeader(access_key_id, scope, out.signed_headers,
                                          Signature(key, out.string_to_sign));
  return out;
}

std::string FormatAmzDate(std::chrono::system_clock::time_point when) {
  std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, n);
}

std::string Sha256Hex(ByteSpan data) { return HexEncode(crypto::Sha256(data)); }

}  // namespace bunker::backend::sigv4
