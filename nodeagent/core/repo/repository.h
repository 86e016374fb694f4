#pragma once

// Repository: an opened repository in a backup location — its config, master
// key, index, snapshots and keys (FORMAT.md). The layer above (mover) builds
// backups, restores, check and prune on it.
//
// Ownership: owns its Backend. Thread-safety: after Open, the const accessors,
// LoadSnapshot, ReadBlob and the Index are safe from many threads; key and
// snapshot writes are safe too (each is one object Put).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/chunk/chunker.h"
#include "nodeagent/core/repo/codec.h"
#include "nodeagent/core/repo/index.h"
#include "nodeagent/core/repo/snapshot.h"

namespace bunker::repo {

struct RepoConfig {
  uint32_t version = kFormatVersion;
  Id id{};
  std::string created;
  uint32_t block_size = 1 << 20;
  chunk::CdcParams cdc;
};

struct KeyInfo {
  ObjectId id{};
  std::string created;
  std::string host;
  std::string user;
  std::string label;
  bool current = false;  // the key this process opened the repository with
};

struct KdfParams {
  uint64_t n = 32768;
  uint32_t r = 8;
  uint32_t p = 1;
};

struct InitOptions {
  uint32_t block_size = 1 << 20;
  std::string label = "initial key";
  KdfParams kdf;
};

struct SnapshotRef {
  ObjectId id{};
  Snapshot snapshot;
};

class Repository {
 public:
  // Creates config and the first key. AlreadyExists if `config` exists.
  static Status Init(backend::Backend* backend, std::string_view password,
                     const InitOptions& options);

  // Reads config (checking the format version) and opens the master key with
  // `password`. PermissionDenied "wrong password" if no key file opens.
  static Result<std::unique_ptr<Repository>> Open(std::unique_ptr<backend::Backend> backend,
                                                  std::string_view password);

  backend::Backend* backend() const { return backend_.get(); }
  const RepoConfig& config() const { return config_; }
  const MasterKey& key() const { return key_; }
  std::unique_ptr<BlobCodec> NewCodec() const { return std::make_unique<BlobCodec>(key_); }
  chunk::GearTable Gear() const;

  // Index: reads every index file (in parallel). The names read are kept
  // (index_files()). An index file that is damaged (Corruption) is skipped
  // with a warning and listed in damaged_index_files(): its blobs are then
  // unknown, so a backup stores them again and a restore that needs them
  // fails naming them. Check and prune read index files themselves and
  // report or refuse. Any other error (I/O, listing) fails.
  Status LoadIndex();
  const std::vector<ObjectId>& damaged_index_files() const { return damaged_index_files_; }
  Index& index() { return index_; }
  const std::vector<ObjectId>& index_files() const { return index_files_; }
  // Every index file in the location now (LoadIndex's listing, without
  // reading them).
  Result<std::vector<ObjectId>> ListIndexFiles();
  Result<std::vector<PackEntries>> ReadIndexFile(const ObjectId& id, BlobCodec* codec);
  Result<ObjectId> SaveIndex(const std::vector<PackEntries>& packs, BlobCodec* codec);

  // Snapshots, oldest first. A snapshot object that fails to decode
  // (Corruption) is skipped and reported in *damaged when `damaged` is given,
  // so one damaged snapshot does not block every other volume; without it the
  // listing fails (what prune needs: it never acts on partial knowledge).
  // Other errors (I/O, listing) always fail.
  struct DamagedSnapshot {
    ObjectId id{};
    Status status;
    // The object's hash matched its name and it opened with the key: intact
    // bytes that this build cannot decode (a newer snapshot format, say),
    // not damage. Never to be removed as damaged.
    bool authenticated = false;
  };
  Result<std::vector<SnapshotRef>> ListSnapshots(std::vector<DamagedSnapshot>* damaged = nullptr);
  // *authenticated (when given) tells whether the object's bytes were intact
  // (hash and key) even when decoding them failed.
  Result<Snapshot> LoadSnapshot(const ObjectId& id, BlobCodec* codec,
                                bool* authenticated = nullptr);
  Result<ObjectId> SaveSnapshot(const Snapshot& s, BlobCodec* codec);
  // "latest" (of `volume_id` if given), a full id, or a unique hex prefix (≥ 6).
  Result<SnapshotRef> FindSnapshot(std::string_view what, std::string_view volume_id);

  // A blob's plaintext, verified (MAC, length, id). Uses the index.
  Result<Bytes> ReadBlob(const BlobId& id, BlobCodec* codec);

  // Keys.
  Result<std::vector<KeyInfo>> ListKeys();
  Result<ObjectId> AddKey(std::string_view password, std::string_view label,
                          const KdfParams& kdf = {});
  // Refuses to remove the last key and the key in use.
  Status RemoveKey(std::string_view id_or_prefix);

 private:
  Repository(std::unique_ptr<backend::Backend> backend, RepoConfig config, MasterKey key,
             ObjectId key_id)
      : backend_(std::move(backend)), config_(std::move(config)), key_(key), key_id_(key_id) {}

  std::unique_ptr<backend::Backend> backend_;
  RepoConfig config_;
  MasterKey key_;
  ObjectId key_id_;
  Index index_;
  std::vector<ObjectId> index_files_;
  std::vector<ObjectId> damaged_index_files_;
};

// Host name of this machine (for snapshots, keys, leases).
std::string HostName();

}  // namespace bunker::repo
