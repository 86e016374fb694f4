// DecodeContentList: a block-mode content list, the plaintext of a meta blob
// (FORMAT.md, "Snapshots").
//
// Input: the plaintext. Properties: rejections are Corruption; encoding an
// accepted list gives back exactly the input.

#include <algorithm>

#include "nodeagent/core/repo/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {

BUNKER_FUZZ_TARGET(content_list) {
  Result<std::vector<repo::ChunkRef>> r = repo::DecodeContentList(data, "fuzz content list");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
    return false;
  }
  Bytes again = repo::EncodeContentList(*r);
  FUZZ_CHECK(
      ByteSpan(again).size() == data.size() && std::equal(again.begin(), again.end(), data.begin()),
      "content list does not round-trip");
  return true;
}

}  // namespace bunker::fuzz
