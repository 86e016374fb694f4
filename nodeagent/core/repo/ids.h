#pragma once

// Identifiers of things in a repository.
// BlobId: HMAC-SHA256(mac key, plaintext) of a blob. ObjectId: SHA-256 of an
// object's stored bytes (packs, index files, snapshots, keys). Both 32 bytes.

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::repo {

using Id = std::array<uint8_t, 32>;
using BlobId = Id;
using ObjectId = Id;

// The all-zero id: a hole (an all-zero chunk, never stored).
inline constexpr Id kHoleId{};

inline bool IsHole(const Id& id) { return id == kHoleId; }

enum class BlobType : uint8_t { kData = 1, kMeta = 2 };

std::string ToHex(const Id& id);
std::string ShortHex(const Id& id);  // first 12 hex digits, for messages
Result<Id> ParseId(std::string_view hex);
// What users may name an object by: its id or a prefix of at least 6 of its
// lowercase hex digits.
bool IsIdPrefix(std::string_view s);

struct IdHash {
  size_t operator()(const Id& id) const {
    size_t h;
    std::memcpy(&h, id.data(), sizeof(h));
    return h;
  }
};

// Object names of the repository layout (FORMAT.md).
std::string PackName(const ObjectId& id);      // data/3f/3f2a…
std::string IndexName(const ObjectId& id);     // index/…
std::string SnapshotName(const ObjectId& id);  // snapshots/…
std::string KeyName(const ObjectId& id);       // keys/…

}  // namespace bunker::repo
