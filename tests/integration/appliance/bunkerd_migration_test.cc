// Upgrading in place: a database at the previous schema version (v2, built
// here by the released migration steps 1 and 2, with rows as that release
// wrote them) is served by the current bunkerd, which migrates it on start;
// the old users, token, group, location and grant are intact and the new
// resources work on top of them.

#include <sqlite3.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>

#include "appliance/auth/password.h"
#include "appliance/auth/token.h"
#include "appliance/store/migrations.h"
#include "appliance/store/store.h"
#include "tests/integration/appliance/bunkerd_fixture.h"

namespace bunker::testing {
namespace {

using json = nlohmann::json;

constexpr int kPreviousVersion = 2;

class BunkerdMigrationTest : public BunkerdFixture {
 protected:
  void PrepareData() override {
    std::filesystem::create_directories(data_);
    ASSERT_EQ(chmod(data_.c_str(), 0700), 0);
    auto loc = dir_.MakeSubdir("legacy");
    ASSERT_TRUE(loc.ok());
    auto token = auth::IssueToken();
    ASSERT_TRUE(token.ok());
    carol_token_ = token->secret;

    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((data_ + "/bunker.db").c_str(), &db), SQLITE_OK);
    auto exec = [&](const std::string& sql) {
      char* err = nullptr;
      int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
      std::string msg = err ? err : "";
      sqlite3_free(err);
      ASSERT_EQ(rc, SQLITE_OK) << msg << "\n" << sql;
    };
    ASSERT_NO_FATAL_FAILURE(exec("CREATE TABLE schema_version (version INTEGER NOT NULL)"));
    for (const store::Migration& m : store::Migrations()) {
      if (m.version <= kPreviousVersion) {
        ASSERT_NO_FATAL_FAILURE(exec(m.sql));
      }
    }
    std::string hex;
    for (uint8_t b : token->hash) {
      static const char* kHex = "0123456789abcdef";
      hex += kHex[b >> 4];
      hex += kHex[b & 15];
    }
    int64_t far = std::time(nullptr) + 86400;
    ASSERT_NO_FATAL_FAILURE(
        exec("INSERT INTO schema_version VALUES (" + std::to_string(kPreviousVersion) +
             ");"
             "INSERT INTO users VALUES (1, 'admin', 'admin', '" +
             *auth::HashPassword("admin-password") +
             "', 10);"
             "INSERT INTO users VALUES (2, 'carol', 'user', '" +
             *auth::HashPassword("carol-password") +
             "', 11);"
             "INSERT INTO users VALUES (3, 'dave', 'user', '" +
             *auth::HashPassword("dave-password") +
             "', 12);"
             "INSERT INTO tokens (id, user_id, hash, created_at, expires_at, revoked, description) "
             "VALUES ('" +
             token->id + "', 2, x'" + hex + "', 13, " + std::to_string(far) +
             ", 0, 'old cli');"
             "INSERT INTO groups VALUES (1, 'ops', 14);"
             "INSERT INTO group_members VALUES (1, 3);"
             "INSERT INTO locations VALUES (1, 'legacy', 'file', 'file://" +
             loc->string() +
             "', '{\"has_credentials\":false}', NULL, 2, 15);"
             "INSERT INTO grants VALUES (1, 'backup-location', 1, 'group', 1, 'READ', 16);"));
    sqlite3_close(db);
  }

  int SchemaVersionOnDisk() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((data_ + "/bunker.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT MAX(version) FROM schema_version", -1, &s, nullptr);
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
  }

  std::string carol_token_;
};

TEST_F(BunkerdMigrationTest, PreviousVersionDatabaseIsMigratedWithItsObjectsIntact) {
  ASSERT_LT(kPreviousVersion, store::LatestSchemaVersion());
  EXPECT_EQ(SchemaVersionOnDisk(), store::LatestSchemaVersion());

  // The token issued before the upgrade still authenticates.
  ApiReply me = Curl("GET", "/api/v1/users/me", carol_token_);
  ASSERT_EQ(me.status, 200) << me.raw;
  EXPECT_EQ(me.body["name"], "carol");
  std::string dave = Login("dave", "dave-password");
  ASSERT_FALSE(dave.empty());

  ApiReply loc = Curl("GET", "/api/v1/backup-locations/1", carol_token_);
  ASSERT_EQ(loc.status, 200) << loc.raw;
  EXPECT_EQ(loc.body["name"], "legacy");
  EXPECT_EQ(loc.body["owner"], 2);
  EXPECT_EQ(loc.body["created_at"], 15);
  ApiReply grants = Curl("GET", "/api/v1/backup-locations/1/grants", carol_token_);
  ASSERT_EQ(grants.body["items"].size(), 1u) << grants.raw;
  EXPECT_EQ(grants.body["items"][0]["group_id"], 1);
  EXPECT_EQ(Curl("GET", "/api/v1/backup-locations/1", dave).body["access"], "READ");
  ApiReply group = Curl("GET", "/api/v1/groups/1", admin_);
  EXPECT_EQ(group.body["member_ids"], json::array({3})) << group.raw;
  ApiReply tokens = Curl("GET", "/api/v1/tokens", carol_token_);
  ASSERT_FALSE(tokens.body["items"].empty());
  EXPECT_EQ(tokens.body["items"][0]["description"], "old cli");

  // The new resources work on the migrated database, with the old objects.
  ApiReply cluster = Curl("POST", "/api/v1/clusters", carol_token_,
                          json{{"name", "prod"},
                               {"kubeconfig",
                                "current-context: x\nclusters:\n- name: x\n  cluster:\n    server: "
                                "https://127.0.0.1:1\ncontexts:\n- name: x\n  context:\n    "
                                "cluster: x\n"}});
  ASSERT_EQ(cluster.status, 201) << cluster.raw;
  ApiReply backup = Curl("POST", "/api/v1/backups", carol_token_,
                         json{{"name", "first"},
                              {"cluster_id", cluster.body["id"]},
                              {"location_id", 1},
                              {"namespaces", {"shop"}}});
  ASSERT_EQ(backup.status, 201) << backup.raw;

  // And everything survives a restart of the migrated database.
  EXPECT_EQ(server_.Stop(), "exit 0");
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_EQ(
      Curl("GET", "/api/v1/backups/" + std::to_string(backup.body["id"].get<int>()), carol_token_)
          .body["state"],
      "pending");
  EXPECT_EQ(Curl("GET", "/api/v1/backup-locations/1", carol_token_).body["name"], "legacy");
}

}  // namespace
}  // namespace bunker::testing
