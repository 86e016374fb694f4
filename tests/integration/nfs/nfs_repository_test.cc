// End to end through the NFS backend: a repository on a real nfs-ganesha
// export, a block backup of a 64 MiB image, a byte-identical restore, and a
// check that reads back every pack.

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/mover/block_backup.h"
#include "nodeagent/core/mover/maintenance.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"
#include "tests/harness/fixtures.h"
#include "tests/harness/temp_dir.h"

namespace bunker {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kPassword = "nfs end to end";

// 64 MiB: random 1 MiB blocks, all-zero blocks (holes), and repeated blocks
// (deduplicated), in a fixed pattern.
std::string MakeImage(const fs::path& path) {
  constexpr size_t kBlock = 1 << 20;
  std::string image;
  image.reserve(64 * kBlock);
  uint64_t x = 0x0123456789abcdefull;
  std::string repeated;
  for (int i = 0; i < 64; ++i) {
    std::string block(kBlock, '\0');
    if (i % 8 == 3) {
      // hole
    } else if (i % 8 == 5 && !repeated.empty()) {
      block = repeated;
    } else {
      for (size_t j = 0; j < kBlock; j += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(block.data() + j, &x, 8);
      }
      if (repeated.empty()) {
        repeated = block;
      }
    }
    image += block;
  }
  EXPECT_TRUE(testing::WriteFile(path, image).ok());
  return image;
}

class NfsRepositoryTest : public testing::NfsServerTest {};

TEST_F(NfsRepositoryTest, BlockBackupRestoresByteIdenticalAndChecksHealthy) {
  Result<testing::TempDir> tmp = testing::TempDir::Create("nfs-e2e");
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
  const fs::path image_path = tmp->path() / "volume.img";
  const std::string image = MakeImage(image_path);

  const std::string url = nfs().Url("backups/cluster-a");
  {
    Result<std::unique_ptr<backend::Backend>> b = backend::OpenBackend(url, {}, true);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    repo::InitOptions init;
    init.kdf.n = 1024;
    Status st = repo::Repository::Init(b->get(), kPassword, init);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  Result<std::unique_ptr<backend::Backend>> b = backend::OpenBackend(url, {}, false);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Result<std::unique_ptr<repo::Repository>> opened =
      repo::Repository::Open(std::move(b).value(), kPassword);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<repo::Repository> repository = std::move(opened).value();
  ASSERT_TRUE(repository->LoadIndex().ok());

  mover::BackupResult backup;
  {
    repo::LeaseOptions lo;
    lo.settle = std::chrono::milliseconds(1);
    Result<std::unique_ptr<repo::Lease>> lease =
        repo::Lease::Acquire(repository.get(), false, "nfs end-to-end test", lo);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    mover::BlockBackupOptions o;
    o.volume_path = image_path.string();
    o.volume_id = "pvc-nfs";
    const auto t0 = Clock::now();
    Result<mover::BackupResult> r = mover::BackupBlockVolume(repository.get(), lease->get(), o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::cout << "[info] backup of 64 MiB through NFS: "
              << std::chrono::duration<double>(Clock::now() - t0).count() << " s\n";
    backup = std::move(r).value();
  }
  EXPECT_EQ(backup.snapshot.size, image.size());

  // The repository's objects are files in the export on the server's disk.
  const fs::path on_disk = nfs().export_dir() / "backups/cluster-a";
  EXPECT_TRUE(fs::is_regular_file(on_disk / "config"));
  EXPECT_TRUE(fs::is_directory(on_disk / "data"));
  EXPECT_TRUE(fs::is_directory(on_disk / "snapshots"));

  const fs::path restored = tmp->path() / "restored.img";
  mover::BlockRestoreOptions ro;
  ro.target = restored.string();
  const auto t0 = Clock::now();
  Result<mover::RestoreResult> rr =
      mover::RestoreBlockVolume(repository.get(), backup.snapshot, ro);
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  std::cout << "[info] restore of 64 MiB through NFS: "
            << std::chrono::duration<double>(Clock::now() - t0).count() << " s\n";
  Result<std::string> back = testing::ReadFile(restored);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), image.size());
  EXPECT_TRUE(*back == image) << "restored image differs";

  mover::CheckOptions co;
  co.read_data = true;
  Result<mover::CheckReport> check = mover::Check(repository.get(), co);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_TRUE(check->healthy());
  for (const auto& p : check->problems) {
    ADD_FAILURE() << p.kind << " " << p.object << ": " << p.detail;
  }
  EXPECT_EQ(check->snapshots, 1u);
  EXPECT_GT(check->packs_read, 0u);
  EXPECT_EQ(check->packs_read, check->packs);
}

}  // namespace
}  // namespace bunker
