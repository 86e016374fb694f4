#pragma once

// FaultBackend wraps a Backend and injects failures, for tests of what the
// layers above do when storage misbehaves (STYLE.md: cross-cutting behaviour
// is a wrapper). Never used unless asked for: OpenBackend wraps a location in
// it only when the environment variable BUNKER_FAULTS is set.
//
// Spec: comma-separated rules "op:fault[@N][=ARG]", op one of put, get
// (Get and GetRange), delete, list, stat, any; fault one of
//   error      the call fails with a retryable Unavailable ("injected fault")
//   fatal      the call fails with a permanent IOError
//   flip       a read returns the data with one bit flipped (get only)
//   truncate   a read returns all but the last byte (get only)
//   partial    a listing stops halfway and reports success (list only) — what
//              a broken store might do; callers must detect it by other means
//   slow=MS    the call sleeps MS milliseconds first
// @N applies the rule to the N-th matching call only (1-based); without it,
// to every call. Example: BUNKER_FAULTS="put:error@3,get:flip@5,list:partial@1".
//
// Thread-safety: as the wrapped backend; rule counters are atomic.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "nodeagent/core/backend/backend.h"

namespace bunker::backend {

class FaultBackend final : public Backend {
 public:
  static Result<std::unique_ptr<Backend>> Wrap(std::unique_ptr<Backend> inner,
                                               std::string_view spec);

  std::string Describe() const override { return inner_->Describe(); }
  std::chrono::milliseconds ListSettleTime() const override { return inner_->ListSettleTime(); }
  Status Put(std::string_view name, ByteSpan data) override;
  Result<Bytes> Get(std::string_view name) override;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  Status GetRangeInto(std::string_view name, uint64_t offset, uint64_t length, Bytes* out) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  Status Delete(std::string_view name) override;
  Status List(std::string_view prefix,
              const std::function<Status(const ObjectInfo&)>& visit) override;
  Result<uint64_t> RemoveStaleTemporaries(int64_t older_than_unix) override {
    return inner_->RemoveStaleTemporaries(older_than_unix);
  }

 private:
  enum class Op { kPut, kGet, kDelete, kList, kStat, kAny };
  enum class Fault { kError, kFatal, kFlip, kTruncate, kPartial, kSlow };
  struct Rule {
    Op op;
    Fault fault;
    uint64_t nth = 0;  // 0: every call
    uint64_t arg = 0;  // slow: milliseconds
    std::unique_ptr<std::atomic<uint64_t>> calls;
  };

  explicit FaultBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  // The faults that apply to this call of `op` (counting it).
  std::vector<Fault> Hit(Op op, std::string_view name);
  Status Check(Op op, std::string_view name, bool* flip, bool* truncate, bool* partial);
  static void Damage(bool flip, bool truncate, Bytes* data);

  std::unique_ptr<Backend> inner_;
  std::vector<Rule> rules_;
};

}  // namespace bunker::backend
