#pragma once

// The S3 XML documents the S3 backend reads and writes: ListObjectsV2
// results, error bodies, InitiateMultipartUpload / CompleteMultipartUpload
// results and DeleteObjects results; and the two request bodies it sends
// (CompleteMultipartUpload, Delete).
//
// The parser is a small hand-written one for the subset S3 servers send:
// elements, attributes (skipped), character data, CDATA, comments,
// processing instructions, the five predefined entities and numeric
// character references. Everything from the server is hostile: documents
// are bounded in size, depth and element count before anything is
// allocated for them; DOCTYPE (and so entity expansion) is refused; any
// malformed or truncated input is a Corruption status naming what was
// wrong, never a crash or an unbounded allocation.
//
// Element names are matched by local name (a namespace prefix such as
// "s3:" is ignored). Thread-safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodeagent/core/util/status.h"

namespace bunker::backend::s3xml {

inline constexpr size_t kMaxDocumentBytes = size_t{32} << 20;
inline constexpr size_t kMaxDepth = 32;
inline constexpr size_t kMaxElements = 200000;

// A parsed element: its local name, its own character data (concatenated,
// entities decoded, not trimmed) and its child elements in order.
struct XmlElement {
  std::string name;
  std::string text;
  std::vector<XmlElement> children;

  // First child with this local name, or nullptr.
  const XmlElement* Child(std::string_view child_name) const;
  // Text of the first child with this name, or "" when absent.
  std::string ChildText(std::string_view child_name) const;
};

// Parses a whole document and returns its root element.
Result<XmlElement> ParseXml(std::string_view document);

struct ListedObject {
  std::string key;  // decoded when the response says EncodingType=url
  uint64_t size = 0;
  int64_t mtime_unix = 0;  // 0 when LastModified is absent
};

struct ListObjectsV2Page {
  std::vector<ListedObject> objects;
  bool is_truncated = false;
  std::string next_continuation_token;  // non-empty whenever is_truncated
};

// A ListBucketResult. Corruption when the root is something else, a size or
// date is malformed, or the page is truncated without a continuation token.
Result<ListObjectsV2Page> ParseListObjectsV2(std::string_view document);

// The body of an S3 error response (<Error><Code>…</Code>…</Error>).
struct ErrorInfo {
  std::string code;        // "NoSuchKey", "SignatureDoesNotMatch", …
  std::string message;     // free text from the server (bounded)
  std::string request_id;  // for support tickets, may be empty
  std::string region;      // <Region> on wrong-region errors, may be empty
};

// Corruption unless the document is an <Error> element.
Result<ErrorInfo> ParseError(std::string_view document);

// The UploadId of an InitiateMultipartUploadResult.
Result<std::string> ParseInitiateMultipartUpload(std::string_view document);

// CompleteMultipartUpload answers 200 even when it failed: the body is then
// an <Error> document. Exactly one of `etag`/`error` is meaningful.
struct CompleteMultipartOutcome {
  std::string etag;
  std::optional<ErrorInfo> error;
};
Result<CompleteMultipartOutcome> ParseCompleteMultipartUpload(std::string_view document);

struct DeleteError {
  std::string key;
  std::string code;
  std::string message;
};
struct DeleteObjectsResult {
  std::vector<std::string> deleted;
  std::vector<DeleteError> errors;
};
Result<DeleteObjectsResult> ParseDeleteObjectsResult(std::string_view document);

// Escapes & < > " ' for element content.
std::string XmlEscape(std::string_view text);

// <CompleteMultipartUpload> listing (part number, ETag) in the given order.
std::string BuildCompleteMultipartUpload(const std::vector<std::pair<int, std::string>>& parts);

// <Delete> for DeleteObjects; `quiet` asks the server to report errors only.
std::string BuildDeleteObjects(const std::vector<std::string>& keys, bool quiet);

// Decodes a key from a listing made with encoding-type=url: %XX escapes and
// '+' for a space. Corruption on a malformed escape.
Result<std::string> UrlDecodeKey(std::string_view encoded);

// "2009-10-12T17:50:30.000Z" (fraction optional) → seconds since the epoch.
Result<int64_t> ParseIso8601(std::string_view text);

}  // namespace bunker::backend::s3xml
