#pragma once

// The Backend conformance suite: every backend (file, NFS, S3, …) must pass
// it. Instantiate with a factory that returns a fresh, empty backend:
//
//   INSTANTIATE_TEST_SUITE_P(File, BackendConformanceTest,
//                            ::testing::Values(BackendFactory{"file", MakeFile}));

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "nodeagent/core/backend/backend.h"

namespace bunker::backend {

struct BackendFactory {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};

inline std::ostream& operator<<(std::ostream& os, const BackendFactory& f) { return os << f.name; }

class BackendConformanceTest : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    ASSERT_NE(backend_, nullptr);
  }

  std::map<std::string, uint64_t> ListAll(std::string_view prefix) {
    std::map<std::string, uint64_t> out;
    Status st = backend_->List(prefix, [&](const ObjectInfo& info) {
      EXPECT_FALSE(out.contains(info.name)) << "listed twice: " << info.name;
      out[info.name] = info.size;
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  std::unique_ptr<Backend> backend_;
};

inline Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 31);
  return b;
}

TEST_P(BackendConformanceTest, PutGetRoundTrip) {
  Bytes data = Pattern(100000, 1);
  ASSERT_TRUE(backend_->Put("data/ab/abcdef", data).ok());
  Result<Bytes> got = backend_->Get("data/ab/abcdef");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, data);
  Result<ObjectInfo> st = backend_->Stat("data/ab/abcdef");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, data.size());
}

TEST_P(BackendConformanceTest, EmptyObject) {
  ASSERT_TRUE(backend_->Put("keys/empty", {}).ok());
  Result<Bytes> got = backend_->Get("keys/empty");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST_P(BackendConformanceTest, PutOverwrites) {
  ASSERT_TRUE(backend_->Put("locks/l1", Pattern(10, 1)).ok());
  ASSERT_TRUE(backend_->Put("locks/l1", Pattern(20, 2)).ok());
  EXPECT_EQ(*backend_->Get("locks/l1"), Pattern(20, 2));
}

TEST_P(BackendConformanceTest, MissingObjectIsNotFound) {
  EXPECT_EQ(backend_->Get("index/nothing").status().code(), Code::kNotFound);
  EXPECT_EQ(backend_->Stat("index/nothing").status().code(), Code::kNotFound);
  EXPECT_EQ(backend_->GetRange("index/nothing", 0, 1).status().code(), Code::kNotFound);
}

TEST_P(BackendConformanceTest, GetRangeIsExactOrFails) {
  Bytes data = Pattern(5000, 3);
  ASSERT_TRUE(backend_->Put("data/00/r", data).ok());
  Result<Bytes> mid = backend_->GetRange("data/00/r", 1000, 1234);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(*mid, Bytes(data.begin() + 1000, data.begin() + 2234));
  Result<Bytes> tail = backend_->GetRange("data/00/r", 4990, 10);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 10u);
  EXPECT_FALSE(backend_->GetRange("data/00/r", 4990, 11).ok()) << "short read must fail";
}

TEST_P(BackendConformanceTest, DeleteIsIdempotent) {
  ASSERT_TRUE(backend_->Put("snapshots/s", Pattern(3, 0)).ok());
  EXPECT_TRUE(backend_->Delete("snapshots/s").ok());
  EXPECT_TRUE(backend_->Delete("snapshots/s").ok());
  EXPECT_EQ(backend_->Get("snapshots/s").status().code(), Code::kNotFound);
}

TEST_P(BackendConformanceTest, ListSeesEveryObjectUnderPrefixOnce) {
  for (int i = 0; i < 50; ++i) {
    std::string name = "data/" + std::to_string(i % 7) + "/obj" + std::to_string(i);
    ASSERT_TRUE(backend_->Put(name, Pattern(i, 0)).ok());
  }
  ASSERT_TRUE(backend_->Put("index/i1", Pattern(1, 0)).ok());
  auto data = ListAll("data/");
  EXPECT_EQ(data.size(), 50u);
  EXPECT_EQ(data["data/3/obj10"], 10u);
  auto index = ListAll("index/");
  EXPECT_EQ(index.size(), 1u);
  EXPECT_TRUE(ListAll("snapshots/").empty());
  EXPECT_EQ(ListAll("").size(), 51u);
}

TEST_P(BackendConformanceTest, ListErrorFromVisitorStopsTheListing) {
  ASSERT_TRUE(backend_->Put("index/a", Pattern(1, 0)).ok());
  ASSERT_TRUE(backend_->Put("index/b", Pattern(1, 0)).ok());
  Status st = backend_->List("index/", [](const ObjectInfo&) { return Aborted("stop"); });
  EXPECT_EQ(st.code(), Code::kAborted);
}

TEST_P(BackendConformanceTest, ConcurrentPutsAndGets) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string name = "data/c" + std::to_string(t) + "/o" + std::to_string(i);
        Bytes data = Pattern(4096 + i, static_cast<uint8_t>(t));
        if (!backend_->Put(name, data).ok()) ++failures;
        Result<Bytes> got = backend_->Get(name);
        if (!got.ok() || *got != data) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ListAll("data/").size(), 160u);
}

TEST_P(BackendConformanceTest, BadNamesAreRefused) {
  for (const char* name : {"", "/abs", "a/../b", "a//b", "trailing/"}) {
    EXPECT_FALSE(backend_->Put(name, Pattern(1, 0)).ok()) << name;
  }
}

}  // namespace bunker::backend
