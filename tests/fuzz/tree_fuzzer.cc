// DecodeTree: one page of a file-mode directory tree, the plaintext of a meta
// blob (FORMAT.md, "Trees (file mode)"). Restore trusts what it accepts to
// name files inside the restore target.
//
// Input: the JSON text.
//
// Properties: rejections are Corruption; every accepted node has a valid,
// single-component name, names strictly increase, metadata and type-specific
// fields are within the format's bounds; an accepted tree re-encodes (with
// EncodeNodeJson / EncodeTreePage, as backup writes it) to a tree that
// decodes to the same value.

#include <algorithm>
#include <string>
#include <vector>

#include "nodeagent/core/mover/file_tree.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

using mover::Node;
using mover::NodeType;

bool SameContent(const std::vector<mover::ContentRef>& a, const std::vector<mover::ContentRef>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].hole != b[i].hole) return false;
  }
  return true;
}

bool SameNode(const Node& a, const Node& b) {
  return a.name == b.name && a.type == b.type && a.mode == b.mode && a.uid == b.uid &&
         a.gid == b.gid && a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns &&
         a.inode == b.inode && a.links == b.links && a.size == b.size &&
         SameContent(a.content, b.content) && a.content_blobs == b.content_blobs &&
         a.subtree == b.subtree && a.target == b.target && a.link_to == b.link_to &&
         a.rdev == b.rdev && a.xattrs == b.xattrs;
}

void CheckNode(const Node& n, bool is_root) {
  FUZZ_CHECK(is_root ? n.name.empty() : mover::IsValidName(n.name), "bad name accepted");
  FUZZ_CHECK(n.mode <= mover::kMaxMode, "mode out of range");
  FUZZ_CHECK(n.links >= 1, "zero link count accepted");
  FUZZ_CHECK(!is_root || n.type == NodeType::kDir, "root is not a dir");
  size_t xattr_bytes = 0;
  for (size_t i = 0; i < n.xattrs.size(); ++i) {
    const auto& [name, value] = n.xattrs[i];
    FUZZ_CHECK(!name.empty() && name.size() <= mover::kMaxXattrNameBytes &&
                   name.find('\0') == std::string::npos,
               "bad xattr name accepted");
    FUZZ_CHECK(value.size() <= mover::kMaxXattrValueBytes, "xattr value too large");
    FUZZ_CHECK(i == 0 || n.xattrs[i - 1].first < name, "xattrs unsorted or repeated");
    xattr_bytes += value.size();
  }
  FUZZ_CHECK(xattr_bytes <= mover::kMaxXattrBytesPerNode, "xattrs too large");
  switch (n.type) {
    case NodeType::kFile: {
      FUZZ_CHECK(n.size <= uint64_t{INT64_MAX}, "file size out of range");
      FUZZ_CHECK(n.content.empty() || n.content_blobs.empty(), "both content forms accepted");
      for (size_t i = 0; i < n.content.size(); ++i) {
        const mover::ContentRef& c = n.content[i];
        FUZZ_CHECK(c.is_hole() ? c.hole <= uint64_t{INT64_MAX} : !repo::IsHole(c.id),
                   "bad content entry accepted");
        FUZZ_CHECK(i == 0 || !(c.is_hole() && n.content[i - 1].is_hole()), "two holes in a row");
      }
      break;
    }
    case NodeType::kDir:
      FUZZ_CHECK(n.subtree.has_value() || is_root, "dir without a subtree");
      break;
    case NodeType::kSymlink:
      FUZZ_CHECK(!n.target.empty() && n.target.size() <= mover::kMaxSymlinkTargetBytes &&
                     n.target.find('\0') == std::string::npos,
                 "bad symlink target accepted");
      break;
    case NodeType::kHardlink:
      FUZZ_CHECK(mover::SplitLinkPath(n.link_to).ok(), "bad link_to accepted");
      break;
    default:
      break;
  }
  if (n.type != NodeType::kFile) {
    FUZZ_CHECK(n.content.empty() && n.content_blobs.empty() && n.size == 0,
               "content on a node that is not a file");
  }
}

}  // namespace

BUNKER_FUZZ_TARGET(tree) {
  Result<mover::Tree> r = mover::DecodeTree(data, "fuzz tree");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
    return false;
  }
  const mover::Tree& t = *r;
  if (t.root) CheckNode(*t.root, /*is_root=*/true);
  for (size_t i = 0; i < t.nodes.size(); ++i) {
    CheckNode(t.nodes[i], /*is_root=*/false);
    FUZZ_CHECK(i == 0 || t.nodes[i - 1].name < t.nodes[i].name, "names unsorted or repeated");
  }
  std::vector<std::string> jsons;
  jsons.reserve(t.nodes.size());
  for (const Node& n : t.nodes) jsons.push_back(mover::EncodeNodeJson(n));
  std::string again =
      mover::EncodeTreePage(jsons, t.root ? &*t.root : nullptr, t.next ? &*t.next : nullptr);
  Result<mover::Tree> r2 = mover::DecodeTree(AsBytes(again), "fuzz tree again");
  FUZZ_CHECK(r2.ok(), "re-encoded tree is rejected: " + Describe(r2.status()));
  if (!r2.ok()) return true;
  FUZZ_CHECK(r2->next == t.next && r2->root.has_value() == t.root.has_value() &&
                 (!t.root || SameNode(*r2->root, *t.root)) && r2->nodes.size() == t.nodes.size(),
             "tree does not round-trip");
  for (size_t i = 0; i < t.nodes.size() && i < r2->nodes.size(); ++i) {
    FUZZ_CHECK(SameNode(r2->nodes[i], t.nodes[i]),
               "node " + std::to_string(i) + " does not round-trip");
  }
  return true;
}

}  // namespace bunker::fuzz
