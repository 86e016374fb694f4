#include "nodeagent/core/mover/file_tree.h"

#include <algorithm>
#include <exception>
#include <limits>

#include <nlohmann/json.hpp>

namespace bunker::mover {

namespace {

constexpr uint32_t kTreeVersion = 1;
constexpr std::string_view kHolePrefix = "hole:";
constexpr int64_t kMaxFileSize = std::numeric_limits<int64_t>::max();

// ---- Encoding ------------------------------------------------------------

void AppendEscaped(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 0xf]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

void AppendKey(std::string* out, std::string_view key) {
  if (out->back() != '{') out->push_back(',');
  AppendEscaped(out, key);
  out->push_back(':');
}

// Text fields that may hold any bytes: "key" when the bytes are UTF-8 (so
// JSON can carry them), else "key_b64" with their base64.
void AppendText(std::string* out, std::string_view key, std::string_view value) {
  if (IsUtf8(value)) {
    AppendKey(out, key);
    AppendEscaped(out, value);
  } else {
    AppendKey(out, std::string(key) + "_b64");
    AppendEscaped(out, Base64Encode(AsBytes(value)));
  }
}

void AppendUint(std::string* out, std::string_view key, uint64_t v) {
  AppendKey(out, key);
  out->append(std::to_string(v));
}

void AppendInt(std::string* out, std::string_view key, int64_t v) {
  AppendKey(out, key);
  out->append(std::to_string(v));
}

void AppendContentArray(std::string* out, std::span<const ContentRef> content) {
  out->push_back('[');
  bool first = true;
  for (const ContentRef& c : content) {
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    if (c.is_hole()) {
      out->append(kHolePrefix);
      out->append(std::to_string(c.hole));
    } else {
      out->append(repo::ToHex(c.id));
    }
    out->push_back('"');
  }
  out->push_back(']');
}

// Common metadata of every node (and of a tree's root).
void AppendMeta(std::string* out, const Node& n) {
  AppendKey(out, "type");
  AppendEscaped(out, NodeTypeName(n.type));
  AppendUint(out, "mode", n.mode);
  AppendUint(out, "uid", n.uid);
  AppendUint(out, "gid", n.gid);
  AppendInt(out, "mtime_ns", n.mtime_ns);
  AppendInt(out, "ctime_ns", n.ctime_ns);
  AppendUint(out, "inode", n.inode);
  AppendUint(out, "links", n.links);
}

void AppendXattrs(std::string* out, const Node& n) {
  if (n.xattrs.empty()) return;
  AppendKey(out, "xattrs");
  out->push_back('{');
  for (const auto& [name, value] : n.xattrs) {
    AppendKey(out, name);
    AppendEscaped(out, Base64Encode(value));
  }
  out->push_back('}');
}

std::string EncodeRootJson(const Node& n) {
  std::string out = "{";
  AppendMeta(&out, n);
  AppendXattrs(&out, n);
  out.push_back('}');
  return out;
}

// ---- Decoding ------------------------------------------------------------

// Fields of a node object, as bits (each may appear once).
enum Field : uint32_t {
  kFName = 1u << 0,
  kFType = 1u << 1,
  kFMode = 1u << 2,
  kFUid = 1u << 3,
  kFGid = 1u << 4,
  kFMtime = 1u << 5,
  kFCtime = 1u << 6,
  kFInode = 1u << 7,
  kFLinks = 1u << 8,
  kFSize = 1u << 9,
  kFContent = 1u << 10,
  kFContentBlobs = 1u << 11,
  kFSubtree = 1u << 12,
  kFTarget = 1u << 13,
  kFLinkTo = 1u << 14,
  kFRdev = 1u << 15,
  kFXattrs = 1u << 16,
};

constexpr uint32_t kFMeta = kFType | kFMode | kFUid | kFGid | kFMtime | kFCtime | kFInode | kFLinks;

struct FieldName {
  std::string_view key;
  Field field;
  bool b64;  // the "_b64" variant of a text field
};

constexpr FieldName kNodeFields[] = {
    {"name", kFName, false},
    {"name_b64", kFName, true},
    {"type", kFType, false},
    {"mode", kFMode, false},
    {"uid", kFUid, false},
    {"gid", kFGid, false},
    {"mtime_ns", kFMtime, false},
    {"ctime_ns", kFCtime, false},
    {"inode", kFInode, false},
    {"links", kFLinks, false},
    {"size", kFSize, false},
    {"content", kFContent, false},
    {"content_blobs", kFContentBlobs, false},
    {"subtree", kFSubtree, false},
    {"target", kFTarget, false},
    {"target_b64", kFTarget, true},
    {"link_to", kFLinkTo, false},
    {"link_to_b64", kFLinkTo, true},
    {"rdev", kFRdev, false},
    {"xattrs", kFXattrs, false},
};

std::optional<NodeType> ParseNodeType(std::string_view s) {
  for (NodeType t : {NodeType::kFile, NodeType::kDir, NodeType::kSymlink, NodeType::kHardlink,
                     NodeType::kFifo, NodeType::kSocket, NodeType::kCharDev, NodeType::kBlockDev}) {
    if (NodeTypeName(t) == s) return t;
  }
  return std::nullopt;
}

// The fields a node of each type must have (besides name and the metadata)
// and may have.
uint32_t TypeFields(NodeType t) {
  switch (t) {
    case NodeType::kFile:
      return kFSize;  // plus exactly one of content / content_blobs
    case NodeType::kDir:
      return kFSubtree;
    case NodeType::kSymlink:
      return kFTarget;
    case NodeType::kHardlink:
      return kFLinkTo;
    case NodeType::kCharDev:
    case NodeType::kBlockDev:
      return kFRdev;
    case NodeType::kFifo:
    case NodeType::kSocket:
      return 0;
  }
  return 0;
}

// A SAX handler that builds a Tree (or a content list) directly, without a
// JSON DOM: memory stays proportional to the input, nesting is limited to the
// format's shape, and the first violation stops the parse.
class TreeSax {
 public:
  enum class Kind { kTree, kContentList };

  TreeSax(Kind kind, std::string_view what) : kind_(kind), what_(what) {}

  Tree& tree() { return tree_; }
  std::vector<ContentRef>& content_list() { return list_; }
  const std::string& error() const { return error_; }

  // nlohmann's SAX interface.
  bool null() { return Fail("unexpected null" + Where()); }
  bool boolean(bool) { return Fail("unexpected boolean" + Where()); }
  bool number_integer(int64_t v) {
    if (stack_.empty()) return Fail("not a JSON object");
    return Number(v < 0, static_cast<uint64_t>(v), v);
  }
  bool number_unsigned(uint64_t v) {
    if (stack_.empty()) return Fail("not a JSON object");
    return Number(false, v, v > static_cast<uint64_t>(kMaxFileSize) ? -1 : static_cast<int64_t>(v));
  }
  bool number_float(double, const std::string&) {
    return Fail("unexpected fractional number" + Where());
  }
  bool binary(nlohmann::json::binary_t&) { return Fail("unexpected binary value"); }
  bool string(std::string& s) { return String(s); }
  bool key(std::string& k) { return Key(k); }
  bool start_object(size_t) { return StartObject(); }
  bool end_object() { return EndObject(); }
  bool start_array(size_t) { return StartArray(); }
  bool end_array() { return EndArray(); }
  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception&) {
    if (error_.empty()) error_ = "not valid JSON (at byte " + std::to_string(position) + ")";
    return false;
  }

 private:
  enum class Ctx { kTop, kNodes, kNode, kRoot, kContent, kContentBlobs, kXattrs };

  bool Fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
    return false;
  }

  std::string Where() const {
    if (stack_.empty()) return "";
    std::string w;
    if (!tree_.nodes.empty() &&
        std::find(stack_.begin(), stack_.end(), Ctx::kNode) != stack_.end()) {
      w = " in node " + std::to_string(tree_.nodes.size() - 1);
    }
    if (!key_.empty()) w += " (field \"" + key_ + "\")";
    return w;
  }

  Node& CurNode() { return *cur_; }

  bool Key(const std::string& k) {
    key_ = k;
    switch (stack_.back()) {
      case Ctx::kTop: {
        uint32_t bit;
        if (k == "version") {
          bit = 1;
        } else if (k == "nodes" && kind_ == Kind::kTree) {
          bit = 2;
        } else if (k == "root" && kind_ == Kind::kTree) {
          bit = 4;
        } else if (k == "next" && kind_ == Kind::kTree) {
          bit = 8;
        } else if (k == "content" && kind_ == Kind::kContentList) {
          bit = 16;
        } else {
          return Fail("unknown field \"" + k + "\"");
        }
        if (top_seen_ & bit) return Fail("field \"" + k + "\" appears twice");
        top_seen_ |= bit;
        return true;
      }
      case Ctx::kNode:
      case Ctx::kRoot: {
        for (const FieldName& f : kNodeFields) {
          if (f.key != k) continue;
          if (seen_ & f.field) return Fail("field \"" + k + "\" appears twice" + Where());
          seen_ |= f.field;
          b64_ = f.b64;
          field_ = f.field;
          return true;
        }
        return Fail("unknown field \"" + k + "\"" + Where());
      }
      case Ctx::kXattrs: {
        if (k.empty() || k.size() > kMaxXattrNameBytes || k.find('\0') != std::string::npos) {
          return Fail("bad extended attribute name" + Where());
        }
        xattr_name_ = k;
        return true;
      }
      default:
        return Fail("unexpected key");
    }
  }

  bool StartObject() {
    if (stack_.empty()) {
      stack_.push_back(Ctx::kTop);
      return true;
    }
    Ctx top = stack_.back();
    if (top == Ctx::kNodes) {
      cur_ = &tree_.nodes.emplace_back();
      in_root_ = false;
      seen_ = 0;
      stack_.push_back(Ctx::kNode);
      return true;
    }
    if (top == Ctx::kTop && key_ == "root") {
      tree_.root.emplace();
      tree_.root->type = NodeType::kDir;
      cur_ = &*tree_.root;
      in_root_ = true;
      seen_ = 0;
      stack_.push_back(Ctx::kRoot);
      return true;
    }
    if ((top == Ctx::kNode || top == Ctx::kRoot) && field_ == kFXattrs) {
      stack_.push_back(Ctx::kXattrs);
      xattr_bytes_ = 0;
      return true;
    }
    return Fail("unexpected object" + Where());
  }

  bool EndObject() {
    Ctx top = stack_.back();
    stack_.pop_back();
    key_.clear();
    switch (top) {
      case Ctx::kTop:
        return EndTop();
      case Ctx::kNode:
        return EndNode();
      case Ctx::kRoot:
        return EndRoot();
      case Ctx::kXattrs: {
        Node& n = CurNode();
        std::sort(n.xattrs.begin(), n.xattrs.end());
        for (size_t i = 1; i < n.xattrs.size(); ++i) {
          if (n.xattrs[i].first == n.xattrs[i - 1].first) {
            return Fail("extended attribute \"" + n.xattrs[i].first + "\" appears twice");
          }
        }
        return true;
      }
      default:
        return Fail("unexpected end of object");
    }
  }

  bool StartArray() {
    if (stack_.empty()) return Fail("not a JSON object");
    Ctx top = stack_.back();
    if (top == Ctx::kTop && key_ == "nodes") {
      stack_.push_back(Ctx::kNodes);
      return true;
    }
    if (top == Ctx::kTop && key_ == "content") {
      stack_.push_back(Ctx::kContent);
      return true;
    }
    if (top == Ctx::kNode && field_ == kFContent) {
      stack_.push_back(Ctx::kContent);
      return true;
    }
    if (top == Ctx::kNode && field_ == kFContentBlobs) {
      stack_.push_back(Ctx::kContentBlobs);
      return true;
    }
    return Fail("unexpected array" + Where());
  }

  bool EndArray() {
    stack_.pop_back();
    return true;
  }

  std::vector<ContentRef>* CurContent() {
    return stack_.size() >= 2 && stack_[stack_.size() - 2] == Ctx::kTop ? &list_
                                                                        : &CurNode().content;
  }

  bool String(const std::string& s) {
    if (stack_.empty()) return Fail("not a JSON object");
    switch (stack_.back()) {
      case Ctx::kContent:
        return ContentEntry(s, CurContent());
      case Ctx::kContentBlobs: {
        Result<repo::Id> id = repo::ParseId(s);
        if (!id.ok()) return Fail("bad blob id in content_blobs" + Where());
        CurNode().content_blobs.push_back(*id);
        return true;
      }
      case Ctx::kXattrs: {
        Result<Bytes> v = Base64Decode(s);
        if (!v.ok() || v->size() > kMaxXattrValueBytes) {
          return Fail("bad value of extended attribute \"" + xattr_name_ + "\"" + Where());
        }
        xattr_bytes_ += v->size();
        if (xattr_bytes_ > kMaxXattrBytesPerNode) {
          return Fail("extended attributes too large" + Where());
        }
        CurNode().xattrs.emplace_back(xattr_name_, std::move(*v));
        return true;
      }
      case Ctx::kTop: {
        if (key_ != "next") return Fail("field \"" + key_ + "\" must not be a string");
        Result<repo::Id> id = repo::ParseId(s);
        if (!id.ok()) return Fail("bad blob id in \"next\"");
        tree_.next = *id;
        return true;
      }
      case Ctx::kNode:
      case Ctx::kRoot:
        return NodeString(s);
      default:
        return Fail("unexpected string" + Where());
    }
  }

  bool Text(const std::string& s, std::string* out) {
    if (!b64_) {
      *out = s;
      return true;
    }
    Result<Bytes> raw = Base64Decode(s);
    if (!raw.ok()) return Fail("bad base64" + Where());
    out->assign(reinterpret_cast<const char*>(raw->data()), raw->size());
    return true;
  }

  bool NodeString(const std::string& s) {
    Node& n = CurNode();
    switch (field_) {
      case kFName:
        if (in_root_) return Fail("the root has no name");
        return Text(s, &n.name);
      case kFType: {
        std::optional<NodeType> t = ParseNodeType(s);
        if (!t) return Fail("unknown node type \"" + s.substr(0, 32) + "\"" + Where());
        n.type = *t;
        return true;
      }
      case kFSubtree: {
        Result<repo::Id> id = repo::ParseId(s);
        if (!id.ok()) return Fail("bad blob id" + Where());
        n.subtree = *id;
        return true;
      }
      case kFTarget:
        return Text(s, &n.target);
      case kFLinkTo:
        return Text(s, &n.link_to);
      default:
        return Fail("unexpected string" + Where());
    }
  }

  bool ContentEntry(const std::string& s, std::vector<ContentRef>* out) {
    ContentRef ref;
    if (s.size() > kHolePrefix.size() && s.compare(0, kHolePrefix.size(), kHolePrefix) == 0) {
      std::string_view digits = std::string_view(s).substr(kHolePrefix.size());
      if (digits.size() > 19 || digits[0] == '0') return Fail("bad hole length" + Where());
      uint64_t v = 0;
      for (char c : digits) {
        if (c < '0' || c > '9') return Fail("bad hole length" + Where());
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      if (v == 0 || v > static_cast<uint64_t>(kMaxFileSize)) {
        return Fail("bad hole length" + Where());
      }
      if (!out->empty() && out->back().is_hole()) {
        return Fail("two holes in a row in a content list" + Where());
      }
      ref.hole = v;
    } else {
      Result<repo::Id> id = repo::ParseId(s);
      if (!id.ok() || repo::IsHole(*id)) return Fail("bad content entry" + Where());
      ref.id = *id;
    }
    out->push_back(ref);
    return true;
  }

  // `neg`: the JSON number was negative; `i`: its value as int64 (-1 when it
  // does not fit and is positive).
  bool Number(bool neg, uint64_t u, int64_t i) {
    Ctx top = stack_.back();
    if (top == Ctx::kTop) {
      if (key_ != "version") return Fail("field \"" + key_ + "\" must not be a number");
      if (neg || u != kTreeVersion) {
        return Fail("version " + (neg ? std::string("(negative)") : std::to_string(u)) +
                    ", this reader supports version " + std::to_string(kTreeVersion));
      }
      version_ok_ = true;
      return true;
    }
    if (top != Ctx::kNode && top != Ctx::kRoot) return Fail("unexpected number" + Where());
    Node& n = CurNode();
    auto need_u32 = [&](uint32_t* out, uint64_t max) {
      if (neg || u > max) return Fail("value out of range" + Where());
      *out = static_cast<uint32_t>(u);
      return true;
    };
    switch (field_) {
      case kFMode:
        return need_u32(&n.mode, kMaxMode);
      case kFUid:
        return need_u32(&n.uid, std::numeric_limits<uint32_t>::max());
      case kFGid:
        return need_u32(&n.gid, std::numeric_limits<uint32_t>::max());
      case kFMtime:
      case kFCtime:
        if (!neg && i < 0) return Fail("time out of range" + Where());
        (field_ == kFMtime ? n.mtime_ns : n.ctime_ns) = i;
        return true;
      case kFInode:
        if (neg) return Fail("negative inode" + Where());
        n.inode = u;
        return true;
      case kFLinks:
        if (neg || u == 0) return Fail("bad link count" + Where());
        n.links = u;
        return true;
      case kFSize:
        if (neg || i < 0) return Fail("file size out of range" + Where());
        n.size = u;
        return true;
      case kFRdev:
        if (neg) return Fail("negative device number" + Where());
        n.rdev = u;
        return true;
      default:
        return Fail("unexpected number" + Where());
    }
  }

  bool EndNode() {
    Node& n = tree_.nodes.back();
    const std::string where = " in node " + std::to_string(tree_.nodes.size() - 1);
    if (!(seen_ & kFName)) return Fail("node without a name" + where);
    if (!IsValidName(n.name)) {
      return Fail("node name \"" + Printable(n.name) + "\" is not a single path component");
    }
    if (!(seen_ & kFType)) return Fail("node \"" + Printable(n.name) + "\" has no type");
    if ((seen_ & kFMeta) != kFMeta) {
      return Fail("node \"" + Printable(n.name) + "\" lacks metadata fields");
    }
    uint32_t extra = seen_ & ~(kFMeta | kFName | kFXattrs);
    uint32_t allowed = TypeFields(n.type);
    if (n.type == NodeType::kFile) {
      bool c = seen_ & kFContent;
      bool b = seen_ & kFContentBlobs;
      if (c == b) {
        return Fail("file node \"" + Printable(n.name) +
                    "\" needs exactly one of content and content_blobs");
      }
      allowed |= c ? kFContent : kFContentBlobs;
    }
    if (extra != allowed) {
      return Fail(std::string(NodeTypeName(n.type)) + " node \"" + Printable(n.name) +
                  "\" has missing or foreign fields");
    }
    if (n.type == NodeType::kSymlink &&
        (n.target.empty() || n.target.size() > kMaxSymlinkTargetBytes ||
         n.target.find('\0') != std::string::npos)) {
      return Fail("symlink node \"" + Printable(n.name) + "\" has a bad target");
    }
    if (n.type == NodeType::kHardlink && !SplitLinkPath(n.link_to).ok()) {
      return Fail("hardlink node \"" + Printable(n.name) + "\" has a bad link_to \"" +
                  Printable(n.link_to) + "\"");
    }
    if (tree_.nodes.size() >= 2) {
      const std::string& prev = tree_.nodes[tree_.nodes.size() - 2].name;
      if (!(prev < n.name)) {
        return Fail("node \"" + Printable(n.name) + "\" is out of order or repeated");
      }
    }
    return true;
  }

  bool EndRoot() {
    if (!(seen_ & kFType) || tree_.root->type != NodeType::kDir) {
      return Fail("the root must be a dir");
    }
    if (seen_ != (kFMeta | (seen_ & kFXattrs))) return Fail("the root has foreign fields");
    return true;
  }

  bool EndTop() {
    if (!version_ok_) return Fail("no version");
    if (kind_ == Kind::kTree && !(top_seen_ & 2)) return Fail("no nodes");
    if (kind_ == Kind::kContentList && !(top_seen_ & 16)) return Fail("no content");
    return true;
  }

  static std::string Printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 64)) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        out += "\\x" + HexEncode(ByteSpan(&u, 1));
      } else {
        out.push_back(c);
      }
    }
    if (s.size() > 64) out += "…";
    return out;
  }

  Kind kind_;
  std::string what_;
  Tree tree_;
  std::vector<ContentRef> list_;
  std::vector<Ctx> stack_;
  std::string key_;
  std::string xattr_name_;
  uint64_t xattr_bytes_ = 0;
  uint32_t top_seen_ = 0;
  uint32_t seen_ = 0;
  Field field_ = kFName;
  Node* cur_ = nullptr;  // the node (or root) being parsed
  bool in_root_ = false;
  bool b64_ = false;
  bool version_ok_ = false;
  std::string error_;
};

Status RunSax(TreeSax* sax, ByteSpan plain, std::string_view what) {
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(plain.begin(), plain.end(), sax);
  } catch (const std::exception& e) {
    return Corruption(std::string(what) + ": " + e.what());
  }
  if (!ok || !sax->error().empty()) {
    return Corruption(std::string(what) + ": " +
                      (sax->error().empty() ? std::string("not valid JSON") : sax->error()));
  }
  return Status::Ok();
}

}  // namespace

std::string_view NodeTypeName(NodeType type) {
  switch (type) {
    case NodeType::kFile:
      return "file";
    case NodeType::kDir:
      return "dir";
    case NodeType::kSymlink:
      return "symlink";
    case NodeType::kHardlink:
      return "hardlink";
    case NodeType::kFifo:
      return "fifo";
    case NodeType::kSocket:
      return "socket";
    case NodeType::kCharDev:
      return "chardev";
    case NodeType::kBlockDev:
      return "blockdev";
  }
  return "unknown";
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

Result<std::vector<std::string_view>> SplitLinkPath(std::string_view path) {
  if (path.size() > kMaxLinkPathBytes) return InvalidArgument("link path too long");
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!IsValidName(part)) return InvalidArgument("link path has a bad component");
    parts.push_back(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

bool IsUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (n - i < len) return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xbf) return false;
    }
    i += len;
  }
  return true;
}

std::string EncodeNodeJson(const Node& n) {
  std::string out = "{";
  AppendText(&out, "name", n.name);
  AppendMeta(&out, n);
  switch (n.type) {
    case NodeType::kFile:
      AppendUint(&out, "size", n.size);
      if (!n.content_blobs.empty()) {
        AppendKey(&out, "content_blobs");
        out.push_back('[');
        for (size_t i = 0; i < n.content_blobs.size(); ++i) {
          if (i > 0) out.push_back(',');
          AppendEscaped(&out, repo::ToHex(n.content_blobs[i]));
        }
        out.push_back(']');
      } else {
        AppendKey(&out, "content");
        AppendContentArray(&out, n.content);
      }
      break;
    case NodeType::kDir:
      AppendKey(&out, "subtree");
      AppendEscaped(&out, repo::ToHex(n.subtree.value_or(repo::kHoleId)));
      break;
    case NodeType::kSymlink:
      AppendText(&out, "target", n.target);
      break;
    case NodeType::kHardlink:
      AppendText(&out, "link_to", n.link_to);
      break;
    case NodeType::kCharDev:
    case NodeType::kBlockDev:
      AppendUint(&out, "rdev", n.rdev);
      break;
    case NodeType::kFifo:
    case NodeType::kSocket:
      break;
  }
  AppendXattrs(&out, n);
  out.push_back('}');
  return out;
}

std::string EncodeTreePage(std::span<const std::string> node_jsons, const Node* root,
                           const repo::BlobId* next) {
  size_t total = 64;
  for (const std::string& s : node_jsons) total += s.size() + 1;
  std::string out;
  out.reserve(total);
  out = "{";
  AppendUint(&out, "version", kTreeVersion);
  if (root != nullptr) {
    AppendKey(&out, "root");
    out += EncodeRootJson(*root);
  }
  AppendKey(&out, "nodes");
  out.push_back('[');
  for (size_t i = 0; i < node_jsons.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += node_jsons[i];
  }
  out.push_back(']');
  if (next != nullptr) {
    AppendKey(&out, "next");
    AppendEscaped(&out, repo::ToHex(*next));
  }
  out.push_back('}');
  return out;
}

Result<Tree> DecodeTree(ByteSpan plain, std::string_view what) {
  TreeSax sax(TreeSax::Kind::kTree, what);
  RETURN_IF_ERROR(RunSax(&sax, plain, what));
  return std::move(sax.tree());
}

std::string EncodeContentBlob(std::span<const ContentRef> content) {
  std::string out = "{";
  AppendUint(&out, "version", kTreeVersion);
  AppendKey(&out, "content");
  AppendContentArray(&out, content);
  out.push_back('}');
  return out;
}

Result<std::vector<ContentRef>> DecodeContentBlob(ByteSpan plain, std::string_view what) {
  TreeSax sax(TreeSax::Kind::kContentList, what);
  RETURN_IF_ERROR(RunSax(&sax, plain, what));
  return std::move(sax.content_list());
}

}  // namespace bunker::mover
