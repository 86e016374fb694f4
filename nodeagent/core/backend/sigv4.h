#pragma once

// AWS Signature Version 4 (header authentication), as pure functions: no
// network, no clock, no environment. The S3 backend builds a Request, calls
// Sign() and sends the headers it lists plus the returned Authorization.
//
// The steps follow AWS's description and its published test suite:
//   canonical request = method \n canonical URI \n canonical query \n
//                       canonical headers \n \n signed headers \n payload hash
//   string to sign    = "AWS4-HMAC-SHA256" \n amz-date \n scope \n
//                       hex(SHA-256(canonical request))
//   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
//                       service), "aws4_request")
//   signature         = hex(HMAC(signing key, string to sign))
//
// Paths and query parameters are passed raw (not yet percent-encoded); the
// functions here encode them exactly once, per the SigV4 rules, and the same
// encoded strings must go on the wire (CanonicalUri / CanonicalQueryString).
//
// Thread-safety: pure functions of their arguments.

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodeagent/core/crypto/crypto.h"

namespace bunker::backend::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// hex(SHA-256("")).
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Name/value pairs (headers or query parameters), raw, in any order.
using Pairs = std::vector<std::pair<std::string, std::string>>;

// Percent-encodes every byte except the RFC 3986 unreserved characters
// A-Z a-z 0-9 - . _ ~ (upper-case hex, "%20" for a space, never '+'). '/' is
// kept unless `encode_slash`. Multi-byte UTF-8 is encoded byte by byte.
std::string UriEncode(std::string_view raw, bool encode_slash);

// Canonical URI of a raw path (starting with '/'): each segment URI-encoded,
// slashes kept. With `normalize` (every service but S3), "." and ".."
// segments and empty segments are removed first, as the AWS test suite
// expects; S3 signs the path exactly as given (normalize = false), so object
// keys such as "a//b" keep their meaning. An empty path becomes "/".
std::string CanonicalUri(std::string_view raw_path, bool normalize);

// Canonical query string of raw parameters: names and values URI-encoded
// (slashes too), sorted by encoded name then encoded value, joined as
// "a=1&b=&c=3" (a parameter without a value gets "=").
std::string CanonicalQueryString(const Pairs& raw_params);

struct CanonicalHeaders {
  std::string canonical;       // "host:example.com\nx-amz-date:…\n" (ends in \n)
  std::string signed_headers;  // "host;x-amz-date"
};

// Lower-cases names, trims values and collapses inner runs of whitespace to
// one space, joins repeated names with ',' (in the given order) and sorts
// by name.
CanonicalHeaders CanonicalizeHeaders(const Pairs& headers);

struct Request {
  std::string method;         // "GET", "PUT", …
  std::string canonical_uri;  // from CanonicalUri()
  Pairs query;                // raw parameters
  Pairs headers;              // every header to sign; must include host and x-amz-date
  std::string payload_hash;   // hex SHA-256 of the body, or kUnsignedPayload
};

std::string CanonicalRequest(const Request& request, std::string* signed_headers);

// "20150830/us-east-1/service/aws4_request". `date` is YYYYMMDD.
std::string CredentialScope(std::string_view date, std::string_view region,
                            std::string_view service);

// `amz_date` is YYYYMMDD'T'HHMMSS'Z'.
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

crypto::Digest SigningKey(std::string_view secret_access_key, std::string_view date,
                          std::string_view region, std::string_view service);

// Lower-case hex HMAC-SHA256(signing key, string to sign).
std::string Signature(const crypto::Digest& signing_key, std::string_view string_to_sign);

// "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=…, Signature=…".
std::string AuthorizationHeader(std::string_view access_key_id, std::string_view scope,
                                std::string_view signed_headers, std::string_view signature);

struct Signed {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;
  std::string authorization;  // the Authorization header's value
};

// Every step at once. `amz_date` must equal the request's x-amz-date header.
Signed Sign(const Request& request, std::string_view access_key_id,
            std::string_view secret_access_key, std::string_view region, std::string_view service,
            std::string_view amz_date);

// "20150830T123600Z" (UTC).
std::string FormatAmzDate(std::chrono::system_clock::time_point when);

// Lower-case hex SHA-256 of `data` (payload hashes).
std::string Sha256Hex(ByteSpan data);

}  // namespace bunker::backend::sigv4
