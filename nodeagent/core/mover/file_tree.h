#pragma once

// File-mode trees (FORMAT.md, "Trees (file mode)"): the nodes of one
// directory and their JSON form, plus the content-list blobs of very large
// files. The decoders treat their input as hostile: every field's type, range
// and length is checked, names are validated as single path components, nodes
// must be sorted by name and unique, and failures are Corruption naming the
// blob. They never throw.
//
// Thread-safety: free functions on values.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodeagent/core/repo/ids.h"
#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::mover {

enum class NodeType : uint8_t {
  kFile,
  kDir,
  kSymlink,
  kHardlink,
  kFifo,
  kSocket,
  kCharDev,
  kBlockDev,
};

// "file", "dir", "symlink", "hardlink", "fifo", "socket", "chardev", "blockdev".
std::string_view NodeTypeName(NodeType type);

// One entry of a file's content: a data blob, or a run of `hole` zero bytes
// (hole > 0) that is not stored and is restored sparse.
struct ContentRef {
  repo::BlobId id{};
  uint64_t hole = 0;

  bool is_hole() const { return hole > 0; }
};

struct Node {
  std::string name;  // one path component (empty only for a tree's "root")
  NodeType type = NodeType::kFile;
  uint32_t mode = 0;  // permission bits and setuid/setgid/sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;  // since the epoch (may be negative)
  int64_t ctime_ns = 0;
  uint64_t inode = 0;
  uint64_t links = 1;
  // kFile: size and content (inline), or content_blobs for very large files.
  uint64_t size = 0;
  std::vector<ContentRef> content;
  std::vector<repo::BlobId> content_blobs;
  std::optional<repo::BlobId> subtree;  // kDir
  std::string target;                   // kSymlink: the link text, verbatim
  std::string link_to;                  // kHardlink: "dir/sub/file" from the snapshot root
  uint64_t rdev = 0;                    // kCharDev, kBlockDev
  std::vector<std::pair<std::string, Bytes>> xattrs;  // sorted by name, unique
};

// One tree blob (a page of a directory; "next" chains further pages).
struct Tree {
  std::optional<Node> root;  // metadata of the snapshot's root directory (root tree only)
  std::vector<Node> nodes;   // sorted by name, unique
  std::optional<repo::BlobId> next;
};

// Limits of the format, enforced by the decoders (and by backup, which fails
// rather than writing a tree it could not read back).
inline constexpr size_t kMaxNameBytes = 255;
inline constexpr size_t kMaxSymlinkTargetBytes = 4095;
inline constexpr size_t kMaxLinkPathBytes = 65535;
inline constexpr size_t kMaxXattrNameBytes = 255;
inline constexpr size_t kMaxXattrValueBytes = 65536;
inline constexpr size_t kMaxXattrBytesPerNode = 4u << 20;  // sum of values
inline constexpr uint32_t kMaxMode = 07777;

// True for a usable single path component: not empty, ".", "..", no '/' or
// NUL, at most kMaxNameBytes.
bool IsValidName(std::string_view name);

// Splits a hard link's link_to into components; InvalidArgument unless every
// component IsValidName (so no empty, ".", ".." component, no leading or
// trailing '/') and the whole is at most kMaxLinkPathBytes.
Result<std::vector<std::string_view>> SplitLinkPath(std::string_view path);

// True if `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates).
bool IsUtf8(std::string_view s);

// The JSON text of one node (nodes are encoded one by one so that a directory
// can be cut into pages by size).
std::string EncodeNodeJson(const Node& node);

// A tree blob's plaintext from already-encoded nodes. `root` (may be null)
// goes in the root tree's first page, `next` (may be null) names the page
// after this one.
std::string EncodeTreePage(std::span<const std::string> node_jsons, const Node* root,
                           const repo::BlobId* next);

Result<Tree> DecodeTree(ByteSpan plain, std::string_view what);

// Content-list blob of a very large file: {"version": 1, "content": [...]}.
std::string EncodeContentBlob(std::span<const ContentRef> content);
Result<std::vector<ContentRef>> DecodeContentBlob(ByteSpan plain, std::string_view what);

}  // namespace bunker::mover
