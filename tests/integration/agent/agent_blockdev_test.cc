// bunker-agent on real block devices: loop devices over backing files, so the
// agent sees what it sees on a node (S_ISBLK, a size from the device, O_DIRECT
// reads chosen automatically). Backup from one device, restore to another
// that holds other data (its zero regions must be zeroed, not skipped), an
// incremental after writes through the device, and the refusal to overwrite
// a device without --overwrite. Skipped with the reason where loop devices
// cannot be attached (not root, or a container without them).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/agent/agent_test_util.h"
#include "tests/unit/io/io_test_util.h"  // LoopDevice

namespace bunker::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Writes `bytes` at `offset` of a device, durably, through the page cache of
// the device node (what a file system on it would do).
void WriteAt(const std::string& device, uint64_t offset, const std::string& bytes) {
  int fd = ::open(device.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << device;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
}

class AgentBlockDeviceTest : public AgentTest {};

TEST_F(AgentBlockDeviceTest, BackupAndRestoreBetweenLoopDevices) {
  // 24 MiB: random, text and zero regions; a device size is a multiple of
  // 512 bytes, so the last chunk is partial but sector-aligned.
  const std::vector<Region> regions = {
      Random(1), Text(2),    Zero(),     Random(3), Zero(),     Text(4),
      Random(5), Zero(),     Zero(),     Random(6), Text(7),    Zero(),
      Random(8), Text(9),    Random(10), Zero(),    Random(11), Text(12),
      Zero(),    Random(13), Text(14),   Zero(),    Random(15), Text(16, 512 * 700)};
  const fs::path source_file = dir() / "source.img";
  const fs::path target_file = dir() / "target.img";
  ASSERT_NO_FATAL_FAILURE(WriteImage(source_file, regions));
  const fs::path original = dir() / "original.img";  // the source as the full backup saw it
  fs::copy_file(source_file, original);
  const uint64_t size = fs::file_size(source_file);
  ASSERT_EQ(size % 512, 0u);
  // The target device starts full of other data: a restore must zero the
  // source's zero regions on a device (it cannot leave holes there).
  ASSERT_TRUE(WriteFile(target_file, std::string(size, '\xab')).ok());

  std::string why;
  auto src = io::test::LoopDevice::Attach(source_file.string(), &why);
  if (!src) GTEST_SKIP() << why;
  auto dst = io::test::LoopDevice::Attach(target_file.string(), &why);
  if (!dst) GTEST_SKIP() << why;
  ASSERT_NO_FATAL_FAILURE(Init(repo_));

  std::optional<json> full = Backup(repo_, src->device(), "pvc-dev");
  ASSERT_TRUE(full);
  EXPECT_EQ((*full)["kind"], "full");
  EXPECT_EQ((*full)["size"], size);
  EXPECT_EQ((*full)["stats"]["bytes_hole"], 8 * kMiB);

  // An existing device is not overwritten without --overwrite.
  RunResult refused = InRepo(
      {"restore", "--snapshot", "latest", "--volume-id", "pvc-dev", "--target", dst->device()});
  EXPECT_NE(refused.exit_code, 0) << refused.Describe();
  EXPECT_NE(refused.err.find(dst->device()), std::string::npos) << refused.Describe();
  EXPECT_NE(refused.err.find("--overwrite"), std::string::npos) << refused.Describe();

  RunResult r = InRepo({"restore", "--snapshot", "latest", "--volume-id", "pvc-dev", "--target",
                        dst->device(), "--overwrite", "--json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(CompareFiles(source_file, target_file), "")
      << "the restored device differs from the source device";

  // Writes through the source device, then an incremental of the device.
  const std::string changed(64 * 1024, '\x5c');
  ASSERT_NO_FATAL_FAILURE(WriteAt(src->device(), 3 * kMiB + 4096, changed));
  ASSERT_NO_FATAL_FAILURE(WriteAt(src->device(), 17 * kMiB, changed));
  std::optional<json> inc = Backup(repo_, src->device(), "pvc-dev");
  ASSERT_TRUE(inc);
  EXPECT_EQ((*inc)["kind"], "incremental");
  EXPECT_EQ((*inc)["parent"], (*full)["id"]);
  EXPECT_EQ((*inc)["stats"]["bytes_new"], 2 * kMiB) << inc->dump(2);

  r = InRepo({"restore", "--snapshot", "latest", "--volume-id", "pvc-dev", "--target",
              dst->device(), "--overwrite"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(CompareFiles(source_file, target_file), "")
      << "the device restored from the incremental differs from the source";
  // The full backup still restores as the source was (into a file this time).
  EXPECT_EQ(RestoreAndCompare(repo_, (*full)["id"], original), "");
}

}  // namespace
}  // namespace bunker::testing
