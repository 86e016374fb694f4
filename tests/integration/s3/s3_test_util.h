#pragma once

// Shared pieces of the S3 integration tests: backends on a harness s3rver,
// short retry budgets, unique key prefixes, random data.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include "nodeagent/core/backend/retrying_backend.h"
#include "nodeagent/core/backend/s3_backend.h"
#include "tests/harness/fixtures.h"
#include "tests/harness/s3_server.h"

namespace bunker::backend::s3test {

// A fresh key prefix per call, so tests sharing a server never see each
// other's objects.
inline std::string UniquePrefix(std::string_view tag) {
  static std::atomic<int> counter{0};
  return std::string(tag) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

inline S3Options OptionsFor(const std::string& endpoint, const std::string& bucket,
                            const std::string& prefix) {
  S3Options o;
  o.bucket = bucket;
  o.prefix = prefix;
  o.endpoint = endpoint;
  o.region = std::string(testing::S3Server::kRegion);
  o.credentials = {std::string(testing::S3Server::kAccessKey),
                   std::string(testing::S3Server::kSecretKey), "", "test"};
  return o;
}

inline S3Options OptionsFor(const testing::S3Server& s3, const std::string& prefix) {
  return OptionsFor(s3.endpoint(), s3.bucket(), prefix);
}

// A budget that gives up within a few seconds.
inline RetryOptions FastRetry(int attempts = 4) {
  RetryOptions r;
  r.max_attempts = attempts;
  r.initial_backoff = std::chrono::milliseconds(20);
  r.max_backoff = std::chrono::milliseconds(200);
  r.max_elapsed = std::chrono::seconds(10);
  return r;
}

inline std::unique_ptr<S3Backend> MustOpen(S3Options options) {
  Result<std::unique_ptr<S3Backend>> b = S3Backend::Open(std::move(options));
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(b).value() : nullptr;
}

// Retrying(S3), as OpenBackend composes it.
inline std::unique_ptr<RetryingBackend> MustOpenRetrying(S3Options options,
                                                         RetryOptions retry = FastRetry()) {
  std::unique_ptr<S3Backend> s3 = MustOpen(std::move(options));
  if (s3 == nullptr) return nullptr;
  return std::make_unique<RetryingBackend>(std::move(s3), std::move(retry));
}

inline Bytes RandomData(size_t n, uint64_t seed) {
  Bytes b(n);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(b.data() + i, &v, 8);
  }
  for (; i < n; ++i) b[i] = static_cast<uint8_t>(rng());
  return b;
}

// A fresh s3rver per test (the harness fixture; it runs s3rver with
// S3rverEnv(), so listings past 1000 keys work and PUTs are atomic).
class S3rverTest : public testing::S3ServerTest {};

// One s3rver for the whole test process (the conformance suite makes a
// backend per test; each gets its own prefix). Started on first use.
inline testing::S3Server* SharedS3Server() {
  static std::unique_ptr<testing::S3Server> server = [] {
    Result<std::unique_ptr<testing::S3Server>> s = testing::S3Server::Start();
    if (!s.ok()) {
      std::cerr << "cannot start s3rver: " << s.status().ToString() << "\n";
      return std::unique_ptr<testing::S3Server>();
    }
    return std::move(s).value();
  }();
  return server.get();
}

}  // namespace bunker::backend::s3test
