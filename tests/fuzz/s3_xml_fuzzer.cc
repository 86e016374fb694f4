// The S3 XML parsers (nodeagent/core/backend/s3_xml.h): every document an S3
// server sends is hostile.
//
// Input: a document; each parser reads it (as ListObjectsV2, Error,
// InitiateMultipartUpload, CompleteMultipartUpload and DeleteObjects
// results), and UrlDecodeKey and ParseIso8601 read it as text.
//
// Properties: rejections are Corruption; an accepted listing has non-empty
// keys and a continuation token when truncated; and whatever the input,
// element text escaped by XmlEscape (as in the bodies we send) parses back to
// exactly that text, as does a key in a BuildDeleteObjects body.

#include <string>
#include <string_view>

#include "nodeagent/core/backend/s3_xml.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

template <typename T>
bool Rejected(const Result<T>& r) {
  FUZZ_CHECK(r.ok() || r.status().code() == Code::kCorruption, Describe(r.status()));
  return !r.ok();
}

}  // namespace

BUNKER_FUZZ_TARGET(s3_xml) {
  namespace x = backend::s3xml;
  std::string_view doc = AsChars(data);
  bool accepted = false;
  Result<x::XmlElement> root = x::ParseXml(doc);
  accepted |= !Rejected(root);
  Result<x::ListObjectsV2Page> list = x::ParseListObjectsV2(doc);
  if (!Rejected(list)) {
    accepted = true;
    FUZZ_CHECK(!list->is_truncated || !list->next_continuation_token.empty(),
               "truncated listing without a token");
    for (const x::ListedObject& o : list->objects) {
      FUZZ_CHECK(!o.key.empty(), "listed object without a key");
    }
  }
  accepted |= !Rejected(x::ParseError(doc));
  accepted |= !Rejected(x::ParseInitiateMultipartUpload(doc));
  accepted |= !Rejected(x::ParseCompleteMultipartUpload(doc));
  accepted |= !Rejected(x::ParseDeleteObjectsResult(doc));
  Rejected(x::UrlDecodeKey(doc));
  Rejected(x::ParseIso8601(doc));

  if (doc.size() <= 4096) {
    Result<x::XmlElement> text = x::ParseXml("<a>" + x::XmlEscape(doc) + "</a>");
    FUZZ_CHECK(text.ok() && text->text == doc && text->children.empty(),
               "escaped text does not parse back");
    Result<x::XmlElement> del = x::ParseXml(x::BuildDeleteObjects({std::string(doc)}, true));
    const x::XmlElement* object = del.ok() ? del->Child("Object") : nullptr;
    FUZZ_CHECK(
        object != nullptr && object->Child("Key") != nullptr && object->ChildText("Key") == doc,
        "key in a Delete body does not parse back");
  }
  return accepted;
}

}  // namespace bunker::fuzz
