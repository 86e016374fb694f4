#include <gtest/gtest.h>
#include <sqlite3.h>

#include "appliance/store/store.h"
#include "tests/harness/temp_dir.h"

namespace bunker::store {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::Create("store-test");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
    path_ = (dir_.path() / "bunker.db").string();
  }

  std::unique_ptr<Store> Open() {
    auto store = OpenSqliteStore(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Runs raw SQL against the database file, outside the Store.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  testing::TempDir dir_;
  std::string path_;
};

UserRecord User(std::string name, std::string role = "user") {
  return UserRecord{0, std::move(name), std::move(role), "scrypt$hash", 1700000000};
}

TEST_F(SqliteStoreTest, NewDatabaseIsAtLatestVersion) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), LatestSchemaVersion());
  EXPECT_GE(LatestSchemaVersion(), 2);
}

TEST_F(SqliteStoreTest, UsersRoundTripAndNamesAreUnique) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto id = store->CreateUser(User("alice", "admin"));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto dup = store->CreateUser(User("alice"));
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists) << dup.status().ToString();
  auto got = store->FindUserByName("alice");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, *id);
  EXPECT_EQ(got->role, "admin");
  EXPECT_EQ(store->GetUser(999).status().code(), Code::kNotFound);
  EXPECT_EQ(*store->CountUsers(), 1);
}

TEST_F(SqliteStoreTest, RoleIsChecked) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->CreateUser(User("bob", "root")).ok());
  EXPECT_EQ(*store->CountUsers(), 0);
}

TEST_F(SqliteStoreTest, TokensAreFoundByHashAndRevoked) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t uid = *store->CreateUser(User("alice"));
  TokenRecord t{"tok1", uid, Bytes(32, 7), "cli", 1, 100, false};
  ASSERT_TRUE(store->CreateToken(t).ok());
  auto found = store->FindTokenByHash(Bytes(32, 7));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->id, "tok1");
  EXPECT_EQ(found->description, "cli");
  EXPECT_EQ(store->FindTokenByHash(Bytes(32, 8)).status().code(), Code::kNotFound);
  ASSERT_TRUE(store->RevokeToken("tok1").ok());
  ASSERT_TRUE(store->RevokeToken("tok1").ok());  // idempotent
  EXPECT_TRUE(store->GetToken("tok1")->revoked);
  EXPECT_EQ(store->RevokeToken("nope").code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, TokensOfAnUnknownUserAreRefused) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  TokenRecord t{"tok1", 42, Bytes(32, 7), "", 1, 100, false};
  EXPECT_FALSE(store->CreateToken(t).ok());  // foreign keys are on
}

TEST_F(SqliteStoreTest, DeletingALocationDeletesItsGrants) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t uid = *store->CreateUser(User("alice"));
  int64_t bob = *store->CreateUser(User("bob"));
  LocationRecord l{0, "loc", "file", "file:///x", "{}", Bytes{1, 2, 3}, uid, 5};
  auto lid = store->CreateLocation(l);
  ASSERT_TRUE(lid.ok()) << lid.status().ToString();
  EXPECT_EQ(store->CreateLocation(l).status().code(), Code::kAlreadyExists);
  GrantRecord g{0, std::string(kKindLocation), *lid, "user", bob, "READ", 6};
  ASSERT_TRUE(store->CreateGrant(g).ok());
  EXPECT_EQ(store->CreateGrant(g).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store->ListGrants(kKindLocation, *lid)->size(), 1u);
  EXPECT_EQ(store->GetLocation(*lid)->sealed_secrets, (Bytes{1, 2, 3}));
  ASSERT_TRUE(store->DeleteLocation(*lid).ok());
  EXPECT_EQ(store->DeleteLocation(*lid).code(), Code::kNotFound);
  EXPECT_TRUE(store->ListGrants(kKindLocation, *lid)->empty());
}

TEST_F(SqliteStoreTest, GroupsKeepTheirMembers) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t a = *store->CreateUser(User("alice"));
  int64_t b = *store->CreateUser(User("bob"));
  auto gid = store->CreateGroup(GroupRecord{0, "ops", {a, b}, 1});
  ASSERT_TRUE(gid.ok()) << gid.status().ToString();
  EXPECT_EQ(store->GetGroup(*gid)->member_ids, (std::vector<int64_t>{a, b}));
  EXPECT_EQ(*store->GroupsOfUser(b), (std::vector<int64_t>{*gid}));
  EXPECT_EQ(store->CreateGroup(GroupRecord{0, "ops", {}, 1}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store->CreateGroup(GroupRecord{0, "bad", {999}, 1}).status().code(),
            Code::kFailedPrecondition);  // unknown member: nothing stored
  EXPECT_EQ(store->FindGroupByName("bad").status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, DataSurvivesReopen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateUser(User("alice")).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->FindUserByName("alice").ok());
}

// A database written by the first release (schema v1, created here by hand
// with that release's DDL) upgrades in place and keeps its rows.
TEST_F(SqliteStoreTest, VersionOneDatabaseMigratesInPlace) {
  RawExec(R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')), password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE tokens (id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  hash BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE locations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
  url TEXT NOT NULL, config_json TEXT NOT NULL DEFAULT '{}', sealed_secrets BLOB,
  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
  created_at INTEGER NOT NULL);
INSERT INTO users VALUES (1, 'admin', 'admin', 'scrypt$old', 10);
INSERT INTO tokens VALUES ('t1', 1, x'0102', 10, 20, 0);
INSERT INTO locations VALUES (1, 'nas', 'file', 'file:///srv', '{}', NULL, 1, 11);
)sql");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), LatestSchemaVersion());
  EXPECT_EQ(store->FindUserByName("admin")->password_hash, "scrypt$old");
  auto token = store->GetToken("t1");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->description, "");  // column added by v2
  EXPECT_EQ(store->GetLocation(1)->name, "nas");
  // v2 tables work.
  GrantRecord g{0, std::string(kKindLocation), 1, "user", 1, "FULL", 12};
  EXPECT_TRUE(store->CreateGrant(g).ok());
}

TEST_F(SqliteStoreTest, NewerDatabaseIsRefused) {
  RawExec(
      "CREATE TABLE schema_version (version INTEGER NOT NULL);"
      "INSERT INTO schema_version VALUES (999);");
  auto store = OpenSqliteStore(path_);
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition) << store.status().ToString();
}

}  // namespace
}  // namespace bunker::store
