#include "nodeagent/core/backend/file_backend.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace bunker::backend
