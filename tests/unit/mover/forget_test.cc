// mover::Forget: what it refuses, and which snapshot objects it removes when
// they are named, readable or not.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/mover/maintenance.h"
#include "nodeagent/core/repo/ids.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"
#include "tests/harness/temp_dir.h"

namespace bunker::mover {
namespace {

namespace fs = std::filesystem;

class ForgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<testing::TempDir> tmp = testing::TempDir::Create("forget");
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::move(*tmp);
    const std::string url = "file://" + (tmp_.path() / "repo").string();
    auto b = backend::OpenBackend(url, {}, true);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    repo::InitOptions init;
    init.kdf = repo::KdfParams{1024, 8, 1};
    ASSERT_TRUE(repo::Repository::Init(b->get(), "pw", init).ok());
    auto b2 = backend::OpenBackend(url, {}, false);
    ASSERT_TRUE(b2.ok());
    auto r = repo::Repository::Open(std::move(*b2), "pw");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
    codec_ = repo_->NewCodec();
  }

  // A snapshot object of `volume` (no content: Forget never reads it).
  repo::ObjectId Save(const std::string& volume, uint32_t version = 1) {
    repo::Snapshot s;
    s.version = version;
    s.volume_id = volume;
    s.mode = "block";
    s.time = repo::NowRfc3339();
    s.kind = "full";
    s.chunk_size = 1 << 20;
    Result<repo::ObjectId> id = repo_->SaveSnapshot(s, codec_.get());
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : repo::ObjectId{};
  }

  fs::path ObjectPath(const repo::ObjectId& id) const {
    return tmp_.path() / "repo" / repo::SnapshotName(id);
  }

  testing::TempDir tmp_;
  std::unique_ptr<repo::Repository> repo_;
  std::unique_ptr<repo::BlobCodec> codec_;
};

TEST_F(ForgetTest, RefusesNoPolicyAndKeepNothingOfEveryVolume) {
  const repo::ObjectId a = Save("a");
  ForgetOptions none;  // neither a policy nor names
  EXPECT_EQ(Forget(repo_.get(), nullptr, none).status().code(), Code::kInvalidArgument);
  ForgetOptions zero;
  zero.keep_last = 0;
  Result<ForgetReport> refused = Forget(repo_.get(), nullptr, zero);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("every snapshot of every volume"), std::string::npos);
  ForgetOptions latest;
  latest.snapshots = {"latest"};
  EXPECT_EQ(Forget(repo_.get(), nullptr, latest).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(fs::exists(ObjectPath(a)));

  zero.volume_id = "a";
  Result<ForgetReport> all_of_a = Forget(repo_.get(), nullptr, zero);
  ASSERT_TRUE(all_of_a.ok()) << all_of_a.status().ToString();
  EXPECT_EQ(all_of_a->removed.size(), 1u);
  EXPECT_FALSE(fs::exists(ObjectPath(a)));
}

// Bytes that fail their hash are damage: the named object goes. An object
// that is intact and opens with the key but is of a newer format is a good
// backup this build cannot read: it stays, and the refusal says why.
TEST_F(ForgetTest, NamedDamagedSnapshotGoesButANewerFormatStays) {
  const repo::ObjectId good = Save("a");
  const repo::ObjectId damaged = Save("a");
  const repo::ObjectId newer = Save("b", /*version=*/2);
  {
    std::fstream f(ObjectPath(damaged), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x5a');
  }
  std::vector<repo::Repository::DamagedSnapshot> listed_damaged;
  ASSERT_TRUE(repo_->ListSnapshots(&listed_damaged).ok());
  ASSERT_EQ(listed_damaged.size(), 2u);
  for (const auto& d : listed_damaged) {
    EXPECT_EQ(d.authenticated, d.id == newer) << repo::ShortHex(d.id) << ": " << d.status.message();
  }

  ForgetOptions keep_newer;
  keep_newer.snapshots = {repo::ToHex(newer).substr(0, 8)};
  Result<ForgetReport> refused = Forget(repo_.get(), nullptr, keep_newer);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("cannot read it"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(fs::exists(ObjectPath(newer)));

  ForgetOptions both;  // one refusal removes nothing, not even the damaged one
  both.snapshots = {repo::ToHex(damaged), repo::ToHex(newer)};
  EXPECT_FALSE(Forget(repo_.get(), nullptr, both).ok());
  EXPECT_TRUE(fs::exists(ObjectPath(damaged)));

  ForgetOptions by_volume;  // a damaged snapshot's volume cannot be known
  by_volume.snapshots = {repo::ToHex(damaged)};
  by_volume.volume_id = "a";
  EXPECT_EQ(Forget(repo_.get(), nullptr, by_volume).status().code(), Code::kInvalidArgument);

  ForgetOptions named;
  named.snapshots = {repo::ToHex(damaged).substr(0, 6)};
  named.dry_run = true;
  Result<ForgetReport> dry = Forget(repo_.get(), nullptr, named);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  ASSERT_EQ(dry->removed_damaged.size(), 1u);
  EXPECT_TRUE(fs::exists(ObjectPath(damaged)));
  named.dry_run = false;
  Result<ForgetReport> done = Forget(repo_.get(), nullptr, named);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->removed_damaged.size(), 1u);
  EXPECT_EQ(done->removed_damaged[0], damaged);
  EXPECT_TRUE(done->removed.empty());
  EXPECT_FALSE(fs::exists(ObjectPath(damaged)));
  EXPECT_TRUE(fs::exists(ObjectPath(good)));
  EXPECT_TRUE(fs::exists(ObjectPath(newer)));
}

}  // namespace
}  // namespace bunker::mover
