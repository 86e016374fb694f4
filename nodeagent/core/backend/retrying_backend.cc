#include "nodeagent/core/backend/retrying_backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "nodeagent/core/backend/resumable_list.h"

namespace bunker::backend {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

// The same error, its message suffixed with why retrying stopped.
Status WithSuffix(const Status& st, const std::string& suffix) {
  Status out(st.code(), st.message() + " " + suffix);
  out.SetRetryable(st.IsRetryable());
  return out;
}
Status GiveUp(const Status& st, const std::string& suffix) { return WithSuffix(st, suffix); }
template <typename T>
Result<T> GiveUp(const Result<T>& r, const std::string& suffix) {
  return WithSuffix(r.status(), suffix);
}

double DefaultRandom() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

std::string Seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

std::chrono::milliseconds FullJitterBackoff(int retry, const RetryOptions& options,
                                            double unit_random) {
  double cap = static_cast<double>(options.max_backoff.count());
  double base = static_cast<double>(options.initial_backoff.count()) *
                std::pow(2.0, std::min(std::max(retry - 1, 0), 62));
  double ceiling = std::min(cap, base);
  double r = std::clamp(unit_random, 0.0, 1.0);
  return milliseconds(static_cast<int64_t>(ceiling * r));
}

// Per-operation state: when the operation started, how many attempts ran.
struct RetryingBackend::Attempts {
  const RetryOptions& options;
  std::atomic<uint64_t>& retries;
  Clock::time_point start;
  int attempt = 1;

  Clock::time_point Now() const { return options.now ? options.now() : Clock::now(); }

  // After a retryable failure: sleeps and returns true when another attempt
  // may run; returns false with *why set when the budget is spent.
  bool Next(const Status& st, std::string_view op_name, std::string_view object, std::string* why) {
    Clock::duration elapsed = Now() - start;
    if (attempt >= options.max_attempts) {
      *why = "(gave up after " + std::to_string(attempt) + " attempts in " + Seconds(elapsed) + ")";
      return false;
    }
    milliseconds delay =
        FullJitterBackoff(attempt, options, options.random ? options.random() : DefaultRandom());
    if (elapsed + delay > options.max_elapsed) {
      *why = "(gave up after " + std::to_string(attempt) + " attempts in " + Seconds(elapsed) +
             ": retry budget of " + Seconds(options.max_elapsed) + " spent)";
      return false;
    }
    spdlog::warn("{} {}: {}; retry {}/{} in {} ms", op_name, object, st.ToString(), attempt,
                 options.max_attempts - 1, delay.count());
    retries.fetch_add(1);
    if (options.sleep) {
      options.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
    ++attempt;
    return true;
  }
};

RetryingBackend::RetryingBackend(std::unique_ptr<Backend> inner, RetryOptions options)
    : inner_(std::move(inner)), options_(std::move(options)) {}

uint64_t RetryingBackend::retries() const { return retries_.load(); }

template <typename Op>
auto RetryingBackend::Run(std::string_view op_name, std::string_view object, Op&& op)
    -> decltype(op()) {
  Attempts attempts{options_, retries_, Clock::now()};
  attempts.start = attempts.Now();
  while (true) {
    auto result = op();
    const Status& st = StatusOf(result);
    if (st.ok() || !st.IsRetryable()) return result;
    std::string why;
    if (!attempts.Next(st, op_name, object, &why)) return GiveUp(result, why);
  }
}

Status RetryingBackend::Put(std::string_view name, ByteSpan data) {
  return Run("put", name, [&] { return inner_->Put(name, data); });
}

Result<Bytes> RetryingBackend::Get(std::string_view name) {
  return Run("get", name, [&] { return inner_->Get(name); });
}

Result<Bytes> RetryingBackend::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  return Run("get range", name, [&] { return inner_->GetRange(name, offset, length); });
}

Status RetryingBackend::GetRangeInto(std::string_view name, uint64_t offset, uint64_t length,
                                     Bytes* out) {
  return Run("get range", name, [&] { return inner_->GetRangeInto(name, offset, length, out); });
}

Result<ObjectInfo> RetryingBackend::Stat(std::string_view name) {
  return Run("stat", name, [&] { return inner_->Stat(name); });
}

Status RetryingBackend::Delete(std::string_view name) {
  return Run("delete", name, [&] { return inner_->Delete(name); });
}

Status RetryingBackend::List(std::string_view prefix,
                             const std::function<Status(const ObjectInfo&)>& visit) {
  auto* resumable = dynamic_cast<ResumableList*>(inner_.get());
  std::string last;  // the last name the visitor accepted
  uint64_t visited = 0;
  bool visitor_failed = false;
  auto forward = [&](const ObjectInfo& info) -> Status {
    Status st = visit(info);
    if (!st.ok()) {
      visitor_failed = true;
      return st;
    }
    last = info.name;
    ++visited;
    return st;
  };
  Attempts attempts{options_, retries_, Clock::now()};
  attempts.start = attempts.Now();
  while (true) {
    Status st =
        visited == 0 ? inner_->List(prefix, forward) : resumable->ListAfter(prefix, last, forward);
    if (st.ok() || visitor_failed || !st.IsRetryable()) return st;
    if (visited > 0 && resumable == nullptr) {
      return WithSuffix(st, "(not retried: " + std::to_string(visited) +
                                " objects were already listed and this backend cannot resume a "
                                "listing)");
    }
    std::string why;
    if (!attempts.Next(st, "list", prefix, &why)) return WithSuffix(st, why);
  }
}

}  // namespace bunker::backend
