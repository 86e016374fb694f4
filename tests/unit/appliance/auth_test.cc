#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "appliance/auth/access.h"
#include "appliance/auth/login_throttle.h"
#include "appliance/auth/password.h"
#include "appliance/auth/secret_box.h"
#include "appliance/auth/token.h"
#include "tests/harness/temp_dir.h"

namespace bunker::auth {
namespace {

TEST(PasswordTest, VerifiesTheRightPasswordOnly) {
  auto hash = HashPassword("correct horse");
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(hash->rfind("scrypt$15$8$1$", 0), 0u) << *hash;
  EXPECT_TRUE(VerifyPassword("correct horse", *hash));
  EXPECT_FALSE(VerifyPassword("correct horse ", *hash));
  EXPECT_FALSE(VerifyPassword("", *hash));
}

TEST(PasswordTest, SaltsDiffer) { EXPECT_NE(*HashPassword("same"), *HashPassword("same")); }

TEST(PasswordTest, MalformedEncodingsNeverVerify) {
  for (const char* bad : {"", "scrypt", "scrypt$15$8$1$$", "plain$15$8$1$AAAA$AAAA",
                          "scrypt$99$8$1$AAAA$AAAA", "scrypt$x$8$1$AAAA$AAAA"}) {
    EXPECT_FALSE(VerifyPassword("", bad)) << bad;
  }
}

TEST(TokenTest, SecretsAreRandomAndOnlyTheirHashIsKept) {
  auto a = IssueToken();
  auto b = IssueToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->secret.size(), 4u + 64u);
  EXPECT_EQ(a->secret.rfind("bkr_", 0), 0u);
  EXPECT_NE(a->secret, b->secret);
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(a->hash, HashTokenSecret(a->secret));
  EXPECT_EQ(a->hash.size(), 32u);
}

TEST(SecretBoxTest, KeyFileIsCreatedPrivateAndReused) {
  auto dir = testing::TempDir::Create("secretbox");
  ASSERT_TRUE(dir.ok());
  std::string path = (dir->path() / "secret.key").string();
  auto box = SecretBox::OpenOrCreate(path);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto sealed = (*box)->Seal("s3cr3t", "backup-location/1");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(std::string(AsChars(*sealed)).find("s3cr3t"), std::string::npos);
  auto again = SecretBox::OpenOrCreate(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->Open(*sealed, "backup-location/1"), "s3cr3t");
  EXPECT_EQ((*again)->Open(*sealed, "backup-location/2").status().code(), Code::kCorruption);
}

TEST(SecretBoxTest, ReadableKeyFileIsRefused) {
  auto dir = testing::TempDir::Create("secretbox");
  ASSERT_TRUE(dir.ok());
  std::string path = (dir->path() / "secret.key").string();
  ASSERT_TRUE(SecretBox::OpenOrCreate(path).ok());
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(SecretBox::OpenOrCreate(path).status().code(), Code::kPermissionDenied);
}

store::GrantRecord Grant(std::string kind, int64_t id, std::string access) {
  return store::GrantRecord{1, "backup-location", 7, std::move(kind), id, std::move(access), 0};
}

TEST(AccessTest, OwnerAdminGranteesAndOthers) {
  const int64_t owner = 1;
  std::vector<store::GrantRecord> grants = {Grant("user", 2, "READ"), Grant("user", 3, "FULL"),
                                            Grant("group", 50, "READ"), Grant("group", 51, "FULL")};
  Principal p;
  p.user_id = owner;
  EXPECT_EQ(EffectiveAccess(p, owner, grants), Access::kOwner);
  p.user_id = 2;
  EXPECT_EQ(EffectiveAccess(p, owner, grants), Access::kRead);
  p.user_id = 3;
  EXPECT_EQ(EffectiveAccess(p, owner, grants), Access::kFull);
  p.user_id = 4;
  EXPECT_EQ(EffectiveAccess(p, owner, grants), Access::kNone);
  p.group_ids = {50};
  EXPECT_EQ(EffectiveAccess(p, owner, grants), Access::kRead);
  p.group_ids = {50, 51};  // the highest grant wins
  EXPECT_EQ(EffectiveAccess(p, owner, grants), Access::kFull);
  Principal admin;
  admin.user_id = 9;
  admin.role = Role::kAdmin;
  EXPECT_EQ(EffectiveAccess(admin, owner, {}), Access::kOwner);
}

}  // namespace
}  // namespace bunker::auth

namespace bunker::auth {
namespace {

TEST(LoginThrottleTest, RefusesAfterTooManyFailuresUntilTheWindowPasses) {
  LoginThrottle t(3, 60);
  EXPECT_EQ(t.RetryAfter("alice@h", 100), 0);
  t.RecordFailure("alice@h", 100);
  t.RecordFailure("alice@h", 110);
  EXPECT_EQ(t.RetryAfter("alice@h", 110), 0);
  t.RecordFailure("alice@h", 120);
  EXPECT_EQ(t.RetryAfter("alice@h", 120), 40);     // the failure at 100 leaves at 160
  EXPECT_EQ(t.RetryAfter("alice@other", 120), 0);  // other clients are not locked out
  EXPECT_EQ(t.RetryAfter("alice@h", 160), 0);
  t.RecordSuccess("alice@h");
  t.RecordFailure("alice@h", 161);
  EXPECT_EQ(t.RetryAfter("alice@h", 161), 0);
}

}  // namespace
}  // namespace bunker::auth
