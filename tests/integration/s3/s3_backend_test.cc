// The S3 backend against a real s3rver (tests/harness): the backend
// conformance suite, multipart uploads, listings past 1000 objects, awkward
// keys, interoperability with the AWS CLI, error messages, ProbeBackend,
// and a throughput figure.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <set>
#include <thread>

#include "nodeagent/core/backend/probe.h"
#include "tests/harness/fixtures.h"
#include "tests/integration/s3/s3_test_util.h"
#include "tests/integration/s3/tls_s3rver.h"
#include "tests/unit/backend/backend_conformance.h"

namespace bunker::backend {
namespace {

using s3test::FastRetry;
using s3test::MustOpen;
using s3test::MustOpenRetrying;
using s3test::OptionsFor;
using s3test::RandomData;
using s3test::UniquePrefix;

// ------------------------------------------------------------ conformance

std::unique_ptr<Backend> MakeS3ForConformance() {
  testing::S3Server* s3 = s3test::SharedS3Server();
  if (s3 == nullptr) return nullptr;
  // As OpenBackend composes it: Retrying(S3).
  return MustOpenRetrying(OptionsFor(*s3, UniquePrefix("conformance")));
}

// The same over https, verified against a test CA given as a CA bundle file.
struct SharedTlsServer {
  testing::TempDir dir;
  std::unique_ptr<s3test::TlsS3rver> server;
};

SharedTlsServer* TlsServerForConformance() {
  static std::unique_ptr<SharedTlsServer> shared = []() -> std::unique_ptr<SharedTlsServer> {
    auto s = std::make_unique<SharedTlsServer>();
    Result<testing::TempDir> dir = testing::TempDir::Create("s3-tls-conformance");
    Status st = dir.status();
    if (st.ok()) {
      s->dir = std::move(*dir);
      st = s3test::MakeCertificates(s->dir.path(), "ca", "IP:127.0.0.1");
    }
    if (st.ok()) {
      Result<std::unique_ptr<s3test::TlsS3rver>> server = s3test::TlsS3rver::Start(
          s->dir.path() / "ca-server.key", s->dir.path() / "ca-server.pem", s->dir.path());
      st = server.status();
      if (st.ok()) s->server = std::move(server).value();
    }
    if (!st.ok()) {
      std::cerr << "cannot start s3rver over TLS: " << st.ToString() << "\n";
      return nullptr;
    }
    return s;
  }();
  return shared.get();
}

std::unique_ptr<Backend> MakeS3TlsForConformance() {
  SharedTlsServer* tls = TlsServerForConformance();
  if (tls == nullptr) return nullptr;
  S3Options o = OptionsFor("https://127.0.0.1:" + std::to_string(tls->server->port()),
                           std::string(s3test::kTlsBucket), UniquePrefix("conformance-tls"));
  o.ca_file = (tls->dir.path() / "ca.pem").string();
  return MustOpenRetrying(std::move(o), FastRetry(8));
}

INSTANTIATE_TEST_SUITE_P(S3, BackendConformanceTest,
                         ::testing::Values(BackendFactory{"s3", MakeS3ForConformance},
                                           BackendFactory{"s3_tls", MakeS3TlsForConformance}));

// ------------------------------------------------------------ features

class S3BackendTest : public s3test::S3rverTest {
 protected:
  std::unique_ptr<RetryingBackend> Open(std::string prefix = "repo") {
    return MustOpenRetrying(OptionsFor(s3(), std::move(prefix)));
  }

  testing::RunResult Aws(const std::vector<std::string>& args) {
    testing::RunOptions options;
    options.env = s3().AwsEnv();
    options.timeout = std::chrono::seconds(120);
    Result<testing::RunResult> r = testing::RunCommand(s3().AwsCommand(args), options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : testing::RunResult{};
  }

  std::map<std::string, uint64_t> ListAll(Backend* b, std::string_view prefix) {
    std::map<std::string, uint64_t> out;
    Status st = b->List(prefix, [&](const ObjectInfo& o) {
      EXPECT_FALSE(out.contains(o.name)) << "listed twice: " << o.name;
      out[o.name] = o.size;
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
};

TEST_F(S3BackendTest, MultipartUploadOfALargeObject) {
  S3Options o = OptionsFor(s3(), "repo");
  o.multipart_threshold = 6 << 20;
  o.part_size = 5 << 20;
  std::unique_ptr<S3Backend> b = MustOpen(o);
  ASSERT_NE(b, nullptr);
  Bytes data = RandomData((17 << 20) + 12345, 7);
  ASSERT_TRUE(b->Put("data/ab/big", data).ok());
  S3Backend::Stats stats = b->stats();
  EXPECT_EQ(stats.multipart_uploads, 1u);
  EXPECT_EQ(stats.parts_uploaded, 4u);  // 5 + 5 + 5 + 2 MiB

  Result<Bytes> got = b->Get("data/ab/big");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  // A range across the first part boundary.
  Result<Bytes> range = b->GetRange("data/ab/big", (5 << 20) - 100, 200);
  ASSERT_TRUE(range.ok());
  EXPECT_TRUE(std::equal(range->begin(), range->end(), data.begin() + (5 << 20) - 100));
  Result<ObjectInfo> info = b->Stat("data/ab/big");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, data.size());
  // The AWS CLI sees one object of that size.
  testing::RunResult head = Aws({"s3api", "head-object", "--bucket", s3().bucket(), "--key",
                                 "repo/data/ab/big", "--query", "ContentLength"});
  ASSERT_TRUE(head.ok()) << head.Describe();
  EXPECT_EQ(std::stoull(head.out), data.size());
}

TEST_F(S3BackendTest, DefaultMultipartThresholdIs64MiB) {
  std::unique_ptr<S3Backend> b = MustOpen(OptionsFor(s3(), "repo"));
  ASSERT_NE(b, nullptr);
  Bytes at = RandomData(64 << 20, 1);
  ASSERT_TRUE(b->Put("data/at-threshold", at).ok());
  EXPECT_EQ(b->stats().multipart_uploads, 0u);
  Bytes above = RandomData((64 << 20) + 1, 2);
  ASSERT_TRUE(b->Put("data/above-threshold", above).ok());
  EXPECT_EQ(b->stats().multipart_uploads, 1u);
  EXPECT_EQ(b->stats().parts_uploaded, 5u);  // 4 × 16 MiB + 1 byte
  Result<Bytes> got = b->Get("data/above-threshold");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == above);
}

TEST_F(S3BackendTest, ListingOfMoreThan1000ObjectsFollowsContinuationTokens) {
  std::unique_ptr<RetryingBackend> b = Open();
  ASSERT_NE(b, nullptr);
  constexpr int kObjects = 2600;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kObjects; i += 8) {
        char name[64];
        std::snprintf(name, sizeof(name), "data/%02x/obj%05d", i % 256, i);
        if (!b->Put(name, Bytes(static_cast<size_t>(i % 7))).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(b->Put("index/i1", Bytes(3)).ok());
  // Another repository next door must not leak into this one's listing.
  std::unique_ptr<RetryingBackend> neighbour = Open("repo-2");
  ASSERT_TRUE(neighbour->Put("data/00/x", Bytes(1)).ok());

  auto* s3 = dynamic_cast<S3Backend*>(b->inner());
  uint64_t before = s3->stats().requests;
  std::map<std::string, uint64_t> all = ListAll(b.get(), "data/");
  EXPECT_EQ(all.size(), static_cast<size_t>(kObjects));
  EXPECT_GE(s3->stats().requests - before, 3u) << "2600 keys need at least 3 pages";
  EXPECT_EQ(all["data/0a/obj00010"], 3u);
  EXPECT_EQ(ListAll(b.get(), "").size(), static_cast<size_t>(kObjects) + 1);
  EXPECT_EQ(ListAll(b.get(), "data/0a/").size(), static_cast<size_t>((kObjects + 255) / 256));
  EXPECT_EQ(ListAll(b.get(), "index/").size(), 1u);
  EXPECT_TRUE(ListAll(b.get(), "snapshots/").empty());

  // Resuming after a name visits only what follows, in order.
  std::vector<std::string> after;
  ASSERT_TRUE(dynamic_cast<ResumableList*>(s3)
                  ->ListAfter("data/", "data/ff/obj02549",
                              [&](const ObjectInfo& o) {
                                after.push_back(o.name);
                                return Status::Ok();
                              })
                  .ok());
  EXPECT_TRUE(std::is_sorted(after.begin(), after.end()));
  for (const std::string& n : after) EXPECT_GT(n, "data/ff/obj02549");
  EXPECT_EQ(after.size(), 0u + std::count_if(all.begin(), all.end(), [](const auto& kv) {
                            return kv.first > "data/ff/obj02549";
                          }));
}

TEST_F(S3BackendTest, KeysWithSpacesUnicodeAndReservedCharactersWork) {
  std::unique_ptr<RetryingBackend> b = Open("repo with space");
  ASSERT_NE(b, nullptr);
  const std::vector<std::string> names = {
      "dir with spaces/file name.bin",
      "\xC3\xBCn\xC3\xAF\x63\xC3\xB8\x64\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC/\xD0\xBA\xD0\xBB\xD1\x8E"
      "\xD1\x87",
      "plus+equals=amp&more",
      "quote'paren(s)star*bang!dollar$comma,semi;colon:at@",
      "tilde~/percent%20literal",
      "hash#question?bracket[x]",
  };
  for (size_t i = 0; i < names.size(); ++i) {
    Bytes data = RandomData(1000 + i, i);
    ASSERT_TRUE(b->Put(names[i], data).ok()) << names[i];
    Result<Bytes> got = b->Get(names[i]);
    ASSERT_TRUE(got.ok()) << names[i] << ": " << got.status().ToString();
    EXPECT_TRUE(*got == data) << names[i];
    Result<ObjectInfo> st = b->Stat(names[i]);
    ASSERT_TRUE(st.ok()) << names[i];
    EXPECT_EQ(st->size, data.size());
    Result<Bytes> range = b->GetRange(names[i], 10, 20);
    ASSERT_TRUE(range.ok()) << names[i];
  }
  std::map<std::string, uint64_t> listed = ListAll(b.get(), "");
  EXPECT_EQ(listed.size(), names.size());
  for (const std::string& n : names) EXPECT_TRUE(listed.contains(n)) << n;
  // Listing by a prefix with a space and by a unicode prefix.
  EXPECT_EQ(ListAll(b.get(), "dir with ").size(), 1u);
  EXPECT_EQ(ListAll(b.get(), "\xC3\xBCn").size(), 1u);

  // The keys are the same to an independent client.
  testing::RunResult ls =
      Aws({"s3", "ls", "--recursive", "s3://" + s3().bucket() + "/repo with space/"});
  ASSERT_TRUE(ls.ok()) << ls.Describe();
  for (const std::string& n : names) {
    EXPECT_NE(ls.out.find("repo with space/" + n), std::string::npos) << n << "\n" << ls.out;
  }
  for (const std::string& n : names) ASSERT_TRUE(b->Delete(n).ok()) << n;
  EXPECT_TRUE(ListAll(b.get(), "").empty());
}

TEST_F(S3BackendTest, ObjectsAreSharedWithTheAwsCli) {
  std::unique_ptr<RetryingBackend> b = Open("shared");
  ASSERT_NE(b, nullptr);
  Bytes data = RandomData(300000, 3);
  ASSERT_TRUE(b->Put("snapshots/s1", data).ok());
  ASSERT_TRUE(b->Put("config", AsBytes("cfg")).ok());

  testing::RunResult ls = Aws({"s3", "ls", "--recursive", "s3://" + s3().bucket() + "/shared/"});
  ASSERT_TRUE(ls.ok()) << ls.Describe();
  EXPECT_NE(ls.out.find("300000 shared/snapshots/s1"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("3 shared/config"), std::string::npos) << ls.out;

  // Downloaded by the CLI: identical bytes.
  Result<testing::TempDir> tmp = testing::TempDir::Create("s3-cli");
  ASSERT_TRUE(tmp.ok());
  std::string copy = (tmp->path() / "s1").string();
  testing::RunResult cp = Aws(
      {"s3", "cp", "--only-show-errors", "s3://" + s3().bucket() + "/shared/snapshots/s1", copy});
  ASSERT_TRUE(cp.ok()) << cp.Describe();
  Result<std::string> text = testing::ReadFile(copy);
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(Bytes(text->begin(), text->end()) == data);

  // Uploaded by the CLI: readable by the backend.
  ASSERT_TRUE(testing::WriteFile(tmp->path() / "up", "from the cli").ok());
  cp = Aws({"s3", "cp", "--only-show-errors", (tmp->path() / "up").string(),
            "s3://" + s3().bucket() + "/shared/index/from cli"});
  ASSERT_TRUE(cp.ok()) << cp.Describe();
  Result<Bytes> got = b->Get("index/from cli");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsChars(*got), "from the cli");
}

TEST_F(S3BackendTest, ShortObjectsAndMissingObjectsFollowTheContract) {
  std::unique_ptr<RetryingBackend> b = Open();
  ASSERT_TRUE(b->Put("data/r", RandomData(5000, 1)).ok());
  Result<Bytes> past = b->GetRange("data/r", 6000, 10);  // 416 from the server
  EXPECT_EQ(past.status().code(), Code::kCorruption);
  EXPECT_NE(past.status().message().find("shorter than expected"), std::string::npos)
      << past.status().message();
  Result<Bytes> tail = b->GetRange("data/r", 4990, 11);  // 206 with 10 bytes
  EXPECT_EQ(tail.status().code(), Code::kCorruption);
  EXPECT_NE(tail.status().message().find("object ends at 5000"), std::string::npos)
      << tail.status().message();
  EXPECT_TRUE(b->GetRange("data/r", 5000, 0).ok());
  EXPECT_EQ(b->GetRange("data/r", 5001, 0).status().code(), Code::kCorruption);
  Result<Bytes> missing = b->Get("data/none");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("404 NoSuchKey"), std::string::npos)
      << missing.status().message();
  EXPECT_EQ(b->GetRange("data/none", 0, 0).status().code(), Code::kNotFound);
  EXPECT_TRUE(b->Delete("data/none").ok());
  EXPECT_EQ(b->retries(), 0u) << "nothing above is retryable";
}

TEST_F(S3BackendTest, GetRangeIntoReusesTheCallersBuffer) {
  std::unique_ptr<RetryingBackend> b = Open();
  Bytes data = RandomData(4 << 20, 8);
  ASSERT_TRUE(b->Put("data/44/pack", data).ok());
  Bytes buffer;
  ASSERT_TRUE(b->GetRangeInto("data/44/pack", 1 << 20, 1 << 20, &buffer).ok());
  EXPECT_TRUE(std::equal(buffer.begin(), buffer.end(), data.begin() + (1 << 20)));
  const uint8_t* allocation = buffer.data();
  ASSERT_TRUE(b->GetRangeInto("data/44/pack", 3 << 20, 1 << 20, &buffer).ok());
  EXPECT_TRUE(std::equal(buffer.begin(), buffer.end(), data.begin() + (3 << 20)));
  EXPECT_EQ(buffer.data(), allocation) << "the second read reused the first one's allocation";
  ASSERT_TRUE(b->GetRangeInto("data/44/pack", 100, 10, &buffer).ok());
  EXPECT_EQ(buffer.size(), 10u);
  EXPECT_EQ(b->GetRangeInto("data/44/pack", (4 << 20) - 5, 10, &buffer).code(), Code::kCorruption);
}

TEST_F(S3BackendTest, AWrongAccessKeyIsOneClearPermissionDeniedNotRetried) {
  S3Options o = OptionsFor(s3(), "repo");
  o.credentials.access_key_id = "WRONGKEY";
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(o);
  ASSERT_NE(b, nullptr);
  Status st = b->Put("config", AsBytes("x"));
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_FALSE(st.IsRetryable());
  EXPECT_EQ(st.message(), "s3 PUT s3://" + s3().bucket() + "/repo/config at " + s3().endpoint() +
                              ": 403 InvalidAccessKeyId: The AWS Access Key Id you provided does "
                              "not exist in our records.");
  EXPECT_EQ(b->retries(), 0u);
  EXPECT_EQ(st.message().find("S3RVER"), std::string::npos) << "no secret in messages";
}

TEST_F(S3BackendTest, AMissingBucketIsNotFoundNamingIt) {
  S3Options o = OptionsFor(s3().endpoint(), "no-such-bucket", "repo");
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(o);
  Status st = b->List("", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("s3 LIST s3://no-such-bucket/repo/ at " + s3().endpoint() +
                              ": 404 NoSuchBucket"),
            std::string::npos)
      << st.message();
}

TEST_F(S3BackendTest, OpenBackendComposesRetryingS3) {
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  BackendOptions options;
  options.s3_endpoint = s3().endpoint();
  Result<std::unique_ptr<Backend>> b =
      OpenBackend("s3://" + s3().bucket() + "/via-open-backend/", options, true);
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE((*b)->Put("config", AsBytes("hello")).ok());
  EXPECT_TRUE(std::filesystem::exists(s3().ObjectPath("via-open-backend/config")));
  Status probe = ProbeBackend(b->get());
  EXPECT_TRUE(probe.ok()) << probe.ToString();
}

// ------------------------------------------------------------ probe

TEST_F(S3BackendTest, ProbeSucceedsAndLeavesNothing) {
  std::unique_ptr<RetryingBackend> b = Open("probed");
  Status st = ProbeBackend(b.get());
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(ListAll(b.get(), "").empty());
}

TEST_F(S3BackendTest, ProbeOfAStoppedServerSaysItIsUnreachable) {
  std::unique_ptr<RetryingBackend> b = MustOpenRetrying(OptionsFor(s3(), "probed"), FastRetry(3));
  s3().Stop();
  Status st = ProbeBackend(b.get());
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("probe of s3://" + s3().bucket() + "/probed at " + s3().endpoint() +
                              ": step 1/6 (write probe/"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("connect failed: Connection refused"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("gave up after 3 attempts"), std::string::npos) << st.message();
}

TEST_F(S3BackendTest, ProbeOfAWrongBucketOrKeyIsClear) {
  std::unique_ptr<RetryingBackend> wrong_bucket =
      MustOpenRetrying(OptionsFor(s3().endpoint(), "typo-bucket", "repo"));
  Status st = ProbeBackend(wrong_bucket.get());
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("step 1/6 (write probe/"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("404 NoSuchBucket: The specified bucket does not exist"),
            std::string::npos)
      << st.message();

  S3Options o = OptionsFor(s3(), "repo");
  o.credentials.access_key_id = "NOTAKEY";
  std::unique_ptr<RetryingBackend> wrong_key = MustOpenRetrying(o);
  st = ProbeBackend(wrong_key.get());
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("403 InvalidAccessKeyId"), std::string::npos) << st.message();
  EXPECT_EQ(wrong_key->retries(), 0u);
}

// ------------------------------------------------------------ throughput

TEST_F(S3BackendTest, ThroughputOf16MiBObjectsWith4Threads) {
  std::unique_ptr<RetryingBackend> b = Open("throughput");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 8;
  constexpr size_t kSize = 16 << 20;
  std::vector<Bytes> data;
  for (int t = 0; t < kThreads; ++t) data.push_back(RandomData(kSize, 100 + t));
  auto run = [&](auto&& body) {
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          if (!body(t, i)) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return kThreads * kPerThread * kSize / seconds / (1 << 20);
  };
  auto name = [](int t, int i) { return "data/t" + std::to_string(t) + "/" + std::to_string(i); };
  double put = run([&](int t, int i) { return b->Put(name(t, i), data[t]).ok(); });
  double get = run([&](int t, int i) {
    Result<Bytes> got = b->Get(name(t, i));
    return got.ok() && got->size() == kSize && (*got)[12345] == data[t][12345];
  });
  auto* s3 = dynamic_cast<S3Backend*>(b->inner());
  std::cout << "[throughput] s3rver, " << kThreads << " threads, " << kThreads * kPerThread
            << " objects of 16 MiB: PUT " << static_cast<int>(put) << " MiB/s, GET "
            << static_cast<int>(get) << " MiB/s, " << s3->stats().connections_opened
            << " connections for " << s3->stats().requests << " requests\n";
  EXPECT_LE(s3->stats().connections_opened, 8u) << "connections are kept alive and reused";
  RecordProperty("put_mib_per_s", static_cast<int>(put));
  RecordProperty("get_mib_per_s", static_cast<int>(get));
}

}  // namespace
}  // namespace bunker::backend
