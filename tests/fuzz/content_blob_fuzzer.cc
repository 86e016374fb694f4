// DecodeContentBlob: the content list of a very large file in file mode, the
// plaintext of a meta blob (FORMAT.md, "Trees (file mode)", content_blobs).
//
// Input: the JSON text.
//
// Properties: rejections are Corruption; entries are data blob ids (never
// the all-zero id) or holes of 1 … 2^63-1 bytes, never two holes in a row;
// an accepted list re-encodes to one that decodes to the same entries.

#include <vector>

#include "nodeagent/core/mover/file_tree.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {

BUNKER_FUZZ_TARGET(content_blob) {
  Result<std::vector<mover::ContentRef>> r = mover::DecodeContentBlob(data, "fuzz content blob");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kCorruption, Describe(r.status()));
    return false;
  }
  const std::vector<mover::ContentRef>& c = *r;
  for (size_t i = 0; i < c.size(); ++i) {
    FUZZ_CHECK(c[i].is_hole() ? c[i].hole <= uint64_t{INT64_MAX} : !repo::IsHole(c[i].id),
               "bad content entry accepted");
    FUZZ_CHECK(i == 0 || !(c[i].is_hole() && c[i - 1].is_hole()), "two holes in a row");
  }
  std::string again = mover::EncodeContentBlob(c);
  Result<std::vector<mover::ContentRef>> r2 =
      mover::DecodeContentBlob(AsBytes(again), "fuzz content blob again");
  FUZZ_CHECK(r2.ok(), "re-encoded content list is rejected: " + Describe(r2.status()));
  if (!r2.ok()) return true;
  FUZZ_CHECK(r2->size() == c.size(), "content list does not round-trip");
  for (size_t i = 0; i < c.size() && i < r2->size(); ++i) {
    FUZZ_CHECK((*r2)[i].id == c[i].id && (*r2)[i].hole == c[i].hole,
               "content entry " + std::to_string(i) + " does not round-trip");
  }
  return true;
}

}  // namespace bunker::fuzz
