#include "nodeagent/core/repo/ids.h"

#include <algorithm>

namespace bunker::repo {

std::string ToHex(const Id& id) { return HexEncode(id); }

std::string ShortHex(const Id& id) { return HexEncode(ByteSpan(id.data(), 6)); }

bool IsIdPrefix(std::string_view s) {
  return s.size() >= 6 && s.size() <= 2 * sizeof(Id) && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<Id> ParseId(std::string_view hex) {
  if (hex.size() != 64) {
    return InvalidArgument("\"" + std::string(hex.substr(0, 80)) +
                           "\" is not an id (64 hex digits)");
  }
  ASSIGN_OR_RETURN(Bytes b, HexDecode(hex));
  Id id;
  std::memcpy(id.data(), b.data(), id.size());
  return id;
}

std::string PackName(const ObjectId& id) {
  std::string hex = ToHex(id);
  return "data/" + hex.substr(0, 2) + "/" + hex;
}
std::string IndexName(const ObjectId& id) { return "index/" + ToHex(id); }
std::string SnapshotName(const ObjectId& id) { return "snapshots/" + ToHex(id); }
std::string KeyName(const ObjectId& id) { return "keys/" + ToHex(id); }

}  // namespace bunker::repo
