#pragma once

// RetryingBackend: wraps a Backend and retries the operations that failed
// with a retryable Status (Status::IsRetryable(): Unavailable, or an error
// marked retryable), with exponential backoff and full jitter:
//   sleep before retry n (n = 1, 2, …) = uniform[0, min(max_backoff,
//                                              initial_backoff * 2^(n-1))]
// bounded by max_attempts per operation and by max_elapsed since the first
// attempt (no retry starts that would begin after it). Non-retryable
// failures (NotFound, PermissionDenied, InvalidArgument, Corruption, …) are
// returned at once, untouched. When it gives up, the last error is returned
// with its code, its message suffixed "(gave up after N attempts in T s)".
//
// Every Backend operation is idempotent (backend.h), so repeating one is
// safe. List is special: objects already handed to the visitor must not be
// visited again. If the wrapped backend implements ResumableList, a listing
// that fails midway resumes after the last visited name; otherwise a
// listing is retried only while nothing has been visited yet. An error
// returned by the visitor itself is never retried.
//
// Composed once, around the S3 backend (and later NFS) in OpenBackend.
// Each retry is logged (warn) with the error, which never holds secrets.
// Thread-safety: as thread-safe as the wrapped backend; the options' seams
// (sleep, now, random) must be thread-safe.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "nodeagent/core/backend/backend.h"

namespace bunker::backend {

struct RetryOptions {
  // Tries per operation, the first one included (1 = no retries).
  int max_attempts = 8;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(15)};
  // No retry starts later than this after the first attempt began.
  std::chrono::milliseconds max_elapsed{std::chrono::seconds(120)};

  // Seams for tests; defaults: std::this_thread::sleep_for,
  // steady_clock::now, a per-thread PRNG uniform in [0, 1).
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<double()> random;
};

// The full-jitter delay before retry `retry` (1-based), for `unit_random`
// in [0, 1).
std::chrono::milliseconds FullJitterBackoff(int retry, const RetryOptions& options,
                                            double unit_random);

class RetryingBackend final : public Backend {
 public:
  RetryingBackend(std::unique_ptr<Backend> inner, RetryOptions options = {});

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

  Backend* inner() const { return inner_.get(); }
  // Retries made so far (all operations), for tests and metrics.
  uint64_t retries() const;

 private:
  struct Attempts;  // per-operation retry state (retrying_backend.cc)

  template <typename Op>
  auto Run(std::string_view op_name, std::string_view object, Op&& op) -> decltype(op());

  const std::unique_ptr<Backend> inner_;
  const RetryOptions options_;
  std::atomic<uint64_t> retries_{0};
};

}  // namespace bunker::backend
