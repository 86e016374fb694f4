// bunker-agent end to end on a real s3rver bucket (tests/harness): every verb
// through s3:// URLs, the objects seen by the AWS CLI (Debian awscli), and a
// server killed and restarted in the middle of a backup.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/s3_server.h"
#include "tests/integration/nfs/remote_cli_scenario.h"

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "backups/cluster-a";
constexpr std::string_view kObjectSuffix = "._S3rver_object";

class S3CliTest : public RemoteRepoCliTest {
 protected:
  void SetUp() override {
    RemoteRepoCliTest::SetUp();
    Result<std::unique_ptr<S3Server>> server = S3Server::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    s3_ = std::move(server).value();
  }

  void TearDown() override {
    if (s3_ != nullptr && HasFailure()) {
      std::cerr << "[harness] s3rver log after a failure:\n" << s3_->LogTail() << "\n";
    }
    s3_.reset();
  }

  std::vector<std::string> RepoArgs() const override {
    return {"--repo",        "s3://" + s3_->bucket() + "/" + std::string(kPrefix),
            "--s3-endpoint", s3_->endpoint(),
            "--s3-region",   s3_->region()};
  }

  EnvChanges RepoEnv() const override {
    return {"AWS_ACCESS_KEY_ID=" + s3_->access_key(), "AWS_SECRET_ACCESS_KEY=" + s3_->secret_key(),
            "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE"};
  }

  // `aws s3 ls --recursive s3://BUCKET/PREFIX/`: lines "DATE TIME SIZE KEY"
  // (keys have no spaces here).
  std::vector<std::string> ListWithIndependentClient() override {
    RunOptions options;
    options.env = s3_->AwsEnv();
    const std::string root = std::string(kPrefix) + "/";
    Result<RunResult> r = RunCommand(
        s3_->AwsCommand({"s3", "ls", "--recursive", "s3://" + s3_->bucket() + "/" + root}),
        options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->ok()) << r->Describe();
    std::vector<std::string> names;
    for (const std::string& line : Lines(r->out)) {
      std::string key = line.substr(line.find_last_of(' ') + 1);
      EXPECT_EQ(key.rfind(root, 0), 0u) << line;
      names.push_back(key.substr(std::min(root.size(), key.size())));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // s3rver keeps an object KEY as <data>/<bucket>/KEY._S3rver_object.
  size_t PacksOnServer() override {
    size_t n = 0;
    for (const std::string& name : ObjectNames(s3_->data_dir() / s3_->bucket() / kPrefix, "data")) {
      if (name.ends_with(kObjectSuffix)) ++n;
    }
    return n;
  }

  std::string ServerAddress() const override { return "127.0.0.1:" + std::to_string(s3_->port()); }
  void KillServer() override { s3_->Kill(); }
  Status RestartServer() override { return s3_->Restart(); }

  std::unique_ptr<S3Server> s3_;
};

TEST_F(S3CliTest, EveryVerbWorksOnAnS3Bucket) { RunLifecycle(); }

TEST_F(S3CliTest, ServerKilledAndRestartedMidBackup) { RunServerKilledMidBackup(); }

}  // namespace
}  // namespace bunker::testing
