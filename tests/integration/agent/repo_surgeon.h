#pragma once

// Deterministic damage to a repository, made with the real repository code:
// the generator of the corruption fixtures (corruption_fixtures_test.cc).
// Objects that must stay authentic (sealed under the repository key, named
// by their hash) are rewritten through the library, so each fixture has
// exactly one intended defect and no accidental one.
//
// Not thread-safe; one surgeon per repository copy.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodeagent/core/repo/repository.h"

namespace bunker::testing {

class RepoSurgeon {
 public:
  // Opens the file:// repository at `dir` with `password` and loads its index.
  static Result<std::unique_ptr<RepoSurgeon>> Open(const std::filesystem::path& dir,
                                                   const std::string& password);

  repo::Repository* repo() { return repo_.get(); }

  // Index files by name ("index/<hex>") with their decoded entries.
  Result<std::vector<std::pair<std::string, std::vector<repo::PackEntries>>>> IndexFiles();

  // Writes a new index file with `packs`; returns its name.
  Result<std::string> AddIndex(const std::vector<repo::PackEntries>& packs);

  // Replaces index file `name` with one holding edit(its entries); returns
  // the new name (the old object is deleted).
  Result<std::string> RewriteIndex(
      const std::string& name, const std::function<void(std::vector<repo::PackEntries>*)>& edit);

  // Type confusion: rewrites index file `name` so that the first data blob
  // it lists is called a meta blob; returns that blob's id.
  Result<repo::BlobId> RetypeFirstDataBlobAsMeta(const std::string& name);

  // Replaces snapshot `hex_id` by one whose JSON went through `edit`, sealed
  // under the repository key; returns the new id (hex). The old object is deleted.
  Result<std::string> RewriteSnapshot(const std::string& hex_id,
                                      const std::function<void(nlohmann::json*)>& edit);

  // Replaces block-mode snapshot `hex_id` by one whose content list went
  // through `edit`: the new list is stored as meta blobs in a new pack (with
  // its index file) and the snapshot re-sealed to name it; returns the new
  // snapshot id (hex).
  Result<std::string> RewriteContentList(
      const std::string& hex_id, const std::function<void(std::vector<repo::ChunkRef>*)>& edit);

  // Every blob a snapshot references (meta and data), with its location.
  Result<std::vector<repo::BlobLocation>> SnapshotBlobs(const std::string& hex_id);

 private:
  explicit RepoSurgeon(std::unique_ptr<repo::Repository> r) : repo_(std::move(r)) {}
  std::unique_ptr<repo::Repository> repo_;
};

}  // namespace bunker::testing
