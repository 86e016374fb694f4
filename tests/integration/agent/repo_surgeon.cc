#include "tests/integration/agent/repo_surgeon.h"

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/mover/block_backup.h"
#include "nodeagent/core/mover/maintenance.h"
#include "nodeagent/core/repo/pack_writer.h"

namespace bunker::testing {

using nlohmann::json;

Result<std::unique_ptr<RepoSurgeon>> RepoSurgeon::Open(const std::filesystem::path& dir,
                                                       const std::string& password) {
  ASSIGN_OR_RETURN(std::unique_ptr<backend::Backend> b,
                   backend::OpenBackend("file://" + dir.string(), {}, false));
  ASSIGN_OR_RETURN(std::unique_ptr<repo::Repository> r,
                   repo::Repository::Open(std::move(b), password));
  RETURN_IF_ERROR(r->LoadIndex());
  return std::unique_ptr<RepoSurgeon>(new RepoSurgeon(std::move(r)));
}

Result<std::vector<std::pair<std::string, std::vector<repo::PackEntries>>>>
RepoSurgeon::IndexFiles() {
  std::vector<std::pair<std::string, std::vector<repo::PackEntries>>> out;
  std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
  std::vector<std::string> names;
  RETURN_IF_ERROR(repo_->backend()->List("index/", [&](const backend::ObjectInfo& info) {
    names.push_back(info.name);
    return Status::Ok();
  }));
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(repo::Id id, repo::ParseId(name.substr(name.rfind('/') + 1)));
    ASSIGN_OR_RETURN(std::vector<repo::PackEntries> packs, repo_->ReadIndexFile(id, codec.get()));
    out.emplace_back(name, std::move(packs));
  }
  return out;
}

Result<std::string> RepoSurgeon::AddIndex(const std::vector<repo::PackEntries>& packs) {
  std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
  ASSIGN_OR_RETURN(repo::ObjectId id, repo_->SaveIndex(packs, codec.get()));
  return repo::IndexName(id);
}

Result<std::string> RepoSurgeon::RewriteIndex(
    const std::string& name, const std::function<void(std::vector<repo::PackEntries>*)>& edit) {
  ASSIGN_OR_RETURN(auto files, IndexFiles());
  for (auto& [n, packs] : files) {
    if (n != name) continue;
    edit(&packs);
    ASSIGN_OR_RETURN(std::string fresh, AddIndex(packs));
    RETURN_IF_ERROR(repo_->backend()->Delete(name));
    return fresh;
  }
  return NotFound("no index file " + name);
}

Result<repo::BlobId> RepoSurgeon::RetypeFirstDataBlobAsMeta(const std::string& name) {
  repo::BlobId victim{};
  RETURN_IF_ERROR(RewriteIndex(name, [&](std::vector<repo::PackEntries>* packs) {
                    for (auto& p : *packs) {
                      for (auto& e : p.blobs) {
                        if (e.type == repo::BlobType::kData && repo::IsHole(victim)) {
                          e.type = repo::BlobType::kMeta;
                          victim = e.id;
                        }
                      }
                    }
                  }).status());
  if (repo::IsHole(victim)) return NotFound("index file " + name + " lists no data blob");
  return victim;
}

Result<std::string> RepoSurgeon::RewriteSnapshot(const std::string& hex_id,
                                                 const std::function<void(json*)>& edit) {
  ASSIGN_OR_RETURN(repo::Id id, repo::ParseId(hex_id));
  const std::string name = repo::SnapshotName(id);
  ASSIGN_OR_RETURN(Bytes raw, repo_->backend()->Get(name));
  std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
  Bytes plain;
  RETURN_IF_ERROR(codec->Open(repo::kAadSnapshot, raw, name, &plain));
  json j = json::parse(plain.begin(), plain.end(), nullptr, false);
  if (j.is_discarded()) return Corruption(name + " is not JSON");
  edit(&j);
  const std::string text = j.dump();
  Bytes sealed;
  RETURN_IF_ERROR(codec->Seal(repo::kAadSnapshot, AsBytes(text), &sealed));
  repo::ObjectId fresh = crypto::Sha256(sealed);
  RETURN_IF_ERROR(repo_->backend()->Put(repo::SnapshotName(fresh), sealed));
  RETURN_IF_ERROR(repo_->backend()->Delete(name));
  return repo::ToHex(fresh);
}

Result<std::string> RepoSurgeon::RewriteContentList(
    const std::string& hex_id, const std::function<void(std::vector<repo::ChunkRef>*)>& edit) {
  ASSIGN_OR_RETURN(repo::Id id, repo::ParseId(hex_id));
  std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
  ASSIGN_OR_RETURN(repo::Snapshot snap, repo_->LoadSnapshot(id, codec.get()));
  ASSIGN_OR_RETURN(std::vector<repo::ChunkRef> chunks,
                   mover::LoadBlockContent(repo_.get(), snap, codec.get()));
  edit(&chunks);
  json ids = json::array();
  repo::PackWriter packer(repo_.get(), repo::PackWriterOptions{});
  for (size_t i = 0; i < chunks.size() || i == 0; i += repo::kContentIdsPerMeta) {
    const size_t n = std::min<size_t>(repo::kContentIdsPerMeta, chunks.size() - i);
    Bytes plain = repo::EncodeContentList(std::span(chunks.data() + i, n));
    repo::BlobId blob = codec->ComputeId(plain);
    Bytes stored;
    uint8_t flags = 0;
    RETURN_IF_ERROR(codec->Encode(repo::BlobType::kMeta, blob, plain, true, &stored, &flags));
    RETURN_IF_ERROR(packer.Add(repo::BlobEntry{blob, repo::BlobType::kMeta, flags, 0, 0,
                                               static_cast<uint32_t>(plain.size())},
                               stored));
    ids.push_back(repo::ToHex(blob));
  }
  ASSIGN_OR_RETURN(std::vector<repo::PackEntries> packs, packer.Finish());
  RETURN_IF_ERROR(AddIndex(packs).status());
  return RewriteSnapshot(hex_id, [&](json* j) { (*j)["content"] = ids; });
}

Result<std::vector<repo::BlobLocation>> RepoSurgeon::SnapshotBlobs(const std::string& hex_id) {
  ASSIGN_OR_RETURN(repo::Id id, repo::ParseId(hex_id));
  std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
  ASSIGN_OR_RETURN(repo::Snapshot s, repo_->LoadSnapshot(id, codec.get()));
  std::vector<repo::BlobLocation> out;
  RETURN_IF_ERROR(mover::VisitSnapshotBlobs(
      repo_.get(), codec.get(), s, [&](const repo::BlobId& blob, repo::BlobType) -> Status {
        std::optional<repo::BlobLocation> loc = repo_->index().Find(blob);
        if (!loc) return NotFound("blob " + repo::ShortHex(blob) + " is in no index");
        out.push_back(*loc);
        return Status::Ok();
      }));
  return out;
}

}  // namespace bunker::testing
