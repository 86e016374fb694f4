#include "nodeagent/core/repo/repository.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/pack_writer.h"

namespace bunker::repo {
namespace {

namespace fs = std::filesystem;

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bunker-repo-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    InitOptions opts;
    opts.kdf.n = 1024;
    auto b = backend::OpenBackend(dir_, {}, true);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(Repository::Init(b->get(), "pw", opts).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<std::unique_ptr<Repository>> OpenWith(std::string_view password) {
    auto b = backend::OpenBackend(dir_, {}, false);
    if (!b.ok()) return b.status();
    return Repository::Open(std::move(*b), password);
  }

  size_t CountFiles() {
    size_t n = 0;
    for (auto& e : fs::recursive_directory_iterator(dir_)) n += e.is_regular_file();
    return n;
  }

  std::string dir_;
};

// A PackBufferMaker started before the repository was open makes the
// writer's whole budget, and the writer takes its buffers from it as it needs
// them: the first at construction, more when a pack is sealed while the
// others are still queued or uploading (timing decides how many). A maker
// whose buffers are too small is ignored (the writer makes its own).
// Either way, and without a maker, the blobs read back.
TEST_F(RepositoryTest, PackWriterTakesBuffersFromAMakerOfTheRightSize) {
  PackWriterOptions options;
  options.target_size = 256 << 10;
  const size_t budget = static_cast<size_t>(options.uploaders) + 1;
  PackWriterOptions small = options;
  small.target_size = 4096;
  struct Case {
    const char* name;
    std::unique_ptr<PackBufferMaker> maker;
    size_t left_min, left_max;  // buffers the writer did not take
  };
  Case cases[3] = {{"fitting maker", std::make_unique<PackBufferMaker>(options), 0, budget - 1},
                   {"too small a maker", std::make_unique<PackBufferMaker>(small), budget, budget},
                   {"no maker", nullptr, 0, 0}};
  uint32_t seed = 1;
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = OpenWith("pw");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Repository* repo = r->get();
    std::unique_ptr<BlobCodec> codec = repo->NewCodec();
    std::vector<std::pair<BlobId, Bytes>> blobs;
    {
      PackWriter writer(repo, options, c.maker.get());
      // 2 MB that LZ4 cannot shrink: eight packs, so every buffer is used.
      for (int i = 0; i < 20; ++i) {
        Bytes plain(100000);
        for (uint8_t& byte : plain) {
          seed = seed * 1664525u + 1013904223u;
          byte = static_cast<uint8_t>(seed >> 24);
        }
        const BlobId id = codec->ComputeId(plain);
        ASSERT_TRUE(repo->index().Claim(id));
        Bytes stored;
        uint8_t flags = 0;
        ASSERT_TRUE(codec->Encode(BlobType::kData, id, plain, true, &stored, &flags).ok());
        BlobEntry e{id, BlobType::kData, flags, 0, 0, static_cast<uint32_t>(plain.size())};
        ASSERT_TRUE(writer.Add(e, stored).ok());
        blobs.emplace_back(id, std::move(plain));
      }
      Result<std::vector<PackEntries>> packs = writer.Finish();
      ASSERT_TRUE(packs.ok()) << packs.status().ToString();
      EXPECT_GE(packs->size(), 6u);
    }
    for (const auto& [id, plain] : blobs) {
      Result<Bytes> back = repo->ReadBlob(id, codec.get());
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(*back, plain);
    }
    if (c.maker) {
      size_t left = 0;
      for (AlignedBytes b = c.maker->Take(); b.capacity() > 0; b = c.maker->Take()) {
        EXPECT_EQ(b.capacity(), c.maker->buffer_capacity());
        ++left;
      }
      EXPECT_GE(left, c.left_min);
      EXPECT_LE(left, c.left_max);
    }
  }
}

// Blobs sealed straight into the pack (Reserve, then Commit) by several
// writers at once: a pack that fills while a room in it is still being
// written waits for that room, and is sealed and uploaded by the commit that
// closes its last one, whichever thread and order that is. Every blob reads
// back, at the offset its room had.
TEST_F(RepositoryTest, PackWriterRoomsAreSealedIntoThePackOnlyOnceAllAreCommitted) {
  auto r = OpenWith("pw");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Repository* repo = r->get();
  std::unique_ptr<BlobCodec> codec = repo->NewCodec();
  PackWriterOptions options;
  options.target_size = 64 << 10;
  uint32_t seed = 7;
  auto make_plain = [&](size_t n) {
    Bytes plain(n);
    for (uint8_t& byte : plain) {
      seed = seed * 1664525u + 1013904223u;
      byte = static_cast<uint8_t>(seed >> 24);
    }
    return plain;
  };
  std::vector<std::pair<BlobId, Bytes>> blobs;
  PackWriter writer(repo, options);
  // Two rooms in one pack; the second fills it (over 64 KiB) while the
  // first is still open.
  struct Open {
    BlobId id;
    Bytes plain;
    uint8_t flags = 0;
    PackWriter::Room room;
  };
  auto reserve = [&](size_t n) {
    Open o;
    o.plain = make_plain(n);
    o.id = codec->ComputeId(o.plain);
    Result<size_t> length = codec->PrepareBlob(BlobType::kData, o.id, o.plain, &o.flags);
    EXPECT_TRUE(length.ok());
    Result<PackWriter::Room> room = writer.Reserve(*length);
    EXPECT_TRUE(room.ok()) << room.status().ToString();
    o.room = *room;
    EXPECT_EQ(o.room.bytes().size(), *length);
    EXPECT_TRUE(codec->SealPreparedBlob(o.plain, true, o.room.bytes()).ok());
    return o;
  };
  auto commit = [&](Open& o) {
    BlobEntry e{o.id, BlobType::kData, o.flags, 0, 0, static_cast<uint32_t>(o.plain.size())};
    ASSERT_TRUE(writer.Commit(o.room, e).ok());
    blobs.emplace_back(o.id, std::move(o.plain));
  };
  Open first = reserve(40000);
  Open second = reserve(40000);  // the pack is full now, its first room still open
  Open third = reserve(1000);    // so this one starts the next pack
  EXPECT_NE(third.room.bytes().data(), second.room.bytes().data() + second.room.bytes().size());
  commit(second);
  commit(third);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(writer.packs_uploaded(), 0u);  // the full pack still waits for `first`
  // The last room of the full pack is committed from another thread.
  std::thread([&] { commit(first); }).join();
  for (int i = 0; i < 500 && writer.packs_uploaded() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(writer.packs_uploaded(), 1u);
  // Several threads at once, through Add (Reserve, copy, Commit) and rooms.
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<BlobCodec> c = repo->NewCodec();
      for (int i = 0; i < 25; ++i) {
        Bytes plain;
        {
          std::lock_guard lock(mu);
          plain = make_plain(3000 + 997 * static_cast<size_t>(i));
        }
        const BlobId id = c->ComputeId(plain);
        uint8_t flags = 0;
        if ((t + i) % 2 == 0) {
          Bytes stored;
          ASSERT_TRUE(c->Encode(BlobType::kData, id, plain, true, &stored, &flags).ok());
          BlobEntry e{id, BlobType::kData, flags, 0, 0, static_cast<uint32_t>(plain.size())};
          ASSERT_TRUE(writer.Add(e, stored).ok());
        } else {
          Result<size_t> length = c->PrepareBlob(BlobType::kData, id, plain, &flags);
          ASSERT_TRUE(length.ok());
          Result<PackWriter::Room> room = writer.Reserve(*length);
          ASSERT_TRUE(room.ok()) << room.status().ToString();
          ASSERT_TRUE(c->SealPreparedBlob(plain, true, room->bytes()).ok());
          BlobEntry e{id, BlobType::kData, flags, 0, 0, static_cast<uint32_t>(plain.size())};
          ASSERT_TRUE(writer.Commit(*room, e).ok());
        }
        std::lock_guard lock(mu);
        blobs.emplace_back(id, std::move(plain));
      }
    });
  }
  for (auto& t : threads) t.join();
  Result<std::vector<PackEntries>> packs = writer.Finish();
  ASSERT_TRUE(packs.ok()) << packs.status().ToString();
  EXPECT_GE(packs->size(), 10u);
  size_t listed = 0;
  uint64_t stored = 0;
  for (const PackEntries& p : *packs) {
    listed += p.blobs.size();
    stored += p.stored_size;
    // What the writer says it uploaded is the object the location holds.
    Result<backend::ObjectInfo> info = repo->backend()->Stat(PackName(p.pack));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(p.stored_size, info->size) << ShortHex(p.pack);
  }
  EXPECT_EQ(listed, blobs.size());
  EXPECT_EQ(stored, writer.bytes_uploaded());
  for (const auto& [id, plain] : blobs) {
    Result<Bytes> back = repo->ReadBlob(id, codec.get());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, plain);
  }
}

// A room that could not be written (its blob failed the codec's self-check)
// is abandoned: the pack holding it is never uploaded and the writer fails,
// naming why, instead of storing a pack with a hole in it.
TEST_F(RepositoryTest, PackWriterAbandonedRoomFailsTheWriterAndUploadsNothing) {
  auto r = OpenWith("pw");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Repository* repo = r->get();
  std::unique_ptr<BlobCodec> codec = repo->NewCodec();
  const size_t files_before = CountFiles();
  PackWriter writer(repo, PackWriterOptions{});
  Bytes plain(5000, 7);
  const BlobId id = codec->ComputeId(plain);
  Bytes stored;
  uint8_t flags = 0;
  ASSERT_TRUE(codec->Encode(BlobType::kData, id, plain, true, &stored, &flags).ok());
  ASSERT_TRUE(
      writer
          .Add(BlobEntry{id, BlobType::kData, flags, 0, 0, static_cast<uint32_t>(plain.size())},
               stored)
          .ok());
  Result<PackWriter::Room> room = writer.Reserve(1000);
  ASSERT_TRUE(room.ok());
  writer.Abandon(*room);
  Status add = writer.Add(
      BlobEntry{id, BlobType::kData, flags, 0, 0, static_cast<uint32_t>(plain.size())}, stored);
  EXPECT_FALSE(add.ok());
  Result<std::vector<PackEntries>> packs = writer.Finish();
  ASSERT_FALSE(packs.ok());
  EXPECT_NE(packs.status().message().find("never written"), std::string::npos)
      << packs.status().ToString();
  EXPECT_EQ(writer.packs_uploaded(), 0u);
  EXPECT_EQ(CountFiles(), files_before);
}

// PrepareBlob's size is what SealPreparedBlob needs: any other room is
// refused before anything is written.
TEST_F(RepositoryTest, SealPreparedBlobRefusesARoomOfTheWrongSize) {
  auto r = OpenWith("pw");
  ASSERT_TRUE(r.ok());
  std::unique_ptr<BlobCodec> codec = (*r)->NewCodec();
  Bytes plain(10000, 'a');
  uint8_t flags = 0;
  Result<size_t> length =
      codec->PrepareBlob(BlobType::kData, codec->ComputeId(plain), plain, &flags);
  ASSERT_TRUE(length.ok());
  EXPECT_LT(*length, plain.size());  // compressed
  Bytes room(*length + 1);
  Status st = codec->SealPreparedBlob(plain, true, MutableByteSpan(room.data(), room.size()));
  EXPECT_EQ(st.code(), Code::kInternal) << st.ToString();
  // And without a PrepareBlob before it.
  st = codec->SealPreparedBlob(plain, true, MutableByteSpan(room.data(), *length));
  EXPECT_EQ(st.code(), Code::kInternal) << st.ToString();
}

TEST_F(RepositoryTest, InitTwiceIsRefused) {
  auto b = backend::OpenBackend(dir_, {}, false);
  ASSERT_TRUE(b.ok());
  Status st = Repository::Init(b->get(), "other", {});
  EXPECT_EQ(st.code(), Code::kAlreadyExists);
}

TEST_F(RepositoryTest, WrongPasswordIsPermissionDeniedAndWritesNothing) {
  size_t before = CountFiles();
  auto r = OpenWith("nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("wrong password"), std::string::npos);
  EXPECT_EQ(CountFiles(), before);
}

TEST_F(RepositoryTest, SeveralPasswordsOpenTheSameMasterKey) {
  auto r = OpenWith("pw");
  ASSERT_TRUE(r.ok());
  Result<ObjectId> k2 = (*r)->AddKey("second", "ops", KdfParams{1024, 8, 1});
  ASSERT_TRUE(k2.ok());
  auto r2 = OpenWith("second");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ((*r)->key().enc, (*r2)->key().enc);
  EXPECT_EQ((*r)->key().mac, (*r2)->key().mac);
  auto keys = (*r2)->ListKeys();
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 2u);
  // The key in use cannot be removed; the other one can; the last one cannot.
  EXPECT_EQ((*r2)->RemoveKey(ToHex(*k2)).code(), Code::kFailedPrecondition);
  const KeyInfo& first = (*keys)[0].id == *k2 ? (*keys)[1] : (*keys)[0];
  EXPECT_TRUE((*r2)->RemoveKey(ToHex(first.id).substr(0, 10)).ok());
  EXPECT_FALSE(OpenWith("pw").ok());
  EXPECT_EQ((*r2)->RemoveKey(ToHex(*k2)).code(), Code::kFailedPrecondition);
}

TEST_F(RepositoryTest, NewerFormatVersionIsRefusedWithBothVersions) {
  std::string path = dir_ + "/config";
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = text.find("\"version\": 1");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 12, "\"version\": 7");
  std::ofstream(path) << text;
  auto r = OpenWith("pw");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("version 7"), std::string::npos);
  EXPECT_NE(r.status().message().find("upgrade"), std::string::npos);
}

TEST_F(RepositoryTest, TamperedKeyFileIsCorruption) {
  for (auto& e : fs::directory_iterator(dir_ + "/keys")) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('X');
  }
  auto r = OpenWith("pw");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("keys/"), std::string::npos);
}

TEST_F(RepositoryTest, MissingRepositoryIsNotFound) {
  fs::remove(dir_ + "/config");
  auto r = OpenWith("pw");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("repo init"), std::string::npos);
}

TEST_F(RepositoryTest, ExclusiveLeaseExcludesEveryOtherLease) {
  auto r = OpenWith("pw");
  ASSERT_TRUE(r.ok());
  LeaseOptions fast;
  fast.settle = std::chrono::milliseconds(1);
  auto shared1 = Lease::Acquire(r->get(), false, "backup a", fast);
  ASSERT_TRUE(shared1.ok());
  auto shared2 = Lease::Acquire(r->get(), false, "backup b", fast);
  ASSERT_TRUE(shared2.ok()) << "shared leases coexist";
  auto excl = Lease::Acquire(r->get(), true, "prune", fast);
  ASSERT_FALSE(excl.ok());
  EXPECT_NE(excl.status().message().find("is locked"), std::string::npos);
  EXPECT_NE(excl.status().message().find("backup"), std::string::npos);
  ASSERT_TRUE((*shared1)->Release().ok());
  ASSERT_TRUE((*shared2)->Release().ok());
  auto excl2 = Lease::Acquire(r->get(), true, "prune", fast);
  ASSERT_TRUE(excl2.ok());
  EXPECT_TRUE((*excl2)->CheckValid().ok());
  auto shared3 = Lease::Acquire(r->get(), false, "backup c", fast);
  EXPECT_FALSE(shared3.ok());
  // A failed attempt leaves no lease behind.
  auto all = Lease::ListAll(r->get(), nullptr);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(RepositoryTest, CommitLeasesAreTakenOneAtATimeAndWaitForEachOther) {
  auto r = OpenWith("pw");
  ASSERT_TRUE(r.ok());
  LeaseOptions fast;
  fast.settle = std::chrono::milliseconds(1);
  auto backup_a = Lease::Acquire(r->get(), false, "backup a", fast);
  auto backup_b = Lease::Acquire(r->get(), false, "backup b", fast);
  ASSERT_TRUE(backup_a.ok() && backup_b.ok());
  auto commit_a = Lease::AcquireCommit(r->get(), "commit a", fast, std::chrono::seconds(5));
  ASSERT_TRUE(commit_a.ok()) << "shared leases do not hold up a commit";
  {
    auto all = Lease::ListAll(r->get(), nullptr);
    ASSERT_TRUE(all.ok());
    int commits = 0;
    for (const LeaseInfo& l : *all) commits += l.commit ? 1 : 0;
    EXPECT_EQ(commits, 1);
  }
  // A second commit waits out its deadline while the first is held, and
  // names the holder.
  auto t0 = std::chrono::steady_clock::now();
  auto refused = Lease::AcquireCommit(r->get(), "commit b", fast, std::chrono::milliseconds(400));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(400));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("commit a"), std::string::npos)
      << refused.status().ToString();
  // A prune is refused while a commit (and its backup) runs; a shared lease
  // is still granted.
  EXPECT_FALSE(Lease::Acquire(r->get(), true, "prune", fast).ok());
  auto backup_c = Lease::Acquire(r->get(), false, "backup c", fast);
  EXPECT_TRUE(backup_c.ok());
  // Released while the second waits: the second gets it.
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE((*commit_a)->Release().ok());
  });
  auto commit_b = Lease::AcquireCommit(r->get(), "commit b", fast, std::chrono::seconds(10));
  release.join();
  ASSERT_TRUE(commit_b.ok()) << commit_b.status().ToString();
  EXPECT_TRUE((*commit_b)->CheckValid().ok());
}

TEST_F(RepositoryTest, LeaseOfADeadProcessOnThisHostIsStale) {
  LeaseInfo l = Lease::LocalIdentity();
  ASSERT_FALSE(l.boot_id.empty());
  ASSERT_FALSE(l.pid_ns.empty());
  l.pid = 999999999;  // above pid_max: no such process
  l.expires = std::time(nullptr) + 3600;
  EXPECT_TRUE(Lease::IsStale(l, std::chrono::seconds(60)));
  l.pid = ::getpid();
  EXPECT_FALSE(Lease::IsStale(l, std::chrono::seconds(60)));
  l.host = "another-host";
  l.pid = 999999999;
  EXPECT_FALSE(Lease::IsStale(l, std::chrono::seconds(60)));
  // Same host name, another pid namespace (two pods of one Job): the pid says
  // nothing here, so only the expiry counts (kopia #1087).
  LeaseInfo pod = Lease::LocalIdentity();
  pod.pid_ns = "pid:[1]";
  pod.pid = 999999999;
  pod.expires = std::time(nullptr) + 3600;
  EXPECT_FALSE(Lease::IsStale(pod, std::chrono::seconds(60)));
  pod.pid_ns = Lease::LocalIdentity().pid_ns;
  pod.boot_id = "another-boot";
  EXPECT_FALSE(Lease::IsStale(pod, std::chrono::seconds(60))) << "after a reboot pids are reused";
  l.expires = std::time(nullptr) - 120;
  EXPECT_TRUE(Lease::IsStale(l, std::chrono::seconds(60)));
  l.expires = std::time(nullptr) - 30;
  EXPECT_FALSE(Lease::IsStale(l, std::chrono::seconds(60))) << "inside the skew allowance";
}

TEST_F(RepositoryTest, LeaseThatCannotRefreshExpiresBeforeCommit) {
  auto r = OpenWith("pw");
  ASSERT_TRUE(r.ok());
  LeaseOptions opts;
  opts.settle = std::chrono::milliseconds(1);
  opts.ttl = std::chrono::seconds(1);
  opts.refresh = std::chrono::seconds(3600);  // never refreshes in this test
  auto lease = Lease::Acquire(r->get(), false, "backup", opts);
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE((*lease)->CheckValid().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Status st = (*lease)->CheckValid();
  EXPECT_EQ(st.code(), Code::kAborted);
  EXPECT_NE(st.message().find("commit"), std::string::npos);
}

}  // namespace
}  // namespace bunker::repo
