// RetryingBackend: retries only retryable failures, with capped full-jitter
// backoff, within an attempt and time budget; resumes listings without
// visiting an object twice. Clock, sleep and randomness are injected.

#include "nodeagent/core/backend/retrying_backend.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "tests/unit/backend/fake_backends.h"

namespace bunker::backend {
namespace {

using std::chrono::milliseconds;

// Fake time: sleeping advances the clock.
struct FakeTime {
  std::mutex mu;
  std::chrono::steady_clock::time_point now{};
  std::vector<milliseconds> sleeps;

  RetryOptions Options(int attempts, milliseconds budget = milliseconds(3600000)) {
    RetryOptions o;
    o.max_attempts = attempts;
    o.initial_backoff = milliseconds(100);
    o.max_backoff = milliseconds(1000);
    o.max_elapsed = budget;
    o.sleep = [this](milliseconds d) {
      std::lock_guard<std::mutex> lock(mu);
      sleeps.push_back(d);
      now += d;
    };
    o.now = [this] {
      std::lock_guard<std::mutex> lock(mu);
      return now;
    };
    o.random = [] { return 0.999; };  // the top of each jitter window
    return o;
  }
};

class RetryingBackendTest : public ::testing::Test {
 protected:
  // Fails the first `failures` calls of `op` with `error`.
  std::unique_ptr<RetryingBackend> Make(std::string op, int failures, Status error,
                                        RetryOptions options) {
    auto faulty = std::make_unique<FaultyBackend>(
        &memory_, [this, op, failures, error](std::string_view o, std::string_view) {
          if (o != op) return Status::Ok();
          return calls_.fetch_add(1) < failures ? error : Status::Ok();
        });
    return std::make_unique<RetryingBackend>(std::move(faulty), std::move(options));
  }

  MemoryBackend memory_;
  std::atomic<int> calls_{0};
  FakeTime time_;
};

TEST_F(RetryingBackendTest, RetriesUnavailableUntilItSucceeds) {
  auto b = Make("put", 3, Unavailable("s3 PUT: 503 SlowDown"), time_.Options(8));
  ASSERT_TRUE(b->Put("data/x", AsBytes("hello")).ok());
  EXPECT_EQ(calls_.load(), 4);
  EXPECT_EQ(b->retries(), 3u);
  // Full jitter under a doubling, capped ceiling: 100, 200, 400 ms (× 0.999).
  ASSERT_EQ(time_.sleeps.size(), 3u);
  EXPECT_EQ(time_.sleeps[0], milliseconds(99));
  EXPECT_EQ(time_.sleeps[1], milliseconds(199));
  EXPECT_EQ(time_.sleeps[2], milliseconds(399));
  EXPECT_EQ(*memory_.Get("data/x"), Bytes({'h', 'e', 'l', 'l', 'o'}));
}

TEST_F(RetryingBackendTest, RetriesErrorsMarkedRetryable) {
  Status transient = IOError("read: EINTR");
  transient.SetRetryable(true);
  auto b = Make("stat", 1, transient, time_.Options(3));
  ASSERT_TRUE(memory_.Put("k", AsBytes("v")).ok());
  EXPECT_TRUE(b->Stat("k").ok());
  EXPECT_EQ(calls_.load(), 2);
}

TEST_F(RetryingBackendTest, NeverRetriesPermanentErrors) {
  for (Status permanent : {PermissionDenied("s3 GET: 403 SignatureDoesNotMatch"),
                           NotFound("s3 GET: 404 NoSuchKey"), InvalidArgument("bad name"),
                           Corruption("short object"), FailedPrecondition("TLS verify failed")}) {
    calls_ = 0;
    auto b = Make("get", 100, permanent, time_.Options(8));
    Result<Bytes> got = b->Get("k");
    EXPECT_EQ(got.status().code(), permanent.code());
    EXPECT_EQ(got.status().message(), permanent.message()) << "permanent errors pass untouched";
    EXPECT_EQ(calls_.load(), 1) << permanent.ToString();
    EXPECT_EQ(b->retries(), 0u);
  }
}

TEST_F(RetryingBackendTest, GivesUpAfterMaxAttemptsWithTheLastError) {
  auto b = Make("delete", 1000, Unavailable("s3 DELETE k: connect failed: Connection refused"),
                time_.Options(4));
  Status st = b->Delete("k");
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_TRUE(st.IsRetryable());
  EXPECT_EQ(calls_.load(), 4);
  EXPECT_NE(st.message().find("connect failed: Connection refused"), std::string::npos);
  EXPECT_NE(st.message().find("gave up after 4 attempts"), std::string::npos) << st.message();
}

TEST_F(RetryingBackendTest, GivesUpWhenTheTimeBudgetIsSpent) {
  // Ceilings 100, 200, 400, 800, 1000…: with a 1 s budget the 4th retry
  // (sleep 799 after 99+199+399 = 697 ms) would end past it.
  auto b = Make("get", 1000, Unavailable("503"), time_.Options(100, milliseconds(1000)));
  Result<Bytes> got = b->Get("k");
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_EQ(calls_.load(), 4);
  EXPECT_NE(got.status().message().find("retry budget of 1.0 s spent"), std::string::npos)
      << got.status().message();
}

TEST_F(RetryingBackendTest, BackoffIsFullJitterUnderACappedExponentialCeiling) {
  RetryOptions o;
  o.initial_backoff = milliseconds(200);
  o.max_backoff = milliseconds(15000);
  EXPECT_EQ(FullJitterBackoff(1, o, 0.0), milliseconds(0));
  EXPECT_EQ(FullJitterBackoff(1, o, 0.5), milliseconds(100));
  EXPECT_EQ(FullJitterBackoff(3, o, 0.5), milliseconds(400));
  EXPECT_EQ(FullJitterBackoff(10, o, 0.5), milliseconds(7500));  // capped at 15 s
  EXPECT_EQ(FullJitterBackoff(1000, o, 0.5), milliseconds(7500));
  // The default randomness spreads the delays.
  RetryOptions d;
  std::set<int64_t> seen;
  for (int i = 0; i < 50; ++i) {
    seen.insert(FullJitterBackoff(5, d, static_cast<double>(i) / 50).count());
  }
  EXPECT_GT(seen.size(), 40u);
}

TEST_F(RetryingBackendTest, ListIsRetriedWhileNothingWasVisited) {
  ASSERT_TRUE(memory_.Put("index/a", AsBytes("1")).ok());
  auto b = Make("list", 2, Unavailable("s3 LIST: 500"), time_.Options(5));
  std::vector<std::string> names;
  Status st = b->List("index/", [&](const ObjectInfo& o) {
    names.push_back(o.name);
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(names, std::vector<std::string>{"index/a"});
}

TEST_F(RetryingBackendTest, ListResumesAfterTheLastVisitedNameWithoutDuplicates) {
  ResumableMemoryBackend* inner = new ResumableMemoryBackend();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(inner->Put("data/" + std::to_string(i), AsBytes("x")).ok());
  }
  int failures = 0;
  inner->list_fault = [&](size_t index) {
    // Fail before the 4th object of a pass, twice.
    if (index == 3 && failures < 2) {
      ++failures;
      return Unavailable("s3 LIST: connection reset");
    }
    return Status::Ok();
  };
  RetryingBackend b{std::unique_ptr<Backend>(inner), time_.Options(5)};
  std::vector<std::string> names;
  Status st = b.List("data/", [&](const ObjectInfo& o) {
    names.push_back(o.name);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<std::string> want;
  for (int i = 0; i < 10; ++i) want.push_back("data/" + std::to_string(i));
  EXPECT_EQ(names, want);
  EXPECT_EQ(inner->list_after_calls, 2);
}

TEST_F(RetryingBackendTest, ListIsNotRetriedMidwayWhenTheBackendCannotResume) {
  MemoryBackend* inner = new MemoryBackend();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(inner->Put("k" + std::to_string(i), {}).ok());
  inner->list_fault = [](size_t index) {
    return index == 2 ? Unavailable("nfs READDIR: timed out") : Status::Ok();
  };
  RetryingBackend b{std::unique_ptr<Backend>(inner), time_.Options(5)};
  int visited = 0;
  Status st = b.List("", [&](const ObjectInfo&) {
    ++visited;
    return Status::Ok();
  });
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(visited, 2);
  EXPECT_NE(st.message().find("not retried: 2 objects were already listed"), std::string::npos)
      << st.message();
}

TEST_F(RetryingBackendTest, AVisitorErrorIsNeverRetried) {
  ASSERT_TRUE(memory_.Put("a", {}).ok());
  auto b = Make("list", 0, Status::Ok(), time_.Options(5));
  int visits = 0;
  Status st = b->List("", [&](const ObjectInfo&) {
    ++visits;
    return Unavailable("the caller's own transient error");
  });
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(visits, 1);
  EXPECT_EQ(b->retries(), 0u);
}

TEST_F(RetryingBackendTest, ForwardsSettleTimeAndRetriesRangedReadsIntoABuffer) {
  auto b = Make("get_range", 2, Unavailable("s3 GET: connection reset"), time_.Options(5));
  EXPECT_EQ(b->ListSettleTime(), memory_.ListSettleTime());
  ASSERT_TRUE(memory_.Put("data/p", AsBytes("0123456789")).ok());
  Bytes out;
  ASSERT_TRUE(b->GetRangeInto("data/p", 2, 5, &out).ok());
  EXPECT_EQ(AsChars(out), "23456");
  EXPECT_EQ(b->retries(), 2u);
}

TEST_F(RetryingBackendTest, IsSafeFromManyThreads) {
  auto b = Make("put", 40, Unavailable("503"), time_.Options(50));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (!b->Put("o" + std::to_string(t) + "/" + std::to_string(i), AsBytes("x")).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(b->retries(), 40u);
}

}  // namespace
}  // namespace bunker::backend
