#include "nodeagent/core/backend/file_backend.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "nodeagent/core/util/aligned_bytes.h"
#include "tests/unit/backend/backend_conformance.h"

namespace bunker::backend {
namespace {

namespace fs = std::filesystem;

std::vector<std::string>& Dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

std::string MakeTempDir() {
  char tmpl[] = "/tmp/bunker-backend-test.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return "";
  Dirs().push_back(tmpl);
  return tmpl;
}

std::unique_ptr<Backend> MakeFileBackend() {
  auto b = FileBackend::Open(MakeTempDir(), false);
  return b.ok() ? std::move(*b) : nullptr;
}

class CleanupEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& d : Dirs()) fs::remove_all(d);
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

INSTANTIATE_TEST_SUITE_P(File, BackendConformanceTest,
                         ::testing::Values(BackendFactory{"file", MakeFileBackend}));

TEST(FileBackendTest, MissingDirectoryIsNotFoundUnlessCreating) {
  std::string dir = MakeTempDir() + "/repo/nested";
  EXPECT_EQ(FileBackend::Open(dir, false).status().code(), Code::kNotFound);
  ASSERT_TRUE(FileBackend::Open(dir, true).ok());
  EXPECT_TRUE(fs::is_directory(dir));
}

TEST(FileBackendTest, ListingAMissingRootFailsInsteadOfLookingEmpty) {
  std::string dir = MakeTempDir();
  auto b = FileBackend::Open(dir, false);
  ASSERT_TRUE(b.ok());
  fs::remove_all(dir);
  Status st = (*b)->List("", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_FALSE(st.ok()) << "a vanished repository must not list as empty";
}

TEST(FileBackendTest, TemporaryFilesAreNeverListed) {
  std::string dir = MakeTempDir();
  auto b = FileBackend::Open(dir, false);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Put("data/aa/x", AsBytes("x")).ok());
  // What a writer killed before its rename leaves behind.
  FILE* f = std::fopen((dir + "/data/aa/.tmp-123-0-9").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  size_t n = 0;
  ASSERT_TRUE((*b)->List("data/",
                         [&](const ObjectInfo&) {
                           ++n;
                           return Status::Ok();
                         })
                  .ok());
  EXPECT_EQ(n, 1u);
}

TEST(FileBackendTest, ObjectsArePrivateToTheOwner) {
  std::string dir = MakeTempDir();
  auto b = FileBackend::Open(dir, false);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Put("keys/k", AsBytes("secret-ish")).ok());
  struct stat st;
  ASSERT_EQ(::stat((dir + "/keys/k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// Aligned buffers of at least 1 MiB take the O_DIRECT path for their aligned
// prefix and the page cache for the tail; unaligned ones are written buffered.
// Either way the object reads back exactly, on the temp directory's file
// system and on /dev/shm (tmpfs, which older kernels refuse O_DIRECT on: the
// fallback).
TEST(FileBackendTest, LargeAlignedAndUnalignedPutsReadBackExactly) {
  std::vector<std::string> roots = {MakeTempDir()};
  char shm[] = "/dev/shm/bunker-backend-test.XXXXXX";
  if (::mkdtemp(shm) != nullptr) {
    Dirs().push_back(shm);
    roots.push_back(shm);
  }
  for (const std::string& root : roots) {
    auto b = FileBackend::Open(root, false);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    for (size_t size : {size_t{1} << 20, (size_t{3} << 20) + 4096, (size_t{3} << 20) + 123}) {
      AlignedBytes aligned(size);
      Bytes content(size);
      for (size_t i = 0; i < size; ++i) content[i] = static_cast<uint8_t>((i * 131) ^ (i >> 12));
      aligned.Append(content);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(aligned.data()) % AlignedBytes::kAlignment, 0u);
      const std::string name = "data/aligned-" + std::to_string(size);
      ASSERT_TRUE((*b)->Put(name, aligned.span()).ok()) << root;
      Result<Bytes> back = (*b)->Get(name);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_TRUE(*back == content) << root << " size " << size;
      // The same bytes one byte off alignment take the buffered path.
      Bytes shifted(size + 1);
      std::copy(content.begin(), content.end(), shifted.begin() + 1);
      ASSERT_TRUE((*b)->Put(name + "-unaligned", ByteSpan(shifted.data() + 1, size)).ok());
      back = (*b)->Get(name + "-unaligned");
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_TRUE(*back == content) << root << " size " << size << " unaligned";
    }
  }
}

}  // namespace
}  // namespace bunker::backend
