#pragma once

// GoogleTest fixtures that give each test its own real server:
//
//   class NfsBackendTest : public bunker::testing::NfsServerTest {};
//   TEST_F(NfsBackendTest, WritesAPack) { … nfs().Url("repo") … }
//
// SetUp() starts the server (the test fails with the server's log if it does
// not come up); TearDown() prints the log tail when the test failed, then
// stops the server and removes its directory.
//
// Note for code inside namespace bunker: `testing::` there means
// bunker::testing; write `::testing::` for GoogleTest's namespace.

#include <gtest/gtest.h>

#include <iostream>
#include <memory>

#include "tests/harness/nfs_server.h"
#include "tests/harness/s3_server.h"

namespace bunker::testing {

class NfsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<NfsServer>> server = NfsServer::Start(nfs_options_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    nfs_ = std::move(server).value();
  }

  void TearDown() override {
    if (nfs_ != nullptr && HasFailure()) {
      std::cerr << "[harness] nfs-ganesha log after a failure:\n" << nfs_->LogTail() << "\n";
    }
    nfs_.reset();
  }

  NfsServer& nfs() { return *nfs_; }

  NfsServerOptions nfs_options_;  // change in the derived constructor
  std::unique_ptr<NfsServer> nfs_;
};

class S3ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<S3Server>> server = S3Server::Start(s3_options_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    s3_ = std::move(server).value();
  }

  void TearDown() override {
    if (s3_ != nullptr && HasFailure()) {
      std::cerr << "[harness] s3rver log after a failure:\n" << s3_->LogTail() << "\n";
    }
    s3_.reset();
  }

  S3Server& s3() { return *s3_; }

  S3ServerOptions s3_options_;  // change in the derived constructor
  std::unique_ptr<S3Server> s3_;
};

}  // namespace bunker::testing
