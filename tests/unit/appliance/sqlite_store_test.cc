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
  // The clash is named in the API's words, not SQLite's.
  EXPECT_NE(dup.status().message().find("name is already taken"), std::string::npos)
      << dup.status().ToString();
  EXPECT_EQ(dup.status().message().find("UNIQUE constraint"), std::string::npos)
      << dup.status().ToString();
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

TEST_F(SqliteStoreTest, ObjectsKeepReferencesAndReferencedObjectsStay) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t owner = *store->CreateUser(User("owner"));
  LocationRecord loc{0, "nas", "file", "file:///srv", "{}", {}, owner, 1};
  int64_t loc_id = *store->CreateLocation(loc);
  ObjectRecord cluster;
  cluster.name = "prod";
  cluster.owner_id = owner;
  cluster.spec_json = R"({"data_mover":"csi"})";
  cluster.sealed_secrets = Bytes{1, 2, 3};
  auto cluster_id = store->CreateObject(Kind::kCluster, cluster);
  ASSERT_TRUE(cluster_id.ok()) << cluster_id.status().ToString();
  EXPECT_EQ(store->CreateObject(Kind::kCluster, cluster).status().code(), Code::kAlreadyExists);
  ObjectRecord rule;
  rule.name = "freeze";
  rule.owner_id = owner;
  int64_t rule_id = *store->CreateObject(Kind::kRule, rule);

  ObjectRecord backup;
  backup.name = "nightly";
  backup.owner_id = owner;
  backup.state = "pending";
  backup.status_json = R"({"bytes_total":100,"bytes_new":40})";
  backup.refs = {{"cluster_id", *cluster_id}, {"location_id", loc_id}, {"pre_rule_id", rule_id}};
  auto backup_id = store->CreateObject(Kind::kBackup, backup);
  ASSERT_TRUE(backup_id.ok()) << backup_id.status().ToString();
  auto got = store->GetObject(Kind::kBackup, *backup_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->Ref("cluster_id"), *cluster_id);
  EXPECT_EQ(got->Ref("post_rule_id"), 0);
  EXPECT_EQ(got->state, "pending");
  EXPECT_EQ(store->GetObject(Kind::kCluster, *cluster_id)->sealed_secrets, (Bytes{1, 2, 3}));

  backup.state = "bogus";
  backup.name = "other";
  EXPECT_FALSE(store->CreateObject(Kind::kBackup, backup).ok());  // CHECK on state

  // In use: the cluster and the location cannot go; a rule can (reference cleared).
  EXPECT_EQ(store->DeleteObject(Kind::kCluster, *cluster_id).code(), Code::kFailedPrecondition);
  EXPECT_EQ(store->DeleteLocation(loc_id).code(), Code::kFailedPrecondition);
  EXPECT_TRUE(store->DeleteObject(Kind::kRule, rule_id).ok());
  EXPECT_EQ(store->GetObject(Kind::kBackup, *backup_id)->Ref("pre_rule_id"), 0);

  // Grants and events go with their object.
  GrantRecord g{0, std::string(KindName(Kind::kBackup)), *backup_id, "user", owner, "READ", 1};
  ASSERT_TRUE(store->CreateGrant(g).ok());
  ASSERT_TRUE(store->AppendEvent(Kind::kBackup, *backup_id, {0, 5, "info", "created"}).ok());
  EXPECT_EQ(store->ListEvents(Kind::kBackup, *backup_id)->size(), 1u);
  EXPECT_EQ((*store->CountByState(Kind::kBackup))["pending"], 1);
  EXPECT_EQ(*store->SumStatusField(Kind::kBackup, "bytes_new"), 40);
  ASSERT_TRUE(store->DeleteObject(Kind::kBackup, *backup_id).ok());
  EXPECT_TRUE(store->ListGrants(KindName(Kind::kBackup), *backup_id)->empty());
  EXPECT_TRUE(store->ListEvents(Kind::kBackup, *backup_id)->empty());
  EXPECT_EQ(store->DeleteObject(Kind::kBackup, *backup_id).code(), Code::kNotFound);
  EXPECT_TRUE(store->DeleteObject(Kind::kCluster, *cluster_id).ok());
}

TEST_F(SqliteStoreTest, TheLastAdminStaysAndOwnersKeepTheirObjects) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  UserRecord admin = User("root", "admin");
  admin.id = *store->CreateUser(admin);
  UserRecord bob = User("bob");
  bob.id = *store->CreateUser(bob);
  EXPECT_EQ(store->DeleteUser(admin.id).code(), Code::kFailedPrecondition);
  admin.role = "user";
  EXPECT_EQ(store->UpdateUser(admin).code(), Code::kFailedPrecondition);
  bob.role = "admin";
  ASSERT_TRUE(store->UpdateUser(bob).ok());
  EXPECT_TRUE(store->UpdateUser(admin).ok());  // another admin exists now

  LocationRecord loc{0, "nas", "file", "file:///srv", "{}", {}, bob.id, 1};
  int64_t loc_id = *store->CreateLocation(loc);
  EXPECT_EQ(store->DeleteUser(bob.id).code(), Code::kFailedPrecondition);  // owns nas, last admin
  admin.role = "admin";
  ASSERT_TRUE(store->UpdateUser(admin).ok());
  EXPECT_EQ(store->DeleteUser(bob.id).code(), Code::kFailedPrecondition);  // still owns nas
  ASSERT_TRUE(store->DeleteLocation(loc_id).ok());
  GroupRecord g{0, "ops", {bob.id}, 1};
  int64_t gid = *store->CreateGroup(g);
  ASSERT_TRUE(store->DeleteUser(bob.id).ok());
  EXPECT_TRUE(store->GetGroup(gid)->member_ids.empty());
  EXPECT_EQ(store->GetUser(bob.id).status().code(), Code::kNotFound);
  EXPECT_EQ(store->RemoveGroupMember(gid, bob.id).code(), Code::kNotFound);
  ASSERT_TRUE(store->DeleteGroup(gid).ok());
  EXPECT_EQ(store->DeleteGroup(gid).code(), Code::kNotFound);
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
