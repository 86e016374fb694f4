// Tests of file mode (file_backup.cc, file_restore.cc, file_tree.cc): real
// trees in temp directories backed up into a file:// repository and restored,
// compared entry by entry; crafted (hostile) trees that restore must refuse.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/mover/file_backup.h"
#include "nodeagent/core/mover/file_tree.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/pack_writer.h"
#include "nodeagent/core/repo/repository.h"
#include "tests/harness/temp_dir.h"

namespace bunker::mover {
namespace {

namespace fs = std::filesystem;
using repo::BlobId;
using repo::BlobType;

constexpr char kPassword[] = "file mode test password";

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

void Write(const fs::path& p, std::string_view data) {
  ASSERT_TRUE(testing::WriteFile(p, data).ok()) << p;
}

void SetMtime(const fs::path& p, int64_t sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << p;
}

std::map<std::string, std::string> UserXattrs(const fs::path& p) {
  std::map<std::string, std::string> out;
  char names[4096];
  ssize_t n = ::llistxattr(p.c_str(), names, sizeof(names));
  for (ssize_t i = 0; i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (name.rfind("user.", 0) != 0) continue;
    char value[4096];
    ssize_t v = ::lgetxattr(p.c_str(), name.c_str(), value, sizeof(value));
    out[name] = std::string(value, v > 0 ? static_cast<size_t>(v) : 0);
  }
  return out;
}

// Compares two trees entry by entry: type, mode, owner, size, content,
// mtime (ns), user xattrs, symlink targets, and that paths sharing an inode
// in `a` share one in `b`.
void ExpectSameTree(const fs::path& a, const fs::path& b, bool compare_root_times = true) {
  std::map<ino_t, ino_t> inode_map;
  std::function<void(const fs::path&)> walk = [&](const fs::path& rel) {
    fs::path pa = a / rel, pb = b / rel;
    struct stat sa, sb;
    ASSERT_EQ(::lstat(pa.c_str(), &sa), 0) << pa;
    ASSERT_EQ(::lstat(pb.c_str(), &sb), 0) << "missing in restore: " << rel;
    EXPECT_EQ(sa.st_mode, sb.st_mode) << rel;
    EXPECT_EQ(sa.st_uid, sb.st_uid) << rel;
    EXPECT_EQ(sa.st_gid, sb.st_gid) << rel;
    if (!rel.empty() || compare_root_times) {
      EXPECT_EQ(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec) << rel;
      EXPECT_EQ(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec) << rel;
    }
    EXPECT_EQ(UserXattrs(pa), UserXattrs(pb)) << rel;
    if (S_ISREG(sa.st_mode)) {
      EXPECT_EQ(sa.st_size, sb.st_size) << rel;
      Result<std::string> ca = testing::ReadFile(pa), cb = testing::ReadFile(pb);
      ASSERT_TRUE(ca.ok() && cb.ok()) << rel;
      EXPECT_TRUE(*ca == *cb) << "content differs: " << rel;
      if (sa.st_nlink > 1) {
        auto [it, fresh] = inode_map.emplace(sa.st_ino, sb.st_ino);
        EXPECT_EQ(it->second, sb.st_ino) << "hard link not preserved: " << rel;
        EXPECT_EQ(sa.st_nlink, sb.st_nlink) << rel;
      }
    } else if (S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(fs::read_symlink(pa), fs::read_symlink(pb)) << rel;
    } else if (S_ISDIR(sa.st_mode)) {
      std::set<std::string> na, nb;
      for (const auto& e : fs::directory_iterator(pa)) na.insert(e.path().filename());
      for (const auto& e : fs::directory_iterator(pb)) nb.insert(e.path().filename());
      EXPECT_EQ(na, nb) << rel;
      for (const std::string& n : na) {
        walk(rel / n);
      }
    }
  };
  walk(fs::path());
}

class FileModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<testing::TempDir> tmp = testing::TempDir::Create("file-mode");
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::move(*tmp);
    std::string url = "file://" + (tmp_.path() / "repo").string();
    auto b = backend::OpenBackend(url, {}, true);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    repo::InitOptions init;
    init.kdf = repo::KdfParams{1024, 8, 1};
    ASSERT_TRUE(repo::Repository::Init(b->get(), kPassword, init).ok());
    auto b2 = backend::OpenBackend(url, {}, false);
    ASSERT_TRUE(b2.ok());
    auto r = repo::Repository::Open(std::move(*b2), kPassword);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
    ASSERT_TRUE(repo_->LoadIndex().ok());
    repo::LeaseOptions lo;
    lo.settle = std::chrono::milliseconds(1);
    auto lease = repo::Lease::Acquire(repo_.get(), false, "file mode test", lo);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    lease_ = std::move(*lease);
    src_ = tmp_.path() / "src";
    fs::create_directories(src_);
  }

  Result<BackupResult> Backup(FileBackupOptions o = {}) {
    o.root = src_.string();
    if (o.volume_id.empty()) o.volume_id = "vol";
    return BackupFileTree(repo_.get(), lease_.get(), o);
  }

  Result<RestoreResult> Restore(const repo::Snapshot& s, const fs::path& target,
                                FileRestoreOptions o = {}) {
    o.target = target.string();
    return RestoreFileTree(repo_.get(), s, o);
  }

  // A tree with a bit of everything.
  void BuildRichTree() {
    fs::create_directories(src_ / "sub" / "deep" / "deeper");
    fs::create_directories(src_ / "empty_dir");
    Write(src_ / "small.txt", "hello, bunker\n");
    Write(src_ / "empty", "");
    Write(src_ / "big.bin", RandomBytes(9 << 20, 1));            // several CDC chunks
    Write(src_ / "sub" / "mid.bin", RandomBytes(300 << 10, 2));  // one chunk
    Write(src_ / "sub" / "deep" / "deeper" / "leaf", RandomBytes(5000, 3));
    Write(src_ / "sub" / "zeros", std::string(3 << 20, '\0'));  // allocated zeros
    fs::create_symlink("small.txt", src_ / "link");
    fs::create_symlink("/nonexistent/target", src_ / "dangling");
    fs::create_symlink("../small.txt", src_ / "sub" / "up");
    ASSERT_EQ(::link((src_ / "small.txt").c_str(), (src_ / "sub" / "hard").c_str()), 0);
    ASSERT_EQ(::link((src_ / "small.txt").c_str(), (src_ / "zz_hard").c_str()), 0);
    // Sparse: 64 MiB with a few written blocks.
    {
      int fd = ::open((src_ / "sparse").c_str(), O_CREAT | O_WRONLY, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::ftruncate(fd, 64 << 20), 0);
      std::string block = RandomBytes(4096, 4);
      for (off_t off : {off_t{0}, off_t{10 << 20}, off_t{(64 << 20) - 4096}}) {
        ASSERT_EQ(::pwrite(fd, block.data(), block.size(), off), 4096);
      }
      ::close(fd);
    }
    ASSERT_EQ(::mkfifo((src_ / "fifo").c_str(), 0640), 0);
    ASSERT_EQ(::setxattr((src_ / "small.txt").c_str(), "user.k", "v1", 2, 0), 0);
    ASSERT_EQ(::setxattr((src_ / "sub").c_str(), "user.dir", "\x00\x01\xff", 3, 0), 0);
    ASSERT_EQ(::setxattr((src_ / "big.bin").c_str(), "user.empty", "", 0, 0), 0);
    ::chmod((src_ / "sub").c_str(), 0750);
    ::chmod((src_ / "small.txt").c_str(), 0640);
    ::chmod((src_ / "sub" / "mid.bin").c_str(), 0600);
    ::chmod((src_ / "empty_dir").c_str(), 01777);
    SetMtime(src_ / "small.txt", 1'600'000'000, 123'456'789);
    SetMtime(src_ / "big.bin", 1'500'000'000, 1);
    SetMtime(src_ / "link", 1'400'000'000, 999'999'999);
    SetMtime(src_ / "sub" / "deep", 1'300'000'000, 42);
    SetMtime(src_ / "empty_dir", 1'200'000'000, 7);
    SetMtime(src_ / "sub", 1'100'000'000, 5);
    SetMtime(src_, 1'000'000'000, 3);
  }

  // Stores `plain` as a blob (kMeta or kData) in a new pack and index file.
  BlobId PutBlob(std::string_view plain, BlobType type) {
    std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
    BlobId id = codec->ComputeId(AsBytes(plain));
    if (repo_->index().Has(id)) return id;
    Bytes stored;
    uint8_t flags = 0;
    EXPECT_TRUE(codec->Encode(type, id, AsBytes(plain), true, &stored, &flags).ok());
    repo::PackWriter packer(repo_.get(), {});
    EXPECT_TRUE(
        packer
            .Add(repo::BlobEntry{id, type, flags, 0, 0, static_cast<uint32_t>(plain.size())},
                 stored)
            .ok());
    auto packs = packer.Finish();
    EXPECT_TRUE(packs.ok());
    EXPECT_TRUE(repo_->SaveIndex(*packs, codec.get()).ok());
    return id;
  }

  repo::Snapshot SnapshotOf(const BlobId& tree) {
    repo::Snapshot s;
    s.volume_id = "crafted";
    s.mode = "file";
    s.time = repo::NowRfc3339();
    s.host = "test";
    s.kind = "full";
    s.tree = tree;
    std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
    EXPECT_TRUE(repo_->SaveSnapshot(s, codec.get()).ok());
    return s;
  }

  static std::string Meta(std::string_view type) {
    return "\"type\":\"" + std::string(type) +
           "\",\"mode\":420,\"uid\":0,\"gid\":0,\"mtime_ns\":0,\"ctime_ns\":0,\"inode\":1,"
           "\"links\":1";
  }
  static std::string FileNode(std::string_view name, std::string_view content = "",
                              uint64_t size = 0, uint64_t links = 1) {
    std::string m = Meta("file");
    if (links != 1) m.replace(m.find("\"links\":1"), 9, "\"links\":" + std::to_string(links));
    return "{\"name\":\"" + std::string(name) + "\"," + m + ",\"size\":" + std::to_string(size) +
           ",\"content\":[" + std::string(content) + "]}";
  }
  static std::string Tree(const std::string& nodes) {
    return "{\"version\":1,\"nodes\":[" + nodes + "]}";
  }
  BlobId EmptyTree() { return PutBlob(Tree(""), BlobType::kMeta); }
  std::string DirNode(std::string_view name, const BlobId& sub) {
    return "{\"name\":\"" + std::string(name) + "\"," + Meta("dir") + ",\"subtree\":\"" +
           repo::ToHex(sub) + "\"}";
  }

  // Restores a crafted tree and expects Corruption, with nothing created
  // outside the target.
  void ExpectRefused(const std::string& tree_json, std::string_view why) {
    BlobId tree = PutBlob(tree_json, BlobType::kMeta);
    repo::Snapshot s = SnapshotOf(tree);
    fs::path outside = tmp_.path() / "outside";
    fs::create_directories(outside);
    auto listing = [&] {
      std::set<std::string> names;
      for (const auto& e : fs::recursive_directory_iterator(outside)) names.insert(e.path());
      return names;
    };
    std::set<std::string> outside_before = listing();
    size_t before = std::distance(fs::directory_iterator(tmp_.path()), fs::directory_iterator());
    fs::path target = tmp_.path() / ("target-" + std::to_string(++targets_));
    Result<RestoreResult> r = Restore(s, target);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << why << ": " << r.status().ToString();
    EXPECT_EQ(listing(), outside_before) << why;
    EXPECT_FALSE(fs::exists(tmp_.path() / "evil")) << why;
    size_t after = std::distance(fs::directory_iterator(tmp_.path()), fs::directory_iterator());
    EXPECT_EQ(after, before + 1) << why << ": only the target may appear";
    // Under the target, nothing but regular entries created by us.
    for (auto it = fs::recursive_directory_iterator(target);
         it != fs::recursive_directory_iterator(); ++it) {
      EXPECT_NE(it->path().filename(), "evil") << why;
    }
  }

  testing::TempDir tmp_;
  std::unique_ptr<repo::Repository> repo_;
  std::unique_ptr<repo::Lease> lease_;
  fs::path src_;
  int targets_ = 0;
};

TEST_F(FileModeTest, RoundTripPreservesEverything) {
  BuildRichTree();
  Result<BackupResult> b = Backup();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const repo::SnapshotStats& st = b->snapshot.stats;
  EXPECT_EQ(b->snapshot.mode, "file");
  EXPECT_EQ(b->snapshot.kind, "full");
  EXPECT_TRUE(b->snapshot.tree.has_value());
  EXPECT_EQ(st.files_new, 7u);  // small, empty, big, mid, leaf, zeros, sparse; not hard links
  EXPECT_EQ(st.files_unchanged, 0u);
  EXPECT_GE(st.bytes_hole, (64u << 20) - 3 * 4096 + (3u << 20) - 1);
  EXPECT_LT(st.bytes_read, 20u << 20);  // the sparse file's holes were skipped, not read

  fs::path out = tmp_.path() / "out";
  Result<RestoreResult> r = Restore(b->snapshot, out);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->bytes_hole, 64u << 20);
  EXPECT_GT(r->blobs_fetched, 5u);
  ExpectSameTree(src_, out);

  struct stat sp;
  ASSERT_EQ(::stat((out / "sparse").c_str(), &sp), 0);
  EXPECT_EQ(sp.st_size, 64 << 20);
  EXPECT_LT(sp.st_blocks * 512, 1 << 20) << "the sparse file was not restored sparse";
  struct stat z;
  ASSERT_EQ(::stat((out / "sub" / "zeros").c_str(), &z), 0);
  EXPECT_LT(z.st_blocks * 512, 1 << 20) << "an all-zero file is restored as a hole";

  struct stat h1, h2, h3;
  ASSERT_EQ(::stat((out / "small.txt").c_str(), &h1), 0);
  ASSERT_EQ(::stat((out / "sub" / "hard").c_str(), &h2), 0);
  ASSERT_EQ(::stat((out / "zz_hard").c_str(), &h3), 0);
  EXPECT_EQ(h1.st_ino, h2.st_ino);
  EXPECT_EQ(h1.st_ino, h3.st_ino);

  std::string cmd =
      "diff -r --no-dereference -x fifo '" + src_.string() + "' '" + out.string() + "' > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST_F(FileModeTest, UnchangedTreeWritesNothingNew) {
  BuildRichTree();
  Result<BackupResult> b = Backup();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Result<BackupResult> again = Backup();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*b->snapshot.tree, *again->snapshot.tree) << "trees are deterministic";
  EXPECT_EQ(again->snapshot.stats.blobs_new, 0u);
}

TEST_F(FileModeTest, IncrementalReadsOnlyChangedFiles) {
  BuildRichTree();
  Result<BackupResult> first = Backup();
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  // Change one file (keeping its size), add one.
  std::string big = RandomBytes(9 << 20, 1);
  big[5 << 20] ^= 0x55;
  Write(src_ / "big.bin", big);
  Write(src_ / "sub" / "new.txt", RandomBytes(100000, 9));
  SetMtime(src_ / "sub", 1'100'000'000, 6);

  Result<BackupResult> second = Backup();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  const repo::SnapshotStats& st = second->snapshot.stats;
  EXPECT_EQ(second->snapshot.kind, "incremental");
  EXPECT_EQ(second->snapshot.parent, first->snapshot_id);
  EXPECT_EQ(st.files_new, 2u);        // big.bin, new.txt
  EXPECT_EQ(st.files_unchanged, 6u);  // small, empty, mid, leaf, zeros, sparse
  // Only the changed chunk(s) of big.bin, new.txt and the trees are new.
  EXPECT_LT(st.bytes_new, (4u << 20) + 100000 + 65536) << st.bytes_new;
  EXPECT_LT(st.bytes_read, (9u << 20) + 100000 + 1) << "unchanged files must not be read";

  fs::path out = tmp_.path() / "out2";
  Result<RestoreResult> r = Restore(second->snapshot, out);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameTree(src_, out);

  // Full re-reads everything but stores nothing new.
  FileBackupOptions full;
  full.full = true;
  Result<BackupResult> third = Backup(full);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->snapshot.kind, "full");
  EXPECT_EQ(third->snapshot.stats.files_unchanged, 0u);
  EXPECT_EQ(third->snapshot.stats.bytes_new, 0u);
}

TEST_F(FileModeTest, PagedTreesAndContentListBlobsRoundTrip) {
  for (int i = 0; i < 60; ++i) {
    Write(src_ / ("file-" + std::to_string(i)), "content " + std::to_string(i));
  }
  Write(src_ / "huge", RandomBytes(24 << 20, 5));
  FileBackupOptions o;
  o.tree_page_bytes = 300;
  o.inline_content_max = 2;
  o.content_per_blob = 3;
  Result<BackupResult> b = Backup(o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();

  std::unique_ptr<repo::BlobCodec> codec = repo_->NewCodec();
  std::set<BlobId> metas, datas;
  ASSERT_TRUE(VisitTreeBlobs(repo_.get(), codec.get(), *b->snapshot.tree,
                             [&](const BlobId& id, BlobType t) {
                               (t == BlobType::kMeta ? metas : datas).insert(id);
                               return Status::Ok();
                             })
                  .ok());
  EXPECT_GT(metas.size(), 10u) << "tree pages and content lists";
  EXPECT_GE(datas.size(), 61u);
  EXPECT_EQ(metas.size() + datas.size(), repo_->index().blob_count());

  fs::path out = tmp_.path() / "out";
  Result<RestoreResult> r = Restore(b->snapshot, out);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameTree(src_, out);

  Result<BackupResult> again = Backup(o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->snapshot.stats.files_unchanged, 61u);
  EXPECT_EQ(*again->snapshot.tree, *b->snapshot.tree);
}

TEST_F(FileModeTest, ManySmallFilesOnManyWorkers) {
  for (int d = 0; d < 20; ++d) {
    fs::path dir = src_ / ("d" + std::to_string(d % 5)) / ("e" + std::to_string(d));
    fs::create_directories(dir);
    for (int f = 0; f < 40; ++f) {
      Write(dir / ("f" + std::to_string(f)), RandomBytes(static_cast<size_t>(f * 997 + d), f + d));
    }
  }
  FileBackupOptions o;
  o.workers = 4;
  Result<BackupResult> b = Backup(o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->snapshot.stats.files_new, 800u);
  FileRestoreOptions ro;
  ro.workers = 4;
  Result<RestoreResult> r = Restore(b->snapshot, tmp_.path() / "out", ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameTree(src_, tmp_.path() / "out");
}

TEST_F(FileModeTest, DeviceNodesNeedAllowSpecial) {
  std::string dev =
      "{\"name\":\"null\"," + Meta("chardev") + ",\"rdev\":" + std::to_string(makedev(1, 3)) + "}";
  BlobId tree = PutBlob(Tree(dev + "," + FileNode("z")), BlobType::kMeta);
  Result<RestoreResult> r = Restore(SnapshotOf(tree), tmp_.path() / "out");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp_.path() / "out" / "null")));
  EXPECT_TRUE(fs::exists(tmp_.path() / "out" / "z"));
}

TEST_F(FileModeTest, RestoreRefusesNonEmptyTargetUnlessOverwrite) {
  Write(src_ / "f", "new content");
  Result<BackupResult> b = Backup();
  ASSERT_TRUE(b.ok());
  fs::path out = tmp_.path() / "out";
  fs::create_directories(out);
  Write(out / "f", "old content that is longer");
  Write(out / "stale", "x");
  Result<RestoreResult> r = Restore(b->snapshot, out);
  EXPECT_EQ(r.status().code(), Code::kAlreadyExists);

  // With overwrite, an existing symlink where a directory goes is replaced,
  // never followed.
  fs::path outside = tmp_.path() / "outside";
  fs::create_directories(outside);
  fs::create_directories(src_ / "d");
  Write(src_ / "d" / "x", "inside");
  fs::create_directory_symlink(outside, out / "d");
  Result<BackupResult> b2 = Backup();
  ASSERT_TRUE(b2.ok());
  FileRestoreOptions o;
  o.overwrite = true;
  r = Restore(b2->snapshot, out, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_EQ(*testing::ReadFile(out / "f"), "new content");
  EXPECT_EQ(*testing::ReadFile(out / "d" / "x"), "inside");
  EXPECT_FALSE(fs::is_symlink(out / "d"));
}

TEST_F(FileModeTest, SetuidBitsNeedAllowSpecial) {
  Write(src_ / "tool", "#!/bin/sh\n");
  ::chmod((src_ / "tool").c_str(), 04755);
  fs::create_directories(src_ / "shared");
  ::chmod((src_ / "shared").c_str(), 02775);
  Result<BackupResult> b = Backup();
  ASSERT_TRUE(b.ok());
  Result<RestoreResult> r = Restore(b->snapshot, tmp_.path() / "plain");
  ASSERT_TRUE(r.ok());
  struct stat st;
  ASSERT_EQ(::stat((tmp_.path() / "plain" / "tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((tmp_.path() / "plain" / "shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02775u) << "setgid directories are kept";
  if (::geteuid() == 0) {
    FileRestoreOptions o;
    o.allow_special = true;
    r = Restore(b->snapshot, tmp_.path() / "special", o);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(::stat((tmp_.path() / "special" / "tool").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u);
  }
}

TEST_F(FileModeTest, UnreadableFileFailsTheBackup) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads everything";
  Write(src_ / "secret", "x");
  ::chmod((src_ / "secret").c_str(), 0);
  Result<BackupResult> b = Backup();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kPermissionDenied);
  EXPECT_NE(b.status().message().find("secret"), std::string::npos);
}

TEST_F(FileModeTest, RestoreRefusesHostileNames) {
  BlobId empty = EmptyTree();
  ExpectRefused(Tree(FileNode("../evil")), "dot-dot name");
  ExpectRefused(Tree(FileNode("a/b")), "slash in a name");
  ExpectRefused(Tree(FileNode("")), "empty name");
  ExpectRefused(Tree(FileNode(".")), "dot name");
  ExpectRefused(Tree(DirNode("..", empty)), "dot-dot directory");
  ExpectRefused(Tree(FileNode("nul\\u0000byte")), "NUL in a name");
  ExpectRefused(Tree("{\"name_b64\":\"Li4=\"," + Meta("file") + ",\"size\":0,\"content\":[]}"),
                "dot-dot in base64");
  ExpectRefused(Tree(FileNode("b") + "," + FileNode("a")), "unsorted names");
  ExpectRefused(Tree(FileNode("a") + "," + FileNode("a")), "repeated name");
}

TEST_F(FileModeTest, RestoreRefusesSymlinkEscapes) {
  fs::path outside = tmp_.path() / "outside";
  // A symlink "d" to outside and then a directory "d" with a file in it.
  BlobId inner = PutBlob(Tree(FileNode("evil")), BlobType::kMeta);
  std::string link =
      "{\"name\":\"d\"," + Meta("symlink") + ",\"target\":\"" + outside.string() + "\"}";
  ExpectRefused(Tree(link + "," + DirNode("d", inner)), "symlink then directory of one name");
  // A hard link through a symlink to a file outside.
  fs::create_directories(outside);
  Write(outside / "target", "secret");
  std::string hard = "{\"name\":\"h\"," + Meta("hardlink") + ",\"link_to\":\"d/target\"}";
  ExpectRefused(Tree(link + "," + hard), "hard link through a symlink");
  fs::remove(outside / "target");
  // A hard link to a file that comes later, to a directory, or with ".." in it.
  BlobId empty = EmptyTree();
  ExpectRefused(Tree("{\"name\":\"a\"," + Meta("hardlink") + ",\"link_to\":\"z\"}," +
                     FileNode("z", "", 0, 2)),
                "hard link before its target");
  ExpectRefused(Tree(DirNode("dir", empty) + ",{\"name\":\"h\"," + Meta("hardlink") +
                     ",\"link_to\":\"dir\"}"),
                "hard link to a directory");
  ExpectRefused(Tree(FileNode("f", "", 0, 2) + ",{\"name\":\"h\"," + Meta("hardlink") +
                     ",\"link_to\":\"../f\"}"),
                "hard link with dot-dot");
  ExpectRefused(Tree(FileNode("f", "", 0, 2) + ",{\"name\":\"h\"," + Meta("hardlink") +
                     ",\"link_to\":\"/f\"}"),
                "absolute hard link");
}

TEST_F(FileModeTest, RestoreRefusesPagesOutOfOrder) {
  BlobId page2 = PutBlob(Tree(FileNode("a")), BlobType::kMeta);
  ExpectRefused(
      "{\"version\":1,\"nodes\":[" + FileNode("b") + "],\"next\":\"" + repo::ToHex(page2) + "\"}",
      "a later page with a smaller name");
  ExpectRefused(
      "{\"version\":1,\"nodes\":[" + FileNode("b") + "],\"next\":\"" + std::string(64, 'e') + "\"}",
      "a missing page");
}

TEST_F(FileModeTest, RestoreRefusesBadContent) {
  std::string data = RandomBytes(1000, 7);
  BlobId d = PutBlob(data, BlobType::kData);
  std::string hex = "\"" + repo::ToHex(d) + "\"";
  ExpectRefused(Tree(FileNode("f", hex, 999)), "content longer than the size");
  ExpectRefused(Tree(FileNode("f", hex, 1001)), "content shorter than the size");
  ExpectRefused(Tree(FileNode("f", "\"" + std::string(64, 'a') + "\"", 5)), "unknown blob");
  ExpectRefused(Tree(FileNode("f", "\"hole:10\",\"hole:10\"", 20)), "adjacent holes");
  BlobId meta = EmptyTree();
  ExpectRefused(Tree(FileNode("f", "\"" + repo::ToHex(meta) + "\"", 30)), "a tree used as content");
  ExpectRefused(Tree(DirNode("d", d)), "a data blob used as a tree");
  // The good case restores.
  BlobId ok = PutBlob(Tree(FileNode("f", hex + ",\"hole:24\"", 1024)), BlobType::kMeta);
  Result<RestoreResult> r = Restore(SnapshotOf(ok), tmp_.path() / "good");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*testing::ReadFile(tmp_.path() / "good" / "f"), data + std::string(24, '\0'));
}

TEST(FileTreeTest, DecoderRefusesMalformedTrees) {
  const std::string meta =
      "\"type\":\"file\",\"mode\":420,\"uid\":0,\"gid\":0,\"mtime_ns\":0,\"ctime_ns\":0,"
      "\"inode\":1,\"links\":1";
  auto node = [&](const std::string& extra) {
    return "{\"version\":1,\"nodes\":[{\"name\":\"f\"," + extra + "}]}";
  };
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {"[]", "not an object"},
      {"\"x\"", "a string"},
      {"7", "a number"},
      {"{\"version\":2,\"nodes\":[]}", "newer version"},
      {"{\"nodes\":[]}", "no version"},
      {"{\"version\":1}", "no nodes"},
      {"{\"version\":1,\"nodes\":[],\"extra\":1}", "unknown field"},
      {"{\"version\":1,\"version\":1,\"nodes\":[]}", "repeated field"},
      {"{\"version\":1,\"nodes\":[[]]}", "array node"},
      {"{\"version\":1,\"nodes\":[[[[[[[[[[[[]]]]]]]]]]]]}", "deep nesting"},
      {node(meta + ",\"size\":0,\"content\":[]") + "x", "trailing bytes"},
      {node(meta + ",\"size\":0"), "file without content"},
      {node(meta + ",\"size\":0,\"content\":[],\"content_blobs\":[]"), "both content kinds"},
      {node(meta + ",\"size\":-1,\"content\":[]"), "negative size"},
      {node(meta + ",\"size\":18446744073709551615,\"content\":[]"), "huge size"},
      {node(meta + ",\"size\":1.5,\"content\":[]"), "fractional size"},
      {node(meta + ",\"size\":0,\"content\":[],\"subtree\":\"" + std::string(64, '0') + "\""),
       "foreign field"},
      {node(meta + ",\"size\":0,\"content\":[\"hole:0\"]"), "empty hole"},
      {node(meta + ",\"size\":0,\"content\":[\"hole:-1\"]"), "negative hole"},
      {node(meta + ",\"size\":0,\"content\":[\"hole:01\"]"), "padded hole"},
      {node(meta + ",\"size\":0,\"content\":[\"abc\"]"), "bad id"},
      {node(meta + ",\"size\":0,\"content\":[\"" + std::string(64, '0') + "\"]"), "zero id"},
      {node(meta + ",\"size\":0,\"content\":[],\"xattrs\":{\"user.a\":\"!!\"}"), "bad base64"},
      {node(meta + ",\"size\":0,\"content\":[],\"xattrs\":{\"user.a\":1}"), "numeric xattr"},
      {node(meta + ",\"size\":0,\"content\":[],\"xattrs\":{\"\":\"\"}"), "empty xattr name"},
      {node("\"type\":\"weird\",\"mode\":420,\"uid\":0,\"gid\":0,\"mtime_ns\":0,\"ctime_ns\":0,"
            "\"inode\":1,\"links\":1"),
       "unknown type"},
      {node(std::string(meta).replace(meta.find("420"), 3, "4096") + ",\"size\":0,\"content\":[]"),
       "mode out of range"},
      {node(std::string(meta).replace(meta.find("\"uid\":0"), 7, "\"uid\":4294967296") +
            ",\"size\":0,\"content\":[]"),
       "uid out of range"},
      {node(std::string(meta).replace(meta.find("\"uid\":0"), 7, "\"uid\":null") +
            ",\"size\":0,\"content\":[]"),
       "null uid"},
      {node(std::string(meta).replace(meta.find("file"), 4, "symlink") + ",\"target\":\"\""),
       "empty symlink target"},
      {node(std::string(meta).replace(meta.find("file"), 4, "chardev")), "device without rdev"},
      {"{\"version\":1,\"nodes\":[],\"next\":\"zz\"}", "bad next"},
      {"{\"version\":1,\"nodes\":[],\"root\":{\"type\":\"file\"}}", "root not a dir"},
  };
  for (const auto& [json, why] : bad) {
    Result<Tree> t = DecodeTree(AsBytes(json), "test tree");
    EXPECT_FALSE(t.ok()) << why;
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), Code::kCorruption) << why;
      EXPECT_NE(t.status().message().find("test tree"), std::string::npos) << why;
    }
  }
  Result<Tree> good = DecodeTree(AsBytes(node(meta + ",\"size\":0,\"content\":[]")), "t");
  EXPECT_TRUE(good.ok()) << good.status().ToString();
}

TEST(FileTreeTest, RoundTripsArbitraryBytesInNames) {
  Node n;
  n.name = "caf\xc3\xa9 \xff\xfe raw";  // not UTF-8
  n.type = NodeType::kSymlink;
  n.target = "tab\there \"quoted\" \\ \x01";
  n.mode = 0777;
  n.mtime_ns = -1'500'000'000'123;  // before 1970
  n.xattrs = {{"user.bin", Bytes{0, 1, 2, 255}}};
  Node f;
  f.name = "plain";
  f.type = NodeType::kFile;
  f.size = 100;
  f.content = {ContentRef{repo::BlobId{1}, 0}, ContentRef{repo::kHoleId, 50}};
  ASSERT_LT(n.name, f.name);  // nodes go in name order
  std::vector<std::string> jsons = {EncodeNodeJson(n), EncodeNodeJson(f)};
  std::string page = EncodeTreePage(jsons, nullptr, nullptr);
  Result<Tree> t = DecodeTree(AsBytes(page), "t");
  ASSERT_TRUE(t.ok()) << t.status().ToString() << "\n" << page;
  ASSERT_EQ(t->nodes.size(), 2u);
  const Node& n2 = t->nodes[0];
  const Node& f2 = t->nodes[1];
  EXPECT_EQ(n2.name, n.name);
  EXPECT_EQ(n2.target, n.target);
  EXPECT_EQ(n2.mtime_ns, n.mtime_ns);
  EXPECT_EQ(n2.xattrs, n.xattrs);
  EXPECT_EQ(f2.size, 100u);
  ASSERT_EQ(f2.content.size(), 2u);
  EXPECT_EQ(f2.content[0].id, repo::BlobId{1});
  EXPECT_EQ(f2.content[1].hole, 50u);
}

}  // namespace
}  // namespace bunker::mover
