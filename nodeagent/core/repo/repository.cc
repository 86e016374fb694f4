#include "nodeagent/core/repo/repository.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/repo/decoders.h"
#include "nodeagent/core/util/failpoint.h"

namespace bunker::repo {

using nlohmann::json;

namespace {

constexpr std::string_view kFormatName = "bunker-repository";
constexpr std::string_view kAadKeyPrefix = "bunker-key-v1";

std::string UserName() {
  if (struct passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return std::to_string(::geteuid());
}

Bytes KeyAad(const Id& repo_id) {
  Bytes aad;
  PutBytes(&aad, AsBytes(kAadKeyPrefix));
  PutBytes(&aad, repo_id);
  return aad;
}

Result<json> ParseJson(ByteSpan data, std::string_view what) {
  json j = json::parse(data.begin(), data.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Corruption(std::string(what) + ": not a JSON object");
  return j;
}

// An unsigned integer field: integers only (a float is never cast, which is
// undefined behaviour out of range) and within T's range. Throws
// std::out_of_range, caught with the JSON errors by the decoders below.
template <typename T>
T UInt(const json& v) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    throw std::out_of_range("not a non-negative integer");
  }
  uint64_t u = v.get<uint64_t>();
  if (u > std::numeric_limits<T>::max()) throw std::out_of_range("integer out of range");
  return static_cast<T>(u);
}

}  // namespace

Result<KeyFile> DecodeKeyFile(ByteSpan raw, std::string_view what) {
  ASSIGN_OR_RETURN(json j, ParseJson(raw, what));
  KeyFile k;
  try {
    k.version = UInt<uint32_t>(j.at("version"));
    k.kdf = j.at("kdf").get<std::string>();
    k.n = UInt<uint64_t>(j.at("n"));
    k.r = UInt<uint32_t>(j.at("r"));
    k.p = UInt<uint32_t>(j.at("p"));
    k.created = j.value("created", "");
    k.host = j.value("host", "");
    k.user = j.value("user", "");
    k.label = j.value("label", "");
    Result<Bytes> salt = Base64Decode(j.at("salt").get<std::string>());
    Result<Bytes> data = Base64Decode(j.at("data").get<std::string>());
    if (!salt.ok() || !data.ok()) {
      return Corruption(std::string(what) + ": salt or data is not base64");
    }
    k.salt = std::move(*salt);
    k.data = std::move(*data);
  } catch (const std::exception& e) {
    return Corruption(std::string(what) + ": " + e.what());
  }
  if (k.version != 1) {
    return Corruption(std::string(what) + ": key format version " + std::to_string(k.version) +
                      " is not supported (this build reads 1)");
  }
  if (k.kdf != "scrypt" || k.n < 2 || k.n > (1u << 20) || (k.n & (k.n - 1)) != 0 || k.r == 0 ||
      k.r > 32 || k.p == 0 || k.p > 16 || k.n * k.r > (uint64_t{1} << 23) || k.salt.size() < 16 ||
      k.salt.size() > 64) {
    return Corruption(std::string(what) + ": key derivation parameters out of range");
  }
  return k;
}

Result<Bytes> EncodeKeyFile(const MasterKey& mk, const Id& repo_id, std::string_view password,
                            std::string_view label, const KdfParams& kdf) {
  Bytes salt(32);
  RETURN_IF_ERROR(crypto::RandomBytes(salt));
  ASSIGN_OR_RETURN(crypto::Key kek, crypto::DeriveKeyScrypt(password, salt, kdf.n, kdf.r, kdf.p));
  crypto::Aead aead(kek);
  Bytes plain;
  PutBytes(&plain, mk.enc);
  PutBytes(&plain, mk.mac);
  Bytes sealed;
  RETURN_IF_ERROR(aead.Seal(plain, KeyAad(repo_id), &sealed));
  json j = {{"version", 1},
            {"kdf", "scrypt"},
            {"n", kdf.n},
            {"r", kdf.r},
            {"p", kdf.p},
            {"salt", Base64Encode(salt)},
            {"created", NowRfc3339()},
            {"host", HostName()},
            {"user", UserName()},
            {"label", std::string(label)},
            {"data", Base64Encode(sealed)}};
  std::string text = j.dump(2);
  return Bytes(text.begin(), text.end());
}

Result<RepoConfig> DecodeConfig(ByteSpan raw) {
  ASSIGN_OR_RETURN(json j, ParseJson(raw, "config"));
  RepoConfig c;
  try {
    if (j.at("format").get<std::string>() != kFormatName) {
      return Corruption("config: not a Bunker repository (format \"" +
                        j.at("format").get<std::string>() + "\")");
    }
    c.version = UInt<uint32_t>(j.at("version"));
    if (c.version > kFormatVersion) {
      return FailedPrecondition("repository format version " + std::to_string(c.version) +
                                " is newer than this bunker-agent supports (" +
                                std::to_string(kFormatVersion) + "); upgrade bunker-agent");
    }
    if (c.version != kFormatVersion) {
      return Corruption("config: unknown repository format version " + std::to_string(c.version));
    }
    Result<Id> id = ParseId(j.at("id").get<std::string>());
    if (!id.ok()) return Corruption("config: repository id is not 64 hex digits");
    c.id = *id;
    c.created = j.value("created", "");
    const json& ch = j.at("chunker");
    c.block_size = UInt<uint32_t>(ch.at("block_size"));
    c.cdc.min_size = UInt<uint32_t>(ch.at("cdc_min"));
    c.cdc.avg_size = UInt<uint32_t>(ch.at("cdc_avg"));
    c.cdc.max_size = UInt<uint32_t>(ch.at("cdc_max"));
  } catch (const std::exception& e) {
    return Corruption(std::string("config: ") + e.what());
  }
  auto pow2 = [](uint32_t v) { return v != 0 && (v & (v - 1)) == 0; };
  if (c.block_size < 4096 || c.block_size > (16u << 20) || c.block_size % 4096 != 0 ||
      c.cdc.min_size < 4096 || c.cdc.min_size > c.cdc.avg_size || !pow2(c.cdc.avg_size) ||
      c.cdc.avg_size > c.cdc.max_size || c.cdc.max_size > (16u << 20)) {
    return Corruption("config: chunker parameters out of range");
  }
  return c;
}

Bytes EncodeConfig(const RepoConfig& c) {
  json j = {{"format", kFormatName},
            {"version", c.version},
            {"id", ToHex(c.id)},
            {"created", c.created},
            {"chunker",
             {{"block_size", c.block_size},
              {"cdc_min", c.cdc.min_size},
              {"cdc_avg", c.cdc.avg_size},
              {"cdc_max", c.cdc.max_size}}}};
  std::string text = j.dump(2);
  return Bytes(text.begin(), text.end());
}

namespace {

Status ListNames(backend::Backend* b, std::string_view prefix, std::vector<ObjectId>* out) {
  return b->List(prefix, [&](const backend::ObjectInfo& info) -> Status {
    std::string_view name = info.name;
    name.remove_prefix(name.rfind('/') + 1);
    Result<Id> id = ParseId(name);
    if (id.ok()) out->push_back(*id);
    return Status::Ok();
  });
}

}  // namespace

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

chunk::GearTable Repository::Gear() const {
  crypto::Key seed = crypto::HkdfSha256(key_.mac, config_.id, "bunker cdc gear v1");
  return chunk::MakeGearTable(seed);
}

Status Repository::Init(backend::Backend* backend, std::string_view password,
                        const InitOptions& options) {
  if (password.empty()) return InvalidArgument("the repository password is empty");
  Result<backend::ObjectInfo> existing = backend->Stat("config");
  if (existing.ok()) {
    return AlreadyExists("a repository already exists at " + backend->Describe());
  }
  if (existing.status().code() != Code::kNotFound) {
    return existing.Annotated("check for an existing repository at " + backend->Describe());
  }
  RepoConfig c;
  RETURN_IF_ERROR(crypto::RandomBytes(c.id));
  c.created = NowRfc3339();
  c.block_size = options.block_size;
  if (c.block_size < 4096 || c.block_size > (16u << 20) || c.block_size % 4096 != 0) {
    return InvalidArgument("block size must be a multiple of 4096 between 4 KiB and 16 MiB");
  }
  MasterKey mk;
  mk.enc = crypto::RandomKey();
  mk.mac = crypto::RandomKey();
  ASSIGN_OR_RETURN(Bytes key_file, EncodeKeyFile(mk, c.id, password, options.label, options.kdf));
  // The key goes first: a config without a key would be an unusable repository.
  RETURN_IF_ERROR(Failpoint("init.before_key"));
  RETURN_IF_ERROR(backend->Put(KeyName(crypto::Sha256(key_file)), key_file));
  RETURN_IF_ERROR(Failpoint("init.before_config"));
  return backend->Put("config", EncodeConfig(c));
}

Result<std::unique_ptr<Repository>> Repository::Open(std::unique_ptr<backend::Backend> backend,
                                                     std::string_view password) {
  Result<Bytes> raw = backend->Get("config");
  if (!raw.ok()) {
    if (raw.status().code() == Code::kNotFound) {
      return NotFound("no repository at " + backend->Describe() +
                      " (run `bunker-agent repo init` first)");
    }
    return raw.Annotated("read config of " + backend->Describe());
  }
  ASSIGN_OR_RETURN(RepoConfig config, DecodeConfig(*raw));
  std::vector<ObjectId> keys;
  RETURN_IF_ERROR(ListNames(backend.get(), "keys/", &keys));
  if (keys.empty()) return Corruption("repository at " + backend->Describe() + " has no keys");
  Bytes aad = KeyAad(config.id);
  for (const ObjectId& kid : keys) {
    ASSIGN_OR_RETURN(Bytes kraw, backend->Get(KeyName(kid)));
    if (crypto::Sha256(kraw) != kid) {
      return Corruption("key file " + KeyName(kid) +
                        " is damaged (its hash does not match its name)");
    }
    ASSIGN_OR_RETURN(KeyFile kf, DecodeKeyFile(kraw, KeyName(kid)));
    ASSIGN_OR_RETURN(crypto::Key kek, crypto::DeriveKeyScrypt(password, kf.salt, kf.n, kf.r, kf.p));
    crypto::Aead aead(kek);
    Bytes plain;
    if (!aead.Open(kf.data, aad, &plain).ok()) continue;
    if (plain.size() != 64) return Corruption(KeyName(kid) + ": master key has the wrong size");
    MasterKey mk;
    std::copy(plain.begin(), plain.begin() + 32, mk.enc.begin());
    std::copy(plain.begin() + 32, plain.end(), mk.mac.begin());
    return std::unique_ptr<Repository>(
        new Repository(std::move(backend), std::move(config), mk, kid));
  }
  return PermissionDenied("wrong password: none of the " + std::to_string(keys.size()) +
                          " keys of the repository at " + backend->Describe() + " opens with it");
}

Result<std::vector<PackEntries>> Repository::ReadIndexFile(const ObjectId& id, BlobCodec* codec) {
  std::string name = IndexName(id);
  ASSIGN_OR_RETURN(Bytes raw, backend_->Get(name));
  if (crypto::Sha256(raw) != id) {
    return Corruption(name + " is damaged (its hash does not match its name)");
  }
  Bytes plain;
  RETURN_IF_ERROR(codec->Open(kAadIndex, raw, name, &plain));
  return DecodeIndex(plain, name);
}

Status Repository::LoadIndex() {
  damaged_index_files_.clear();
  std::vector<ObjectId> files;
  RETURN_IF_ERROR(ListNames(backend_.get(), "index/", &files).Annotate("list index files"));
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    BlobCodec codec(key_);
    for (size_t i = next++; i < files.size(); i = next++) {
      Result<std::vector<PackEntries>> packs = ReadIndexFile(files[i], &codec);
      if (!packs.ok() && packs.status().code() == Code::kCorruption) {
        // Its blobs are simply unknown: a backup stores them again, a
        // restore that needs them fails naming them; check reports the file.
        spdlog::warn("index file {} is damaged and was skipped (run check): {}", ShortHex(files[i]),
                     packs.status().message());
        std::lock_guard lock(mu);
        damaged_index_files_.push_back(files[i]);
        continue;
      }
      if (!packs.ok()) {
        std::lock_guard lock(mu);
        if (first_error.ok()) first_error = packs.status();
        return;
      }
      for (const PackEntries& p : *packs) index_.AddPack(p);
    }
  };
  size_t n = std::min<size_t>(files.size(), 4);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  RETURN_IF_ERROR(first_error);
  index_files_ = std::move(files);
  return Status::Ok();
}

Result<std::vector<ObjectId>> Repository::ListIndexFiles() {
  std::vector<ObjectId> files;
  RETURN_IF_ERROR(ListNames(backend_.get(), "index/", &files).Annotate("list index files"));
  return files;
}

Result<ObjectId> Repository::SaveIndex(const std::vector<PackEntries>& packs, BlobCodec* codec) {
  Bytes sealed;
  RETURN_IF_ERROR(codec->Seal(kAadIndex, EncodeIndex(packs), &sealed));
  ObjectId id = crypto::Sha256(sealed);
  RETURN_IF_ERROR(Failpoint("index.before_put"));
  RETURN_IF_ERROR(backend_->Put(IndexName(id), sealed).Annotate("write index " + ShortHex(id)));
  return id;
}

Result<Snapshot> Repository::LoadSnapshot(const ObjectId& id, BlobCodec* codec,
                                          bool* authenticated) {
  if (authenticated != nullptr) *authenticated = false;
  std::string name = SnapshotName(id);
  ASSIGN_OR_RETURN(Bytes raw, backend_->Get(name));
  if (crypto::Sha256(raw) != id) {
    return Corruption(name + " is damaged (its hash does not match its name)");
  }
  Bytes plain;
  RETURN_IF_ERROR(codec->Open(kAadSnapshot, raw, name, &plain));
  if (authenticated != nullptr) *authenticated = true;
  return DecodeSnapshotJson(plain, name);
}

Result<ObjectId> Repository::SaveSnapshot(const Snapshot& s, BlobCodec* codec) {
  Bytes sealed;
  RETURN_IF_ERROR(codec->Seal(kAadSnapshot, AsBytes(EncodeSnapshotJson(s)), &sealed));
  ObjectId id = crypto::Sha256(sealed);
  RETURN_IF_ERROR(Failpoint("snapshot.before_put"));
  RETURN_IF_ERROR(backend_->Put(SnapshotName(id), sealed).Annotate("write snapshot"));
  return id;
}

Result<std::vector<SnapshotRef>> Repository::ListSnapshots(std::vector<DamagedSnapshot>* damaged) {
  std::vector<ObjectId> ids;
  RETURN_IF_ERROR(ListNames(backend_.get(), "snapshots/", &ids).Annotate("list snapshots"));
  BlobCodec codec(key_);
  std::vector<SnapshotRef> out;
  out.reserve(ids.size());
  for (const ObjectId& id : ids) {
    bool authenticated = false;
    Result<Snapshot> s = LoadSnapshot(id, &codec, &authenticated);
    if (!s.ok()) {
      if (damaged == nullptr || s.status().code() != Code::kCorruption) return s.status();
      damaged->push_back(DamagedSnapshot{id, s.status(), authenticated});
      continue;
    }
    out.push_back(SnapshotRef{id, std::move(*s)});
  }
  std::sort(out.begin(), out.end(), [](const SnapshotRef& a, const SnapshotRef& b) {
    return a.snapshot.time < b.snapshot.time || (a.snapshot.time == b.snapshot.time && a.id < b.id);
  });
  return out;
}

Result<SnapshotRef> Repository::FindSnapshot(std::string_view what, std::string_view volume_id) {
  if (what != "latest" && !IsIdPrefix(what)) {
    return InvalidArgument("snapshot \"" + std::string(what) +
                           "\": give \"latest\", a snapshot id, or at least 6 of its hex digits");
  }
  std::vector<DamagedSnapshot> damaged;
  ASSIGN_OR_RETURN(std::vector<SnapshotRef> all, ListSnapshots(&damaged));
  for (const DamagedSnapshot& d : damaged) {
    if (what != "latest" && ToHex(d.id).starts_with(what)) return d.status;
    spdlog::warn("snapshot {} is damaged and was skipped (run check): {}", ShortHex(d.id),
                 d.status.message());
  }
  std::vector<SnapshotRef*> matches;
  for (SnapshotRef& s : all) {
    if (!volume_id.empty() && s.snapshot.volume_id != volume_id) continue;
    if (what == "latest" || ToHex(s.id).starts_with(what)) matches.push_back(&s);
  }
  if (matches.empty()) {
    return NotFound("no snapshot " + std::string(what) +
                    (volume_id.empty() ? "" : " of volume " + std::string(volume_id)) + " in " +
                    backend_->Describe());
  }
  if (what == "latest") return *matches.back();
  if (matches.size() > 1) {
    return InvalidArgument("snapshot prefix " + std::string(what) + " is ambiguous (" +
                           std::to_string(matches.size()) + " matches)");
  }
  return *matches.front();
}

Result<Bytes> Repository::ReadBlob(const BlobId& id, BlobCodec* codec) {
  std::optional<BlobLocation> loc = index_.Find(id);
  if (!loc) return NotFound("blob " + ShortHex(id) + " is not in the index");
  std::string name = PackName(loc->pack);
  ASSIGN_OR_RETURN(Bytes sealed, backend_->GetRange(name, loc->entry.offset, loc->entry.length));
  Bytes plain;
  RETURN_IF_ERROR(codec->Decode(loc->entry, sealed, name, &plain));
  return plain;
}

Result<std::vector<KeyInfo>> Repository::ListKeys() {
  std::vector<ObjectId> ids;
  RETURN_IF_ERROR(ListNames(backend_.get(), "keys/", &ids));
  std::vector<KeyInfo> out;
  for (const ObjectId& id : ids) {
    ASSIGN_OR_RETURN(Bytes raw, backend_->Get(KeyName(id)));
    ASSIGN_OR_RETURN(KeyFile kf, DecodeKeyFile(raw, KeyName(id)));
    out.push_back(KeyInfo{id, kf.created, kf.host, kf.user, kf.label, id == key_id_});
  }
  std::sort(out.begin(), out.end(),
            [](const KeyInfo& a, const KeyInfo& b) { return a.created < b.created; });
  return out;
}

Result<ObjectId> Repository::AddKey(std::string_view password, std::string_view label,
                                    const KdfParams& kdf) {
  if (password.empty()) return InvalidArgument("the new password is empty");
  ASSIGN_OR_RETURN(Bytes key_file, EncodeKeyFile(key_, config_.id, password, label, kdf));
  ObjectId id = crypto::Sha256(key_file);
  RETURN_IF_ERROR(Failpoint("key.add.before_put"));
  RETURN_IF_ERROR(backend_->Put(KeyName(id), key_file));
  return id;
}

Status Repository::RemoveKey(std::string_view id_or_prefix) {
  ASSIGN_OR_RETURN(std::vector<KeyInfo> keys, ListKeys());
  const KeyInfo* match = nullptr;
  for (const KeyInfo& k : keys) {
    if (!id_or_prefix.empty() && ToHex(k.id).starts_with(id_or_prefix)) {
      if (match != nullptr) return InvalidArgument("key id prefix is ambiguous");
      match = &k;
    }
  }
  if (match == nullptr) return NotFound("no key " + std::string(id_or_prefix));
  if (match->current) {
    return FailedPrecondition("key " + ShortHex(match->id) +
                              " is the one this command opened the repository with; open with "
                              "another password to remove it");
  }
  if (keys.size() == 1) return FailedPrecondition("refusing to remove the last key");
  RETURN_IF_ERROR(Failpoint("key.remove.before_delete"));
  return backend_->Delete(KeyName(match->id));
}

}  // namespace bunker::repo
