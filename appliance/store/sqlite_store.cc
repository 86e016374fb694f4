// SqliteStore: Store on one SQLite connection.
//
// One connection, serialised by mu_: SQLite allows one writer at a time
// anyway, and the appliance's request rate is far below what one connection
// serves. WAL lets external readers (sqlite3 CLI, backups) read meanwhile.

#include <sqlite3.h>

#include <mutex>
#include <utility>

#include "appliance/store/migrations.h"
#include "appliance/store/store.h"

namespace bunker::store {
namespace {

// Converts a SQLite result code into a Status (the one place that does).
Status SqliteStatus(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return AlreadyExists(std::move(msg));
      }
      return FailedPrecondition(std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Corruption(std::move(msg));
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return IOError(std::move(msg));
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return PermissionDenied(std::move(msg));
    default:
      return Internal(std::move(msg));
  }
}

// A prepared statement, finalized on destruction. Bind indexes start at 1,
// column indexes at 0.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status prepared() const {
    return rc_ == SQLITE_OK ? Status::Ok() : SqliteStatus(db_, rc_, "prepare");
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, ByteSpan v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // True when a row is available, false when done; error otherwise.
  Result<bool> Step(std::string_view what) {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    return SqliteStatus(db_, sqlite3_extended_errcode(db_), what);
  }
  Status Exec(std::string_view what) {
    Result<bool> r = Step(what);
    return r.ok() ? Status::Ok() : r.status();
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  Bytes Blob(int col) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
    return p ? Bytes(p, p + sqlite3_column_bytes(stmt_, col)) : Bytes();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

#define PREPARE(var, sql) \
  Stmt var(db_, sql);     \
  RETURN_IF_ERROR(var.prepared())

constexpr std::string_view kUserColumns = "id, name, role, password_hash, created_at";
constexpr std::string_view kTokenColumns =
    "id, user_id, hash, description, created_at, expires_at, revoked";
constexpr std::string_view kLocationColumns =
    "id, name, type, url, config_json, sealed_secrets, owner_id, created_at";
constexpr std::string_view kGrantColumns =
    "id, object_kind, object_id, grantee_kind, grantee_id, access, created_at";

UserRecord ReadUser(Stmt& s) {
  return UserRecord{s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4)};
}
TokenRecord ReadToken(Stmt& s) {
  return TokenRecord{s.Text(0), s.Int(1), s.Blob(2), s.Text(3), s.Int(4), s.Int(5), s.Int(6) != 0};
}
LocationRecord ReadLocation(Stmt& s) {
  return LocationRecord{s.Int(0),  s.Text(1), s.Text(2), s.Text(3),
                        s.Text(4), s.Blob(5), s.Int(6),  s.Int(7)};
}
GrantRecord ReadGrant(Stmt& s) {
  return GrantRecord{s.Int(0), s.Text(1), s.Int(2), s.Text(3), s.Int(4), s.Text(5), s.Int(6)};
}

std::string Sql(std::string_view a, std::string_view b, std::string_view c) {
  return std::string(a) + std::string(b) + std::string(c);
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  Status Init() {
    std::lock_guard lock(mu_);
    sqlite3_busy_timeout(db_, 5000);
    RETURN_IF_ERROR(ExecLocked("PRAGMA journal_mode=WAL", "enable WAL"));
    RETURN_IF_ERROR(ExecLocked("PRAGMA foreign_keys=ON", "enable foreign keys"));
    RETURN_IF_ERROR(ExecLocked("PRAGMA synchronous=NORMAL", "set synchronous"));
    return MigrateLocked();
  }

  int SchemaVersion() override {
    std::lock_guard lock(mu_);
    return version_;
  }

  Result<int64_t> CreateUser(const UserRecord& u) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)");
    s.Bind(1, u.name).Bind(2, u.role).Bind(3, u.password_hash).Bind(4, u.created_at);
    RETURN_IF_ERROR(s.Exec("create user \"" + u.name + "\""));
    return sqlite3_last_insert_rowid(db_);
  }
  Result<UserRecord> GetUser(int64_t id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kUserColumns, " FROM users WHERE id = ?"));
    s.Bind(1, id);
    return One<UserRecord>(s, ReadUser, "user " + std::to_string(id));
  }
  Result<UserRecord> FindUserByName(std::string_view name) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kUserColumns, " FROM users WHERE name = ?"));
    s.Bind(1, name);
    return One<UserRecord>(s, ReadUser, "user \"" + std::string(name) + "\"");
  }
  Result<std::vector<UserRecord>> ListUsers() override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kUserColumns, " FROM users ORDER BY id"));
    return All<UserRecord>(s, ReadUser, "list users");
  }
  Result<int64_t> CountUsers() override {
    std::lock_guard lock(mu_);
    PREPARE(s, "SELECT COUNT(*) FROM users");
    ASSIGN_OR_RETURN(bool row, s.Step("count users"));
    return row ? s.Int(0) : 0;
  }

  Result<int64_t> CreateGroup(const GroupRecord& g) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE", "begin"));
    int64_t id = 0;
    Status st = [&]() -> Status {
      PREPARE(s, "INSERT INTO groups (name, created_at) VALUES (?, ?)");
      s.Bind(1, g.name).Bind(2, g.created_at);
      RETURN_IF_ERROR(s.Exec("create group \"" + g.name + "\""));
      id = sqlite3_last_insert_rowid(db_);
      for (int64_t member : g.member_ids) {
        PREPARE(m, "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)");
        m.Bind(1, id).Bind(2, member);
        RETURN_IF_ERROR(m.Exec("add member " + std::to_string(member)));
      }
      return Status::Ok();
    }();
    if (!st.ok()) {
      ExecLocked("ROLLBACK", "rollback").IgnoreError();
      return st;
    }
    RETURN_IF_ERROR(ExecLocked("COMMIT", "commit"));
    return id;
  }
  Result<GroupRecord> GetGroup(int64_t id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "SELECT id, name, created_at FROM groups WHERE id = ?");
    s.Bind(1, id);
    return GroupLocked(s, "group " + std::to_string(id));
  }
  Result<GroupRecord> FindGroupByName(std::string_view name) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "SELECT id, name, created_at FROM groups WHERE name = ?");
    s.Bind(1, name);
    return GroupLocked(s, "group \"" + std::string(name) + "\"");
  }
  Result<std::vector<GroupRecord>> ListGroups() override {
    std::lock_guard lock(mu_);
    PREPARE(s, "SELECT id FROM groups ORDER BY id");
    std::vector<int64_t> ids;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step("list groups"));
      if (!row) {
        break;
      }
      ids.push_back(s.Int(0));
    }
    std::vector<GroupRecord> out;
    for (int64_t id : ids) {
      PREPARE(g, "SELECT id, name, created_at FROM groups WHERE id = ?");
      g.Bind(1, id);
      ASSIGN_OR_RETURN(GroupRecord rec, GroupLocked(g, "group " + std::to_string(id)));
      out.push_back(std::move(rec));
    }
    return out;
  }
  Result<std::vector<int64_t>> GroupsOfUser(int64_t user_id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id");
    s.Bind(1, user_id);
    std::vector<int64_t> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step("groups of user"));
      if (!row) {
        return out;
      }
      out.push_back(s.Int(0));
    }
  }

  Status CreateToken(const TokenRecord& t) override {
    std::lock_guard lock(mu_);
    PREPARE(s,
            "INSERT INTO tokens (id, user_id, hash, description, created_at, expires_at, revoked) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.Bind(1, t.id).Bind(2, t.user_id).Bind(3, ByteSpan(t.hash)).Bind(4, t.description);
    s.Bind(5, t.created_at).Bind(6, t.expires_at).Bind(7, int64_t{t.revoked ? 1 : 0});
    return s.Exec("create token");
  }
  Result<TokenRecord> FindTokenByHash(ByteSpan hash) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kTokenColumns, " FROM tokens WHERE hash = ?"));
    s.Bind(1, hash);
    return One<TokenRecord>(s, ReadToken, "token");
  }
  Result<std::vector<TokenRecord>> ListTokens(std::optional<int64_t> user_id) override {
    std::lock_guard lock(mu_);
    if (user_id) {
      PREPARE(s, Sql("SELECT ", kTokenColumns, " FROM tokens WHERE user_id = ? ORDER BY rowid"));
      s.Bind(1, *user_id);
      return All<TokenRecord>(s, ReadToken, "list tokens");
    }
    PREPARE(s, Sql("SELECT ", kTokenColumns, " FROM tokens ORDER BY rowid"));
    return All<TokenRecord>(s, ReadToken, "list tokens");
  }
  Result<TokenRecord> GetToken(std::string_view id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kTokenColumns, " FROM tokens WHERE id = ?"));
    s.Bind(1, id);
    return One<TokenRecord>(s, ReadToken, "token " + std::string(id));
  }
  Status RevokeToken(std::string_view id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "UPDATE tokens SET revoked = 1 WHERE id = ?");
    s.Bind(1, id);
    RETURN_IF_ERROR(s.Exec("revoke token"));
    if (sqlite3_changes(db_) == 0) {
      return NotFound("token " + std::string(id) + " not found");
    }
    return Status::Ok();
  }

  Result<int64_t> CreateLocation(const LocationRecord& l) override {
    std::lock_guard lock(mu_);
    PREPARE(s,
            "INSERT INTO locations (name, type, url, config_json, sealed_secrets, owner_id, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.Bind(1, l.name).Bind(2, l.type).Bind(3, l.url).Bind(4, l.config_json);
    s.Bind(5, ByteSpan(l.sealed_secrets)).Bind(6, l.owner_id).Bind(7, l.created_at);
    RETURN_IF_ERROR(s.Exec("create backup location \"" + l.name + "\""));
    return sqlite3_last_insert_rowid(db_);
  }
  Result<LocationRecord> GetLocation(int64_t id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kLocationColumns, " FROM locations WHERE id = ?"));
    s.Bind(1, id);
    return One<LocationRecord>(s, ReadLocation, "backup location " + std::to_string(id));
  }
  Result<std::vector<LocationRecord>> ListLocations() override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kLocationColumns, " FROM locations ORDER BY id"));
    return All<LocationRecord>(s, ReadLocation, "list backup locations");
  }
  Status DeleteLocation(int64_t id) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE", "begin"));
    Status st = [&]() -> Status {
      PREPARE(g, "DELETE FROM grants WHERE object_kind = ? AND object_id = ?");
      g.Bind(1, kKindLocation).Bind(2, id);
      RETURN_IF_ERROR(g.Exec("delete grants"));
      PREPARE(s, "DELETE FROM locations WHERE id = ?");
      s.Bind(1, id);
      RETURN_IF_ERROR(s.Exec("delete backup location"));
      if (sqlite3_changes(db_) == 0) {
        return NotFound("backup location " + std::to_string(id) + " not found");
      }
      return Status::Ok();
    }();
    if (!st.ok()) {
      ExecLocked("ROLLBACK", "rollback").IgnoreError();
      return st;
    }
    return ExecLocked("COMMIT", "commit");
  }

  Result<int64_t> CreateGrant(const GrantRecord& g) override {
    std::lock_guard lock(mu_);
    PREPARE(s,
            "INSERT INTO grants (object_kind, object_id, grantee_kind, grantee_id, access, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)");
    s.Bind(1, g.object_kind).Bind(2, g.object_id).Bind(3, g.grantee_kind).Bind(4, g.grantee_id);
    s.Bind(5, g.access).Bind(6, g.created_at);
    RETURN_IF_ERROR(s.Exec("create grant"));
    return sqlite3_last_insert_rowid(db_);
  }
  Result<std::vector<GrantRecord>> ListGrants(std::string_view object_kind,
                                              int64_t object_id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", kGrantColumns,
                   " FROM grants WHERE object_kind = ? AND object_id = ? ORDER BY id"));
    s.Bind(1, object_kind).Bind(2, object_id);
    return All<GrantRecord>(s, ReadGrant, "list grants");
  }
  Status DeleteGrant(int64_t id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "DELETE FROM grants WHERE id = ?");
    s.Bind(1, id);
    RETURN_IF_ERROR(s.Exec("delete grant"));
    if (sqlite3_changes(db_) == 0) {
      return NotFound("grant " + std::to_string(id) + " not found");
    }
    return Status::Ok();
  }

 private:
  Status ExecLocked(const char* sql, std::string_view what) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) {
      return Status::Ok();
    }
    sqlite3_free(err);
    return SqliteStatus(db_, sqlite3_extended_errcode(db_), what);
  }

  Status MigrateLocked() {
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE", "begin migration"));
    Status st = [&]() -> Status {
      RETURN_IF_ERROR(
          ExecLocked("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                     "schema_version"));
      PREPARE(q, "SELECT MAX(version) FROM schema_version");
      ASSIGN_OR_RETURN(bool row, q.Step("read schema version"));
      int current = row ? static_cast<int>(q.Int(0)) : 0;
      if (current > LatestSchemaVersion()) {
        return FailedPrecondition("database schema version " + std::to_string(current) +
                                  " is newer than this bunkerd knows (" +
                                  std::to_string(LatestSchemaVersion()) + ")");
      }
      for (const Migration& m : Migrations()) {
        if (m.version <= current) {
          continue;
        }
        RETURN_IF_ERROR(ExecLocked(m.sql, "migration " + std::to_string(m.version)));
        PREPARE(v, "DELETE FROM schema_version");
        RETURN_IF_ERROR(v.Exec("record schema version"));
        PREPARE(w, "INSERT INTO schema_version (version) VALUES (?)");
        w.Bind(1, int64_t{m.version});
        RETURN_IF_ERROR(w.Exec("record schema version"));
        current = m.version;
      }
      version_ = current;
      return Status::Ok();
    }();
    if (!st.ok()) {
      ExecLocked("ROLLBACK", "rollback migration").IgnoreError();
      return st;
    }
    return ExecLocked("COMMIT", "commit migration");
  }

  template <typename T, typename F>
  Result<T> One(Stmt& s, F read, const std::string& what) {
    ASSIGN_OR_RETURN(bool row, s.Step(what));
    if (!row) {
      return NotFound(what + " not found");
    }
    return read(s);
  }
  template <typename T, typename F>
  Result<std::vector<T>> All(Stmt& s, F read, std::string_view what) {
    std::vector<T> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step(what));
      if (!row) {
        return out;
      }
      out.push_back(read(s));
    }
  }
  Result<GroupRecord> GroupLocked(Stmt& s, const std::string& what) {
    ASSIGN_OR_RETURN(bool row, s.Step(what));
    if (!row) {
      return NotFound(what + " not found");
    }
    GroupRecord g{s.Int(0), s.Text(1), {}, s.Int(2)};
    PREPARE(m, "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id");
    m.Bind(1, g.id);
    while (true) {
      ASSIGN_OR_RETURN(bool mrow, m.Step("group members"));
      if (!mrow) {
        return g;
      }
      g.member_ids.push_back(m.Int(0));
    }
  }

  std::mutex mu_;
  sqlite3* const db_;  // guarded by mu_
  int version_ = 0;    // guarded by mu_
};

}  // namespace

int LatestSchemaVersion() { return Migrations().back().version; }

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteStatus(db, rc, "open database " + path);
    sqlite3_close_v2(db);
    return st;
  }
  sqlite3_extended_result_codes(db, 1);
  auto store = std::make_unique<SqliteStore>(db);
  RETURN_IF_ERROR_CTX(store->Init(), "database " + path);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bunker::store
