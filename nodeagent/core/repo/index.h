#pragma once

// The repository index in memory: where every blob lives. Built from all
// index files at open, extended as a backup uploads packs.
//
// During a backup, workers call Claim(id) before storing a blob: the first
// caller for an id gets true and must store it; every later caller (and any
// caller for an id already in the index) gets false and reuses it. So a blob
// is stored once even when two workers meet the same chunk at once.
//
// Thread-safety: all methods are safe to call concurrently.

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "nodeagent/core/repo/codec.h"
#include "nodeagent/core/repo/ids.h"

namespace bunker::repo {

struct BlobLocation {
  ObjectId pack{};
  BlobEntry entry;
};

class Index {
 public:
  // Adds every blob of a pack. A blob already known keeps its first location.
  void AddPack(const PackEntries& pack);

  std::optional<BlobLocation> Find(const BlobId& id) const;
  bool Has(const BlobId& id) const;

  // True if the caller should store `id` (not in the index, not claimed yet).
  bool Claim(const BlobId& id);
  // Gives up a claim (the blob was not stored after all).
  void Unclaim(const BlobId& id);

  size_t blob_count() const;
  uint64_t raw_bytes() const;  // plaintext bytes of all distinct blobs
  size_t pack_count() const;
  std::vector<ObjectId> Packs() const;

 private:
  struct Loc {
    uint32_t pack;
    BlobEntry entry;
  };
  mutable std::mutex mu_;
  std::vector<ObjectId> packs_;                             // guarded by mu_
  std::unordered_map<ObjectId, uint32_t, IdHash> pack_no_;  // guarded by mu_
  std::unordered_map<BlobId, Loc, IdHash> blobs_;           // guarded by mu_
  std::unordered_set<BlobId, IdHash> claimed_;              // guarded by mu_
  uint64_t raw_bytes_ = 0;                                  // guarded by mu_
};

}  // namespace bunker::repo
