// The S3 backend under failure: a killed server, 503 SlowDown answers,
// connections cut mid-request or mid-response, a stalled server. Faults come
// from the harness FaultProxy between the backend and a real s3rver. The
// retrying backend must succeed within its budget and fail clearly past it.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "nodeagent/core/backend/http_client.h"
#include "tests/harness/fault_proxy.h"
#include "tests/harness/fixtures.h"
#include "tests/integration/s3/s3_test_util.h"

namespace bunker::backend {
namespace {

using s3test::FastRetry;
using s3test::MustOpen;
using s3test::MustOpenRetrying;
using s3test::OptionsFor;
using s3test::RandomData;
using testing::FaultProxy;
using Clock = std::chrono::steady_clock;

class S3FaultsTest : public s3test::S3rverTest {
 protected:
  void SetUp() override {
    S3rverTest::SetUp();
    Result<std::unique_ptr<FaultProxy>> p = FaultProxy::Start(s3().port());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    proxy_ = std::move(p).value();
  }
  void TearDown() override {
    proxy_.reset();
    S3rverTest::TearDown();
  }

  // Retrying(S3) talking to s3rver through the proxy.
  std::unique_ptr<RetryingBackend> ViaProxy(RetryOptions retry = FastRetry(),
                                            S3Options tweak = {}) {
    S3Options o = OptionsFor(proxy_->endpoint(), s3().bucket(), "repo");
    if (tweak.io_timeout != S3Options{}.io_timeout) o.io_timeout = tweak.io_timeout;
    return MustOpenRetrying(std::move(o), std::move(retry));
  }

  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(S3FaultsTest, AKilledServerIsUnavailableAfterTheRetryBudget) {
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(OptionsFor(s3(), "repo"), FastRetry(4));
  ASSERT_TRUE(b->Put("config", AsBytes("x")).ok());
  s3().Kill();
  auto start = Clock::now();
  Result<Bytes> got = b->Get("config");
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_TRUE(got.status().IsRetryable());
  const std::string& m = got.status().message();
  EXPECT_NE(m.find("s3 GET s3://" + s3().bucket() + "/repo/config at " + s3().endpoint()),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("Connection refused"), std::string::npos) << m;
  EXPECT_NE(m.find("(gave up after 4 attempts in"), std::string::npos) << m;
  EXPECT_EQ(b->retries(), 3u);
  EXPECT_LT(elapsed, std::chrono::seconds(5)) << "the budget bounds the time";
}

TEST_F(S3FaultsTest, SlowDownAnswersAreRetriedAndSucceedWithinTheBudget) {
  std::unique_ptr<RetryingBackend> b = ViaProxy(FastRetry(5));
  proxy_->RespondSlowDown(3);
  Bytes data = RandomData(200000, 1);
  ASSERT_TRUE(b->Put("data/00/pack", data).ok());
  EXPECT_EQ(proxy_->slow_downs_sent(), 3u);
  EXPECT_EQ(b->retries(), 3u);
  proxy_->RespondSlowDown(2);
  Result<Bytes> got = b->Get("data/00/pack");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  EXPECT_EQ(proxy_->slow_downs_sent(), 5u);
  // The 503s went over kept-alive connections: no reconnect per retry.
  EXPECT_LE(proxy_->connections_accepted(), 2u);
}

TEST_F(S3FaultsTest, SlowDownPastTheBudgetFailsWithTheServersWords) {
  std::unique_ptr<RetryingBackend> b = ViaProxy(FastRetry(3));
  proxy_->RespondSlowDown(1000);
  Status st = b->Put("data/00/pack", AsBytes("x"));
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("s3 PUT s3://" + s3().bucket() + "/repo/data/00/pack at " +
                              proxy_->endpoint() +
                              ": 503 SlowDown: Please reduce your request rate. [request id "
                              "fault-proxy] (gave up after 3 attempts in"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(proxy_->slow_downs_sent(), 3u);
}

TEST_F(S3FaultsTest, AResponseCutShortIsRetriedOnANewConnection) {
  std::unique_ptr<S3Backend> direct = MustOpen(OptionsFor(s3(), "repo"));
  Bytes data = RandomData(1 << 20, 2);
  ASSERT_TRUE(direct->Put("data/11/pack", data).ok());

  proxy_->DropAfterBytes(100000, 2, FaultProxy::Direction::kToClient);
  std::unique_ptr<RetryingBackend> b = ViaProxy(FastRetry(5));
  Result<Bytes> got = b->Get("data/11/pack");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  EXPECT_EQ(proxy_->connections_dropped(), 2u);
  EXPECT_EQ(b->retries(), 2u);
  // Ranged reads too.
  proxy_->DropAfterBytes(1000, 1, FaultProxy::Direction::kToClient);
  std::unique_ptr<RetryingBackend> b2 = ViaProxy(FastRetry(5));
  Result<Bytes> range = b2->GetRange("data/11/pack", 500000, 300000);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_TRUE(std::equal(range->begin(), range->end(), data.begin() + 500000));
}

TEST_F(S3FaultsTest, AnUploadCutShortIsRetriedAndLandsWhole) {
  proxy_->DropAfterBytes(300000, 1, FaultProxy::Direction::kToServer);
  std::unique_ptr<RetryingBackend> b = ViaProxy(FastRetry(5));
  Bytes data = RandomData(1 << 20, 3);
  ASSERT_TRUE(b->Put("data/22/pack", data).ok());
  EXPECT_EQ(proxy_->connections_dropped(), 1u);
  EXPECT_EQ(b->retries(), 1u);
  Result<Bytes> got = MustOpen(OptionsFor(s3(), "repo"))->Get("data/22/pack");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), data.size());
  size_t first_difference = 0;
  while (first_difference < data.size() && (*got)[first_difference] == data[first_difference]) {
    ++first_difference;
  }
  EXPECT_EQ(first_difference, data.size())
      << "the stored object differs from byte " << first_difference;
}

TEST_F(S3FaultsTest, AMultipartUploadSurvivesCutConnections) {
  // Two layers recover here. The first cut hits a kept-alive connection
  // before any response byte: the HTTP client sends that request once more
  // on a fresh connection. That one is cut too: the part fails, the upload
  // is aborted, and the retrying backend repeats the whole Put (a new
  // multipart upload), which lands complete.
  S3Options o = OptionsFor(proxy_->endpoint(), s3().bucket(), "repo");
  o.multipart_threshold = 6 << 20;
  o.part_size = 5 << 20;
  proxy_->DropAfterBytes(2 << 20, 2, FaultProxy::Direction::kToServer);
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(o, FastRetry(5));
  Bytes data = RandomData(12 << 20, 4);
  Status st = b->Put("data/33/big", data);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(proxy_->connections_dropped(), 2u);
  EXPECT_EQ(b->retries(), 1u);
  auto* s3 = dynamic_cast<S3Backend*>(b->inner());
  EXPECT_EQ(s3->stats().multipart_uploads, 2u);
  Result<Bytes> got = b->Get("data/33/big");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == data);
}

TEST_F(S3FaultsTest, AListingThatFailsMidwayResumesWithoutDuplicates) {
  std::unique_ptr<RetryingBackend> direct = MustOpenRetrying(OptionsFor(s3(), "repo"));
  constexpr int kObjects = 2100;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kObjects; i += 4) {
        char name[32];
        std::snprintf(name, sizeof(name), "data/%05d", i);
        EXPECT_TRUE(direct->Put(name, AsBytes("x")).ok());
      }
    });
  }
  for (auto& th : threads) th.join();

  std::unique_ptr<RetryingBackend> b = ViaProxy(FastRetry(5));
  std::set<std::string> seen;
  std::string previous;
  Status st = b->List("data/", [&](const ObjectInfo& o) {
    EXPECT_TRUE(seen.insert(o.name).second) << "visited twice: " << o.name;
    EXPECT_GT(o.name, previous);
    previous = o.name;
    // While page 1 is being visited, make the request for page 2 fail.
    if (seen.size() == 500) proxy_->RespondSlowDown(1);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kObjects));
  EXPECT_EQ(proxy_->slow_downs_sent(), 1u);
  EXPECT_EQ(b->retries(), 1u);
}

TEST_F(S3FaultsTest, AStalledServerTimesOutAsUnavailable) {
  std::unique_ptr<S3Backend> direct = MustOpen(OptionsFor(s3(), "repo"));
  ASSERT_TRUE(direct->Put("config", AsBytes("x")).ok());
  S3Options tweak;
  tweak.io_timeout = std::chrono::milliseconds(300);
  std::unique_ptr<RetryingBackend> b = ViaProxy(FastRetry(2), tweak);
  proxy_->SetDelay(std::chrono::milliseconds(1500));
  auto start = Clock::now();
  Result<Bytes> got = b->Get("config");
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_NE(got.status().message().find("timed out after 300 ms"), std::string::npos)
      << got.status().message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
  // Once the stall ends, the same backend works again.
  proxy_->ClearFaults();
  Result<Bytes> again = b->Get("config");
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(S3FaultsTest, AConnectionTheServerClosedWhileIdleIsReplacedTransparently) {
  // Node closes kept-alive connections after 5 s idle. With a longer idle
  // allowance in the pool, the next request goes out on a closed
  // connection, fails before any response byte, and is sent again on a
  // fresh one, invisibly to the caller.
  Result<HttpEndpoint> ep = ParseHttpEndpoint(s3().endpoint());
  ASSERT_TRUE(ep.ok());
  HttpClientOptions options;
  options.endpoint = *ep;
  options.max_idle_time = std::chrono::seconds(60);
  Result<std::unique_ptr<HttpClient>> client = NewHttpClient(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  HttpRequest req;
  req.method = "GET";
  req.target = "/" + s3().bucket() + "?list-type=2";
  Result<HttpResponse> first = (*client)->Send(req);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->status, 200);
  std::this_thread::sleep_for(std::chrono::seconds(7));
  Result<HttpResponse> second = (*client)->Send(req);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ((*client)->connections_opened(), 2u);
}

TEST_F(S3FaultsTest, ParallelRequestsReuseKeptAliveConnections) {
  std::unique_ptr<RetryingBackend> b = ViaProxy();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_failure;
  auto fail = [&](const std::string& what) {
    ++failures;
    std::lock_guard<std::mutex> lock(mu);
    if (first_failure.empty()) first_failure = what;
  };
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string name = "data/p" + std::to_string(t) + "/" + std::to_string(i);
        if (Status st = b->Put(name, AsBytes(name)); !st.ok()) fail(st.ToString());
        Result<Bytes> got = b->Get(name);
        if (!got.ok()) {
          fail(got.status().ToString());
        } else if (AsChars(*got) != name) {
          fail("read back \"" + std::string(AsChars(*got)) + "\" for " + name);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  EXPECT_GE(proxy_->requests_seen(), 200u);
  EXPECT_LE(proxy_->connections_accepted(), 8u)
      << "200 requests from 4 threads should share a handful of connections";
}

}  // namespace
}  // namespace bunker::backend
