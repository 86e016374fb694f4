// End to end in C++: a repository initialised in an s3rver bucket through
// OpenBackend (Retrying(S3)), a block volume backed up into it and restored
// from it byte for byte, then the repository opened again by a fresh
// backend, as another node would.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nodeagent/core/mover/block_backup.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"
#include "tests/harness/fixtures.h"
#include "tests/integration/s3/s3_test_util.h"

namespace bunker::backend {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kPassword = "correct horse battery staple";

class S3RepositoryTest : public s3test::S3rverTest {
 protected:
  void SetUp() override {
    S3rverTest::SetUp();
    ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    Result<testing::TempDir> tmp = testing::TempDir::Create("s3-repo");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::move(*tmp);
  }
  void TearDown() override {
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    S3rverTest::TearDown();
  }

  Result<std::unique_ptr<Backend>> OpenS3() {
    BackendOptions options;
    options.s3_endpoint = s3().endpoint();
    options.retry_max_attempts = 4;
    return OpenBackend("s3://" + s3().bucket() + "/clusters/prod", options, true);
  }

  testing::TempDir tmp_;
};

TEST_F(S3RepositoryTest, InitBackupRestoreAndReopenThroughS3) {
  Result<std::unique_ptr<Backend>> b = OpenS3();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  repo::InitOptions init;
  init.kdf = repo::KdfParams{1024, 8, 1};
  Status st = repo::Repository::Init(b->get(), kPassword, init);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(repo::Repository::Init(b->get(), kPassword, init).code(), Code::kAlreadyExists);

  // A 24 MiB volume: random data, a hole, repeated blocks.
  fs::path volume = tmp_.path() / "volume.img";
  Bytes image = s3test::RandomData(24 << 20, 9);
  std::fill(image.begin() + (4 << 20), image.begin() + (9 << 20), 0);
  std::copy(image.begin(), image.begin() + (1 << 20), image.begin() + (20 << 20));
  {
    std::ofstream out(volume, std::ios::binary);
    out.write(reinterpret_cast<const char*>(image.data()),
              static_cast<std::streamsize>(image.size()));
  }

  Result<std::unique_ptr<repo::Repository>> r = repo::Repository::Open(std::move(*b), kPassword);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE((*r)->LoadIndex().ok());
  repo::LeaseOptions lo;
  lo.settle = std::chrono::milliseconds(1);
  Result<std::unique_ptr<repo::Lease>> lease =
      repo::Lease::Acquire(r->get(), false, "s3 integration test", lo);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  mover::BlockBackupOptions bo;
  bo.volume_path = volume.string();
  bo.volume_id = "pvc-1";
  Result<mover::BackupResult> backup = mover::BackupBlockVolume(r->get(), lease->get(), bo);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  ASSERT_TRUE((*lease)->Release().ok());

  // Another node: a fresh backend and repository object.
  Result<std::unique_ptr<Backend>> b2 = OpenS3();
  ASSERT_TRUE(b2.ok());
  Result<std::unique_ptr<repo::Repository>> r2 = repo::Repository::Open(std::move(*b2), kPassword);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_TRUE((*r2)->LoadIndex().ok());
  Result<repo::SnapshotRef> snap = (*r2)->FindSnapshot("latest", "pvc-1");
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  mover::BlockRestoreOptions ro;
  ro.target = (tmp_.path() / "restored.img").string();
  Result<mover::RestoreResult> restore = mover::RestoreBlockVolume(r2->get(), snap->snapshot, ro);
  ASSERT_TRUE(restore.ok()) << restore.status().ToString();
  Result<std::string> restored = testing::ReadFile(tmp_.path() / "restored.img");
  ASSERT_TRUE(restored.ok());
  ASSERT_EQ(restored->size(), image.size());
  EXPECT_TRUE(
      std::equal(image.begin(), image.end(), reinterpret_cast<const uint8_t*>(restored->data())))
      << "restored volume differs";

  // A wrong password is PermissionDenied, through S3 as through a directory.
  Result<std::unique_ptr<Backend>> b3 = OpenS3();
  ASSERT_TRUE(b3.ok());
  EXPECT_EQ(repo::Repository::Open(std::move(*b3), "wrong").status().code(),
            Code::kPermissionDenied);
}

}  // namespace
}  // namespace bunker::backend
