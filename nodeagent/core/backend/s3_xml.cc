#include "nodeagent/core/backend/s3_xml.h"

#include <ctime>

namespace bunker::backend::s3xml {

namespace {

// Longest free text kept from an error body (messages end up in logs).
constexpr size_t kMaxMessageBytes = 1024;

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsNameStart(char c) {
  auto u = static_cast<unsigned char>(c);
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || u >= 0x80;
}

bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

std::string_view LocalName(std::string_view name) {
  size_t colon = name.rfind(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Recursive descent over the document; depth is bounded by kMaxDepth, so the
// recursion is too.
class Parser {
 public:
  explicit Parser(std::string_view doc) : doc_(doc) {}

  Result<XmlElement> Parse() {
    if (doc_.size() > kMaxDocumentBytes) {
      return Corruption("XML document of " + std::to_string(doc_.size()) +
                        " bytes exceeds the limit of " + std::to_string(kMaxDocumentBytes));
    }
    if (doc_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte order mark
    RETURN_IF_ERROR(SkipMisc());
    if (AtEnd()) return Fail("no root element");
    if (Peek() != '<') return Fail("text before the root element");
    XmlElement root;
    RETURN_IF_ERROR(ParseElement(&root, 1));
    RETURN_IF_ERROR(SkipMisc());
    if (!AtEnd()) return Fail("content after the root element");
    return root;
  }

 private:
  bool AtEnd() const { return pos_ >= doc_.size(); }
  char Peek() const { return doc_[pos_]; }
  bool LookingAt(std::string_view s) const { return doc_.substr(pos_).starts_with(s); }

  Status Fail(std::string_view what) const {
    return Corruption("malformed XML at byte " + std::to_string(pos_) + ": " + std::string(what));
  }

  void SkipSpace() {
    while (!AtEnd() && IsXmlSpace(Peek())) ++pos_;
  }

  // Skips up to and including `terminator`.
  Status SkipPast(std::string_view terminator, std::string_view what) {
    size_t end = doc_.find(terminator, pos_);
    if (end == std::string_view::npos)
      return Fail(std::string("unterminated ") + std::string(what));
    pos_ = end + terminator.size();
    return Status::Ok();
  }

  // Whitespace, comments and processing instructions (prolog and epilog).
  Status SkipMisc() {
    while (true) {
      SkipSpace();
      if (LookingAt("<?")) {
        RETURN_IF_ERROR(SkipPast("?>", "processing instruction"));
      } else if (LookingAt("<!--")) {
        RETURN_IF_ERROR(SkipPast("-->", "comment"));
      } else if (LookingAt("<!")) {
        return Fail("DOCTYPE and other declarations are not accepted");
      } else {
        return Status::Ok();
      }
    }
  }

  Status ParseName(std::string_view* name) {
    size_t start = pos_;
    if (AtEnd() || !IsNameStart(Peek())) return Fail("expected an element name");
    while (!AtEnd() && IsNameChar(Peek())) ++pos_;
    *name = doc_.substr(start, pos_ - start);
    return Status::Ok();
  }

  // After the element name: attributes up to '>' or '/>'.
  Status SkipAttributes(bool* self_closing) {
    while (true) {
      bool had_space = !AtEnd() && IsXmlSpace(Peek());
      SkipSpace();
      if (AtEnd()) return Fail("unterminated start tag");
      if (Peek() == '>') {
        ++pos_;
        *self_closing = false;
        return Status::Ok();
      }
      if (LookingAt("/>")) {
        pos_ += 2;
        *self_closing = true;
        return Status::Ok();
      }
      if (!had_space) return Fail("expected whitespace before an attribute");
      std::string_view attr;
      RETURN_IF_ERROR(ParseName(&attr));
      SkipSpace();
      if (AtEnd() || Peek() != '=') return Fail("expected '=' after an attribute name");
      ++pos_;
      SkipSpace();
      if (AtEnd() || (Peek() != '"' && Peek() != '\'')) return Fail("expected a quoted value");
      char quote = Peek();
      ++pos_;
      size_t end = doc_.find(quote, pos_);
      if (end == std::string_view::npos) return Fail("unterminated attribute value");
      if (doc_.substr(pos_, end - pos_).find('<') != std::string_view::npos) {
        return Fail("'<' in an attribute value");
      }
      pos_ = end + 1;
    }
  }

  // At '&': decodes one reference into *out.
  Status AppendReference(std::string* out) {
    size_t semi = doc_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return Fail("unterminated reference");
    std::string_view ref = doc_.substr(pos_ + 1, semi - pos_ - 1);
    pos_ = semi + 1;
    if (ref == "amp") {
      out->push_back('&');
    } else if (ref == "lt") {
      out->push_back('<');
    } else if (ref == "gt") {
      out->push_back('>');
    } else if (ref == "quot") {
      out->push_back('"');
    } else if (ref == "apos") {
      out->push_back('\'');
    } else if (ref.size() >= 2 && ref[0] == '#') {
      bool hex = ref[1] == 'x';
      std::string_view digits = ref.substr(hex ? 2 : 1);
      if (digits.empty() || digits.size() > (hex ? 6u : 7u)) return Fail("bad character reference");
      uint32_t cp = 0;
      for (char c : digits) {
        uint32_t d;
        if (c >= '0' && c <= '9') {
          d = static_cast<uint32_t>(c - '0');
        } else if (hex && c >= 'a' && c <= 'f') {
          d = static_cast<uint32_t>(c - 'a' + 10);
        } else if (hex && c >= 'A' && c <= 'F') {
          d = static_cast<uint32_t>(c - 'A' + 10);
        } else {
          return Fail("bad character reference");
        }
        cp = cp * (hex ? 16 : 10) + d;
      }
      if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return Fail("character reference to an invalid code point");
      }
      AppendUtf8(cp, out);
    } else {
      return Fail("unknown entity &" + std::string(ref) + ";");
    }
    return Status::Ok();
  }

  Status ParseElement(XmlElement* out, size_t depth) {
    if (depth > kMaxDepth) return Fail("elements nested deeper than " + std::to_string(kMaxDepth));
    if (++elements_ > kMaxElements) {
      return Fail("more than " + std::to_string(kMaxElements) + " elements");
    }
    ++pos_;  // '<'
    std::string_view name;
    RETURN_IF_ERROR(ParseName(&name));
    out->name = std::string(LocalName(name));
    bool self_closing = false;
    RETURN_IF_ERROR(SkipAttributes(&self_closing));
    if (self_closing) return Status::Ok();
    while (true) {
      if (AtEnd()) return Fail("unterminated element <" + std::string(name) + ">");
      char c = Peek();
      if (c == '&') {
        RETURN_IF_ERROR(AppendReference(&out->text));
      } else if (c != '<') {
        size_t end = doc_.find_first_of("<&", pos_);
        if (end == std::string_view::npos) end = doc_.size();
        out->text.append(doc_.substr(pos_, end - pos_));
        pos_ = end;
      } else if (LookingAt("</")) {
        pos_ += 2;
        std::string_view closing;
        RETURN_IF_ERROR(ParseName(&closing));
        if (closing != name) {
          return Fail("</" + std::string(closing) + "> closes <" + std::string(name) + ">");
        }
        SkipSpace();
        if (AtEnd() || Peek() != '>') return Fail("unterminated end tag");
        ++pos_;
        return Status::Ok();
      } else if (LookingAt("<![CDATA[")) {
        pos_ += 9;
        size_t end = doc_.find("]]>", pos_);
        if (end == std::string_view::npos) return Fail("unterminated CDATA section");
        out->text.append(doc_.substr(pos_, end - pos_));
        pos_ = end + 3;
      } else if (LookingAt("<!--")) {
        RETURN_IF_ERROR(SkipPast("-->", "comment"));
      } else if (LookingAt("<?")) {
        RETURN_IF_ERROR(SkipPast("?>", "processing instruction"));
      } else if (LookingAt("<!")) {
        return Fail("declaration inside an element");
      } else {
        out->children.emplace_back();
        RETURN_IF_ERROR(ParseElement(&out->children.back(), depth + 1));
      }
    }
  }

  std::string_view doc_;
  size_t pos_ = 0;
  size_t elements_ = 0;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsXmlSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsXmlSpace(s.back())) s.remove_suffix(1);
  return s;
}

Result<uint64_t> ParseUnsigned(std::string_view text, std::string_view what) {
  text = Trim(text);
  if (text.empty() || text.size() > 20) {
    return Corruption("bad " + std::string(what) + " \"" + std::string(text.substr(0, 32)) + "\"");
  }
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return Corruption("bad " + std::string(what) + " \"" + std::string(text.substr(0, 32)) +
                        "\"");
    }
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return Corruption(std::string(what) + " overflows");
    v = v * 10 + d;
  }
  return v;
}

Result<bool> ParseBool(std::string_view text, std::string_view what) {
  text = Trim(text);
  if (text == "true") return true;
  if (text == "false") return false;
  return Corruption("bad " + std::string(what) + " \"" + std::string(text.substr(0, 32)) + "\"");
}

Status ExpectRoot(const XmlElement& root, std::string_view name) {
  if (root.name != name) {
    return Corruption("expected an S3 <" + std::string(name) + "> document, got <" +
                      root.name.substr(0, 64) + ">");
  }
  return Status::Ok();
}

std::string Bounded(std::string_view s) {
  s = Trim(s);
  if (s.size() <= kMaxMessageBytes) return std::string(s);
  return std::string(s.substr(0, kMaxMessageBytes)) + "…";
}

ErrorInfo ErrorFrom(const XmlElement& e) {
  ErrorInfo info;
  info.code = Bounded(e.ChildText("Code"));
  info.message = Bounded(e.ChildText("Message"));
  info.request_id = Bounded(e.ChildText("RequestId"));
  info.region = Bounded(e.ChildText("Region"));
  return info;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<int> Digits(std::string_view text, size_t pos, size_t n) {
  if (pos + n > text.size()) return Corruption("truncated date");
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return Corruption("bad digit in date");
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

}  // namespace

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const XmlElement& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string XmlElement::ChildText(std::string_view child_name) const {
  const XmlElement* c = Child(child_name);
  return c == nullptr ? std::string() : c->text;
}

Result<XmlElement> ParseXml(std::string_view document) { return Parser(document).Parse(); }

Result<int64_t> ParseIso8601(std::string_view text) {
  text = Trim(text);
  // YYYY-MM-DDTHH:MM:SS[.fraction][Z|+00:00]
  auto fail = [&] {
    return Corruption("bad timestamp \"" + std::string(text.substr(0, 40)) + "\"");
  };
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return fail();
  }
  std::tm tm{};
  Result<int> year = Digits(text, 0, 4), month = Digits(text, 5, 2), day = Digits(text, 8, 2),
              hour = Digits(text, 11, 2), minute = Digits(text, 14, 2),
              second = Digits(text, 17, 2);
  if (!year.ok() || !month.ok() || !day.ok() || !hour.ok() || !minute.ok() || !second.ok()) {
    return fail();
  }
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return fail();
  }
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start || pos - start > 9) return fail();
  }
  std::string_view zone = text.substr(pos);
  if (!zone.empty() && zone != "Z" && zone != "z" && zone != "+00:00") return fail();
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  return static_cast<int64_t>(timegm(&tm));
}

Result<std::string> UrlDecodeKey(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= encoded.size()) {
        return Corruption("truncated %-escape in listed key");
      }
      int hi = HexValue(encoded[i + 1]), lo = HexValue(encoded[i + 2]);
      if (hi < 0 || lo < 0) return Corruption("bad %-escape in listed key");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<ListObjectsV2Page> ParseListObjectsV2(std::string_view document) {
  ASSIGN_OR_RETURN(XmlElement root, ParseXml(document));
  RETURN_IF_ERROR(ExpectRoot(root, "ListBucketResult"));
  ListObjectsV2Page page;
  bool url_encoded = Trim(root.ChildText("EncodingType")) == "url";
  if (const XmlElement* t = root.Child("IsTruncated"); t != nullptr) {
    ASSIGN_OR_RETURN(page.is_truncated, ParseBool(t->text, "IsTruncated"));
  }
  page.next_continuation_token = std::string(Trim(root.ChildText("NextContinuationToken")));
  if (page.is_truncated && page.next_continuation_token.empty()) {
    return Corruption("truncated listing without a NextContinuationToken");
  }
  for (const XmlElement& c : root.children) {
    if (c.name != "Contents") continue;
    const XmlElement* key = c.Child("Key");
    if (key == nullptr) return Corruption("listing entry without a <Key>");
    ListedObject obj;
    if (url_encoded) {
      ASSIGN_OR_RETURN(obj.key, UrlDecodeKey(key->text));
    } else {
      obj.key = key->text;
    }
    if (obj.key.empty()) return Corruption("listing entry with an empty <Key>");
    const XmlElement* size = c.Child("Size");
    if (size == nullptr) return Corruption("listing entry without a <Size>");
    ASSIGN_OR_RETURN(obj.size, ParseUnsigned(size->text, "Size"));
    if (const XmlElement* m = c.Child("LastModified"); m != nullptr) {
      ASSIGN_OR_RETURN(obj.mtime_unix, ParseIso8601(m->text));
    }
    page.objects.push_back(std::move(obj));
  }
  return page;
}

Result<ErrorInfo> ParseError(std::string_view document) {
  ASSIGN_OR_RETURN(XmlElement root, ParseXml(document));
  RETURN_IF_ERROR(ExpectRoot(root, "Error"));
  ErrorInfo info = ErrorFrom(root);
  if (info.code.empty()) return Corruption("S3 <Error> without a <Code>");
  return info;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view document) {
  ASSIGN_OR_RETURN(XmlElement root, ParseXml(document));
  RETURN_IF_ERROR(ExpectRoot(root, "InitiateMultipartUploadResult"));
  std::string id(Trim(root.ChildText("UploadId")));
  if (id.empty()) return Corruption("InitiateMultipartUploadResult without an <UploadId>");
  if (id.size() > 4096) return Corruption("UploadId longer than 4096 bytes");
  return id;
}

Result<CompleteMultipartOutcome> ParseCompleteMultipartUpload(std::string_view document) {
  ASSIGN_OR_RETURN(XmlElement root, ParseXml(document));
  CompleteMultipartOutcome out;
  if (root.name == "Error") {
    out.error = ErrorFrom(root);
    if (out.error->code.empty()) return Corruption("S3 <Error> without a <Code>");
    return out;
  }
  RETURN_IF_ERROR(ExpectRoot(root, "CompleteMultipartUploadResult"));
  out.etag = Bounded(root.ChildText("ETag"));
  return out;
}

Result<DeleteObjectsResult> ParseDeleteObjectsResult(std::string_view document) {
  ASSIGN_OR_RETURN(XmlElement root, ParseXml(document));
  RETURN_IF_ERROR(ExpectRoot(root, "DeleteResult"));
  DeleteObjectsResult out;
  for (const XmlElement& c : root.children) {
    if (c.name == "Deleted") {
      const XmlElement* key = c.Child("Key");
      if (key == nullptr) return Corruption("<Deleted> without a <Key>");
      out.deleted.push_back(key->text);
    } else if (c.name == "Error") {
      const XmlElement* key = c.Child("Key");
      if (key == nullptr) return Corruption("<Error> entry without a <Key>");
      out.errors.push_back(
          {key->text, Bounded(c.ChildText("Code")), Bounded(c.ChildText("Message"))});
    }
  }
  return out;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string BuildCompleteMultipartUpload(const std::vector<std::pair<int, std::string>>& parts) {
  std::string out = "<CompleteMultipartUpload>";
  for (const auto& [number, etag] : parts) {
    out += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + XmlEscape(etag) +
           "</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

std::string BuildDeleteObjects(const std::vector<std::string>& keys, bool quiet) {
  std::string out = "<Delete>";
  if (quiet) out += "<Quiet>true</Quiet>";
  for (const std::string& key : keys) {
    out += "<Object><Key>" + XmlEscape(key) + "</Key></Object>";
  }
  out += "</Delete>";
  return out;
}

}  // namespace bunker::backend::s3xml
