#include "nodeagent/core/repo/index.h"

namespace bunker::repo {

void Index::AddPack(const PackEntries& pack) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = pack_no_.emplace(pack.pack, static_cast<uint32_t>(packs_.size()));
  if (inserted) packs_.push_back(pack.pack);
  uint32_t no = it->second;
  for (const BlobEntry& e : pack.blobs) {
    if (blobs_.emplace(e.id, Loc{no, e}).second) raw_bytes_ += e.raw_length;
    claimed_.erase(e.id);
  }
}

std::optional<BlobLocation> Index::Find(const BlobId& id) const {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(id);
  if (it == blobs_.end()) return std::nullopt;
  return BlobLocation{packs_[it->second.pack], it->second.entry};
}

bool Index::Has(const BlobId& id) const {
  std::lock_guard lock(mu_);
  return blobs_.contains(id);
}

bool Index::Claim(const BlobId& id) {
  std::lock_guard lock(mu_);
  if (blobs_.contains(id)) return false;
  return claimed_.insert(id).second;
}

void Index::Unclaim(const BlobId& id) {
  std::lock_guard lock(mu_);
  claimed_.erase(id);
}

size_t Index::blob_count() const {
  std::lock_guard lock(mu_);
  return blobs_.size();
}

uint64_t Index::raw_bytes() const {
  std::lock_guard lock(mu_);
  return raw_bytes_;
}

size_t Index::pack_count() const {
  std::lock_guard lock(mu_);
  return packs_.size();
}

std::vector<ObjectId> Index::Packs() const {
  std::lock_guard lock(mu_);
  return packs_;
}

}  // namespace bunker::repo
