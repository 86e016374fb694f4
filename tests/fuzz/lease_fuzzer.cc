// Lease decoding and judging (FORMAT.md, "Leases"): Lease::ListAll decodes
// every object under locks/, Lease::IsStale judges each, and Lease::Acquire
// does both and describes a conflicting lease. The lease JSON has no decoder
// function of its own, so the harness drives the real code path: a
// repository on an in-memory backend holding one fuzzed lease object.
//
// Input: mode(u8) || payload. mode even: payload is the lease JSON, sealed by
// the harness with the repository key (hostile but authentic content);
// mode odd: payload is stored as is (the AEAD failure path: unreadable).
//
// Properties: nothing throws (F1: a field of another JSON type made
// ListAll throw); a lease is either decoded or listed as
// unreadable; Acquire either takes the lock or fails with FailedPrecondition.

#include <map>
#include <memory>
#include <mutex>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

// Objects in a map; List visits in byte order.
class MemoryBackend final : public backend::Backend {
 public:
  std::string Describe() const override { return "mem://fuzz"; }
  std::chrono::milliseconds ListSettleTime() const override { return {}; }
  Status Put(std::string_view name, ByteSpan data) override {
    std::lock_guard lock(mu_);
    objects_[std::string(name)] = Bytes(data.begin(), data.end());
    return Status::Ok();
  }
  Result<Bytes> Get(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(name));
    if (it == objects_.end()) return NotFound(std::string(name));
    return it->second;
  }
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override {
    ASSIGN_OR_RETURN(Bytes all, Get(name));
    if (offset > all.size() || length > all.size() - offset) return Corruption("short object");
    return Bytes(all.begin() + static_cast<ptrdiff_t>(offset),
                 all.begin() + static_cast<ptrdiff_t>(offset + length));
  }
  Result<backend::ObjectInfo> Stat(std::string_view name) override {
    ASSIGN_OR_RETURN(Bytes all, Get(name));
    return backend::ObjectInfo{std::string(name), all.size(), 0};
  }
  Status Delete(std::string_view name) override {
    std::lock_guard lock(mu_);
    objects_.erase(std::string(name));
    return Status::Ok();
  }
  Status List(std::string_view prefix,
              const std::function<Status(const backend::ObjectInfo&)>& visit) override {
    std::map<std::string, Bytes> copy;
    {
      std::lock_guard lock(mu_);
      copy = objects_;
    }
    for (const auto& [name, data] : copy) {
      if (name.starts_with(prefix)) RETURN_IF_ERROR(visit({name, data.size(), 0}));
    }
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  std::map<std::string, Bytes> objects_;  // guarded by mu_
};

// One repository for the whole process (Init runs scrypt once, cheaply).
repo::Repository& Repo() {
  static std::unique_ptr<repo::Repository> repo = [] {
    auto backend = std::make_unique<MemoryBackend>();
    repo::InitOptions options;
    options.kdf.n = 1024;
    options.kdf.r = 1;
    Status st = repo::Repository::Init(backend.get(), "fuzz", options);
    FUZZ_CHECK(st.ok(), Describe(st));
    Result<std::unique_ptr<repo::Repository>> r =
        repo::Repository::Open(std::move(backend), "fuzz");
    FUZZ_CHECK(r.ok(), Describe(r.status()));
    if (!r.ok()) std::abort();
    return std::move(r).value();
  }();
  return *repo;
}

constexpr std::string_view kName = "locks/00000000000000000000000000000000";

}  // namespace

BUNKER_FUZZ_TARGET(lease) {
  InputReader in(data);
  uint8_t mode = 0;
  if (!in.U8(&mode)) return false;
  repo::Repository& repo = Repo();
  Bytes stored;
  if (mode % 2 == 0) {
    repo::BlobCodec codec(repo.key());
    Status st = codec.Seal(repo::kAadLease, in.Rest(), &stored);
    FUZZ_CHECK(st.ok(), Describe(st));
  } else {
    ByteSpan rest = in.Rest();
    stored.assign(rest.begin(), rest.end());
  }
  Status put = repo.backend()->Put(kName, stored);
  FUZZ_CHECK(put.ok(), Describe(put));
  bool decoded = false;
  std::vector<std::string> unreadable;
  Result<std::vector<repo::LeaseInfo>> all = repo::Lease::ListAll(&repo, &unreadable);
  FUZZ_CHECK(all.ok(), Describe(all.status()));
  if (all.ok()) {
    FUZZ_CHECK(all->size() + unreadable.size() == 1, "the lease is neither decoded nor unreadable");
    for (const repo::LeaseInfo& l : *all) {
      FUZZ_CHECK(l.name == kName, "decoded lease has another name");
      repo::Lease::IsStale(l, std::chrono::seconds(60));
      decoded = true;
    }
  }
  if (decoded) {
    repo::LeaseOptions options;
    options.settle = std::chrono::milliseconds(0);
    Result<std::unique_ptr<repo::Lease>> taken =
        repo::Lease::Acquire(&repo, /*exclusive=*/true, "fuzz", options);
    FUZZ_CHECK(taken.ok() || taken.status().code() == Code::kFailedPrecondition,
               Describe(taken.status()));
    // A taken lease is released (and its object deleted) here.
  }
  Status del = repo.backend()->Delete(kName);
  FUZZ_CHECK(del.ok(), Describe(del));
  return decoded;
}

}  // namespace bunker::fuzz
