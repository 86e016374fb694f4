// SqliteStore: Store on one SQLite connection.
//
// One connection, serialised by mu_: SQLite allows one writer at a time
// anyway, and the appliance's request rate is far below what one connection
// serves. WAL lets external readers (sqlite3 CLI, backups) read meanwhile.

#include <sqlite3.h>

#include <algorithm>
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
        // "UNIQUE constraint failed: table.col[, table.col]" says which field
        // clashes, in SQL words; callers get "name is already taken", or
        // "already exists" when the clash is over several fields (a grant).
        constexpr std::string_view kPrefix = "UNIQUE constraint failed: ";
        std::string_view detail = db ? sqlite3_errmsg(db) : "";
        if (detail.substr(0, kPrefix.size()) == kPrefix) {
          detail.remove_prefix(kPrefix.size());
          if (detail.find(',') != std::string_view::npos) {
            return AlreadyExists(std::string(what) + ": already exists");
          }
          if (size_t dot = detail.rfind('.'); dot != std::string_view::npos) {
            detail.remove_prefix(dot + 1);
          }
          return AlreadyExists(std::string(what) + ": " + std::string(detail) +
                               " is already taken");
        }
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
  // 0 binds NULL (an absent reference).
  Stmt& BindRef(int i, int64_t v) {
    if (v == 0) {
      sqlite3_bind_null(stmt_, i);
    } else {
      sqlite3_bind_int64(stmt_, i, v);
    }
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

// Steps a one-row query; an error or no row returns from the function.
#define ASSERT_OR_STEP(stmt, what)                                \
  do {                                                            \
    Result<bool> step_ = (stmt).Step(what);                       \
    if (!step_.ok()) return step_.status();                       \
    if (!*step_) return Internal(std::string(what) + ": no row"); \
  } while (0)

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
  Result<ListPage<UserRecord>> ListUsersPage(const ListQuery& q) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(CheckPage(q));
    PREPARE(s, Sql("SELECT ", kUserColumns,
                   Sql(" FROM users WHERE id > ?1", q.name ? " AND name = ?3" : "",
                       " ORDER BY id LIMIT ?2")));
    s.Bind(1, q.after).Bind(2, q.limit + 1);
    if (q.name) {
      s.Bind(3, *q.name);
    }
    ASSIGN_OR_RETURN(std::vector<UserRecord> rows, All<UserRecord>(s, ReadUser, "list users"));
    return Paged(std::move(rows), {}, q.limit);
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
  Result<ListPage<GroupRecord>> ListGroupsPage(const ListQuery& q) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(CheckPage(q));
    // Members come along as "id,id,…" (group_concat's order is unspecified:
    // sorted below).
    PREPARE(s, Sql("SELECT id, name, created_at, (SELECT group_concat(m.user_id) FROM "
                   "group_members m WHERE m.group_id = groups.id) FROM groups WHERE id > ?1",
                   q.name ? " AND name = ?3" : "", " ORDER BY id LIMIT ?2"));
    s.Bind(1, q.after).Bind(2, q.limit + 1);
    if (q.name) {
      s.Bind(3, *q.name);
    }
    auto read = [](Stmt& r) {
      GroupRecord g{r.Int(0), r.Text(1), {}, r.Int(2)};
      std::string members = r.Text(3);
      for (size_t i = 0; i < members.size();) {
        size_t end = members.find(',', i);
        if (end == std::string::npos) {
          end = members.size();
        }
        g.member_ids.push_back(std::stoll(members.substr(i, end - i)));
        i = end + 1;
      }
      std::sort(g.member_ids.begin(), g.member_ids.end());
      return g;
    };
    ASSIGN_OR_RETURN(std::vector<GroupRecord> rows, All<GroupRecord>(s, read, "list groups"));
    return Paged(std::move(rows), {}, q.limit);
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
  Result<ListPage<LocationRecord>> ListLocationsPage(const Viewer& viewer,
                                                     const ListQuery& q) override {
    std::lock_guard lock(mu_);
    if (q.state || !q.refs.empty()) {
      return InvalidArgument("backup locations have no state or references to filter on");
    }
    return OwnedPageLocked<LocationRecord>("locations", kKindLocation, kLocationColumns, 8, viewer,
                                           q, ReadLocation, "list backup locations");
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
      Status st = s.Exec("delete backup location");
      if (!st.ok() && st.code() == Code::kFailedPrecondition) {
        return FailedPrecondition("backup location " + std::to_string(id) +
                                  " is still used by backups; delete them first");
      }
      RETURN_IF_ERROR(st);
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

  Status UpdateLocation(const LocationRecord& l) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "UPDATE locations SET name = ?, sealed_secrets = ? WHERE id = ?");
    s.Bind(1, l.name).Bind(2, ByteSpan(l.sealed_secrets)).Bind(3, l.id);
    RETURN_IF_ERROR(s.Exec("update backup location \"" + l.name + "\""));
    return ChangedOne("backup location " + std::to_string(l.id));
  }

  Status UpdateUser(const UserRecord& u) override {
    std::lock_guard lock(mu_);
    return TxLocked([&]() -> Status {
      if (u.role != "admin") {
        RETURN_IF_ERROR(KeepAnAdminLocked(u.id));
      }
      PREPARE(s, "UPDATE users SET role = ?, password_hash = ? WHERE id = ?");
      s.Bind(1, u.role).Bind(2, u.password_hash).Bind(3, u.id);
      RETURN_IF_ERROR(s.Exec("update user " + std::to_string(u.id)));
      return ChangedOne("user " + std::to_string(u.id));
    });
  }
  Status DeleteUser(int64_t id) override {
    std::lock_guard lock(mu_);
    return TxLocked([&]() -> Status {
      RETURN_IF_ERROR(KeepAnAdminLocked(id));
      for (std::string_view table :
           {"locations", "clusters", "schedule_policies", "rules", "backups", "restores"}) {
        PREPARE(o, Sql("SELECT COUNT(*) FROM ", table, " WHERE owner_id = ?"));
        o.Bind(1, id);
        ASSERT_OR_STEP(o, "owned objects");
        if (o.Int(0) > 0) {
          return FailedPrecondition("user " + std::to_string(id) + " still owns " +
                                    std::to_string(o.Int(0)) + " object(s) in " +
                                    std::string(table) + "; delete them first");
        }
      }
      PREPARE(g, "DELETE FROM grants WHERE grantee_kind = 'user' AND grantee_id = ?");
      g.Bind(1, id);
      RETURN_IF_ERROR(g.Exec("delete grants to user"));
      PREPARE(s, "DELETE FROM users WHERE id = ?");
      s.Bind(1, id);
      RETURN_IF_ERROR(s.Exec("delete user"));
      return ChangedOne("user " + std::to_string(id));
    });
  }

  Status UpdateGroup(const GroupRecord& g) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "UPDATE groups SET name = ? WHERE id = ?");
    s.Bind(1, g.name).Bind(2, g.id);
    RETURN_IF_ERROR(s.Exec("update group \"" + g.name + "\""));
    return ChangedOne("group " + std::to_string(g.id));
  }
  Status DeleteGroup(int64_t id) override {
    std::lock_guard lock(mu_);
    return TxLocked([&]() -> Status {
      PREPARE(g, "DELETE FROM grants WHERE grantee_kind = 'group' AND grantee_id = ?");
      g.Bind(1, id);
      RETURN_IF_ERROR(g.Exec("delete grants to group"));
      PREPARE(s, "DELETE FROM groups WHERE id = ?");
      s.Bind(1, id);
      RETURN_IF_ERROR(s.Exec("delete group"));
      return ChangedOne("group " + std::to_string(id));
    });
  }
  Status AddGroupMember(int64_t group_id, int64_t user_id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)");
    s.Bind(1, group_id).Bind(2, user_id);
    Status st = s.Exec("add group member");
    if (!st.ok() && st.code() == Code::kFailedPrecondition) {
      return NotFound("group " + std::to_string(group_id) + " or user " + std::to_string(user_id) +
                      " not found");
    }
    return st;
  }
  Status RemoveGroupMember(int64_t group_id, int64_t user_id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, "DELETE FROM group_members WHERE group_id = ? AND user_id = ?");
    s.Bind(1, group_id).Bind(2, user_id);
    RETURN_IF_ERROR(s.Exec("remove group member"));
    return ChangedOne("member " + std::to_string(user_id) + " of group " +
                      std::to_string(group_id));
  }

  Result<int64_t> CreateObject(Kind kind, const ObjectRecord& o) override {
    std::lock_guard lock(mu_);
    std::vector<std::string_view> refs = KindRefs(kind);
    std::string cols = "name, owner_id, spec, status, sealed_secrets, created_at, updated_at";
    std::string marks = "?, ?, ?, ?, ?, ?, ?";
    if (KindHasState(kind)) {
      cols += ", state";
      marks += ", ?";
    }
    for (std::string_view r : refs) {
      cols += ", " + std::string(r);
      marks += ", ?";
    }
    PREPARE(s, Sql("INSERT INTO ", Table(kind), " (" + cols + ") VALUES (" + marks + ")"));
    int i = BindObject(s, kind, o, /*with_owner=*/true);
    (void)i;
    RETURN_IF_ERROR(s.Exec("create " + std::string(KindName(kind)) + " \"" + o.name + "\""));
    return sqlite3_last_insert_rowid(db_);
  }
  Result<ObjectRecord> GetObject(Kind kind, int64_t id) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", ObjectColumns(kind), Sql(" FROM ", Table(kind), " WHERE id = ?")));
    s.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, s.Step("get object"));
    if (!row) {
      return NotFound(std::string(KindName(kind)) + " " + std::to_string(id) + " not found");
    }
    return ReadObject(s, kind);
  }
  Result<std::vector<ObjectRecord>> ListObjects(Kind kind) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT ", ObjectColumns(kind), Sql(" FROM ", Table(kind), " ORDER BY id")));
    std::vector<ObjectRecord> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step("list objects"));
      if (!row) {
        return out;
      }
      out.push_back(ReadObject(s, kind));
    }
  }
  Result<ListPage<ObjectRecord>> ListObjectsPage(Kind kind, const Viewer& viewer,
                                                 const ListQuery& q) override {
    std::lock_guard lock(mu_);
    std::vector<std::string_view> refs = KindRefs(kind);
    for (const auto& [column, id] : q.refs) {
      if (std::find(refs.begin(), refs.end(), column) == refs.end()) {
        return InvalidArgument(std::string(KindName(kind)) + " has no reference " + column);
      }
    }
    if (q.type || (q.state && !KindHasState(kind))) {
      return InvalidArgument(std::string(KindName(kind)) + " has no such filter");
    }
    return OwnedPageLocked<ObjectRecord>(
        Table(kind), KindName(kind), ObjectColumns(kind), static_cast<int>(9 + refs.size()), viewer,
        q, [kind](Stmt& r) { return ReadObject(r, kind); }, "list objects");
  }
  Status UpdateObject(Kind kind, const ObjectRecord& o) override {
    std::lock_guard lock(mu_);
    std::string set = "name = ?, spec = ?, status = ?, sealed_secrets = ?, updated_at = ?";
    if (KindHasState(kind)) {
      set += ", state = ?";
    }
    for (std::string_view r : KindRefs(kind)) {
      set += ", " + std::string(r) + " = ?";
    }
    PREPARE(s, Sql("UPDATE ", Table(kind), " SET " + set + " WHERE id = ?"));
    int i = BindObject(s, kind, o, /*with_owner=*/false);
    s.Bind(i, o.id);
    RETURN_IF_ERROR(s.Exec("update " + std::string(KindName(kind)) + " \"" + o.name + "\""));
    return ChangedOne(std::string(KindName(kind)) + " " + std::to_string(o.id));
  }
  Status DeleteObject(Kind kind, int64_t id) override {
    std::lock_guard lock(mu_);
    return TxLocked([&]() -> Status {
      for (std::string_view table : {"grants", "events"}) {
        PREPARE(g, Sql("DELETE FROM ", table, " WHERE object_kind = ? AND object_id = ?"));
        g.Bind(1, KindName(kind)).Bind(2, id);
        RETURN_IF_ERROR(g.Exec(Sql("delete ", table, "")));
      }
      PREPARE(s, Sql("DELETE FROM ", Table(kind), " WHERE id = ?"));
      s.Bind(1, id);
      Status st = s.Exec("delete " + std::string(KindName(kind)) + " " + std::to_string(id));
      if (!st.ok() && st.code() == Code::kFailedPrecondition) {
        return FailedPrecondition(std::string(KindName(kind)) + " " + std::to_string(id) +
                                  " is still used by other objects (backups or restores); "
                                  "delete them first");
      }
      RETURN_IF_ERROR(st);
      return ChangedOne(std::string(KindName(kind)) + " " + std::to_string(id));
    });
  }

  Status AppendEvent(Kind kind, int64_t object_id, const EventRecord& e) override {
    std::lock_guard lock(mu_);
    PREPARE(s,
            "INSERT INTO events (object_kind, object_id, time, level, message) "
            "VALUES (?, ?, ?, ?, ?)");
    s.Bind(1, KindName(kind)).Bind(2, object_id).Bind(3, e.time).Bind(4, e.level);
    s.Bind(5, e.message);
    return s.Exec("append event");
  }
  Result<std::vector<EventRecord>> ListEvents(Kind kind, int64_t object_id) override {
    std::lock_guard lock(mu_);
    PREPARE(s,
            "SELECT id, time, level, message FROM events WHERE object_kind = ? AND "
            "object_id = ? ORDER BY id");
    s.Bind(1, KindName(kind)).Bind(2, object_id);
    return All<EventRecord>(
        s,
        [](Stmt& r) {
          return EventRecord{r.Int(0), r.Int(1), r.Text(2), r.Text(3)};
        },
        "list events");
  }

  Result<std::map<std::string, int64_t>> CountByState(Kind kind) override {
    std::lock_guard lock(mu_);
    std::map<std::string, int64_t> out;
    if (!KindHasState(kind)) {
      return out;
    }
    PREPARE(s, Sql("SELECT state, COUNT(*) FROM ", Table(kind), " GROUP BY state"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step("count by state"));
      if (!row) {
        return out;
      }
      out[s.Text(0)] = s.Int(1);
    }
  }
  Result<int64_t> SumStatusField(Kind kind, std::string_view field) override {
    std::lock_guard lock(mu_);
    PREPARE(s, Sql("SELECT COALESCE(SUM(json_extract(status, ?)), 0) FROM ", Table(kind), ""));
    s.Bind(1, "$." + std::string(field));
    ASSIGN_OR_RETURN(bool row, s.Step("sum status field"));
    return row ? s.Int(0) : 0;
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
  // Runs `body` in one IMMEDIATE transaction (mu_ held by the caller);
  // rolls back when it fails.
  template <typename F>
  Status TxLocked(F body) {
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE", "begin"));
    Status st = body();
    if (!st.ok()) {
      ExecLocked("ROLLBACK", "rollback").IgnoreError();
      return st;
    }
    return ExecLocked("COMMIT", "commit");
  }

  // InvalidArgument unless 1 <= limit <= kMaxPageLimit.
  static constexpr int64_t kMaxPageLimit = int64_t{1} << 40;
  static Status CheckPage(const ListQuery& q) {
    if (q.limit < 1 || q.limit > kMaxPageLimit) {
      return InvalidArgument("page limit " + std::to_string(q.limit) + " is out of range");
    }
    return Status::Ok();
  }

  // A page from up to limit + 1 rows: the extra row only says there is more.
  template <typename T>
  static ListPage<T> Paged(std::vector<T> rows, std::vector<AccessLevel> access, int64_t limit) {
    ListPage<T> page;
    page.more = static_cast<int64_t>(rows.size()) > limit;
    if (page.more) {
      rows.resize(static_cast<size_t>(limit));
      if (!access.empty()) {
        access.resize(static_cast<size_t>(limit));
      }
    }
    page.items = std::move(rows);
    page.access = std::move(access);
    return page;
  }

  // The one query behind ListLocationsPage and ListObjectsPage. `columns`
  // (unqualified names of `table`) are read by `read` from columns
  // 0..ncols-1; the viewer's access level follows at column ncols.
  //
  // Parameters: ?1 user id, ?2 after, ?3 grants.object_kind, ?4 limit + 1,
  // ?5 the viewer's group ids as a JSON array, ?6… the filters, then one per
  // group arm. For an admin: the table in id order from `after`. Otherwise
  // the ids come from a UNION of arms that each yield ids in increasing
  // order from an index — what the viewer owns (table by owner_id), what is
  // granted to the user, to each group (grants_by_grantee) — which SQLite
  // merges lazily, so LIMIT bounds the work by the page rather than by the
  // table or by everything the viewer may see.
  template <typename T, typename F>
  Result<ListPage<T>> OwnedPageLocked(std::string_view table, std::string_view grant_kind,
                                      std::string_view columns, int ncols, const Viewer& v,
                                      const ListQuery& q, F read, std::string_view what) {
    RETURN_IF_ERROR(CheckPage(q));
    // Filters, on the alias t in every arm.
    std::string filters;
    std::vector<std::pair<int, std::string>> text_params;
    std::vector<std::pair<int, int64_t>> int_params;
    int next = 6;
    auto text_filter = [&](std::string_view column, const std::optional<std::string>& value) {
      if (value) {
        filters += " AND t." + std::string(column) + " = ?" + std::to_string(next);
        text_params.emplace_back(next++, *value);
      }
    };
    text_filter("name", q.name);
    text_filter("type", q.type);
    text_filter("state", q.state);
    for (const auto& [column, id] : q.refs) {
      // Column names were checked against KindRefs by the caller.
      filters += " AND COALESCE(t." + column + ", 0) = ?" + std::to_string(next);
      int_params.emplace_back(next++, id);
    }
    std::string t(table);
    std::string sql;
    std::string groups_json = "[";
    for (size_t i = 0; i < v.group_ids.size(); ++i) {
      groups_json += (i ? "," : "") + std::to_string(v.group_ids[i]);
    }
    groups_json += "]";
    if (v.admin) {
      sql = Sql("SELECT ", columns, ", 3 FROM ") + t + " t WHERE t.id > ?2" + filters +
            " ORDER BY t.id LIMIT ?4";
    } else {
      const std::string grant_arm = " UNION SELECT g.object_id FROM grants g CROSS JOIN " + t +
                                    " t ON t.id = g.object_id WHERE g.object_kind = ?3 AND "
                                    "g.object_id > ?2" +
                                    filters + " AND ";
      std::string arms = "SELECT t.id FROM " + t + " t WHERE t.owner_id = ?1 AND t.id > ?2" +
                         filters + grant_arm + "g.grantee_kind = 'user' AND g.grantee_id = ?1";
      // One arm per group keeps every arm an index range in id order. Past
      // kMaxGroupArms groups (SQLite caps compound SELECTs at 500 arms), one
      // arm covers them all: SQLite walks the kind's grants in object id
      // order (grants_by_object) and keeps the viewer's groups, still lazily
      // but over grants to others too.
      constexpr size_t kMaxGroupArms = 16;
      if (v.group_ids.size() <= kMaxGroupArms) {
        for (int64_t group : v.group_ids) {
          arms +=
              grant_arm + "g.grantee_kind = 'group' AND g.grantee_id = ?" + std::to_string(next);
          int_params.emplace_back(next++, group);
        }
      } else {
        arms += grant_arm +
                "g.grantee_kind = 'group' AND g.grantee_id IN (SELECT value FROM json_each(?5))";
      }
      sql = Sql("SELECT ", columns,
                ", CASE WHEN t.owner_id = ?1 THEN 3 ELSE (SELECT MAX(CASE g.access WHEN 'FULL' "
                "THEN 2 WHEN 'READ' THEN 1 ELSE 0 END) FROM grants g WHERE g.object_kind = ?3 "
                "AND g.object_id = t.id AND ((g.grantee_kind = 'user' AND g.grantee_id = ?1) "
                "OR (g.grantee_kind = 'group' AND g.grantee_id IN (SELECT value FROM "
                "json_each(?5))))) END FROM ") +
            t + " t WHERE t.id IN (" + arms + " ORDER BY 1 LIMIT ?4) ORDER BY t.id";
    }
    PREPARE(s, sql);
    s.Bind(1, v.user_id).Bind(2, q.after).Bind(3, grant_kind).Bind(4, q.limit + 1);
    if (!v.admin) {
      s.Bind(5, groups_json);
    }
    for (const auto& [i, value] : text_params) {
      s.Bind(i, value);
    }
    for (const auto& [i, value] : int_params) {
      s.Bind(i, value);
    }
    std::vector<T> rows;
    std::vector<AccessLevel> access;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step(what));
      if (!row) {
        break;
      }
      int64_t level = s.Int(ncols);
      if (level < 1 || level > 3) {
        continue;  // no access (the arms only yield visible ids)
      }
      rows.push_back(read(s));
      access.push_back(static_cast<AccessLevel>(level));
    }
    return Paged(std::move(rows), std::move(access), q.limit);
  }

  // NotFound unless the last statement changed a row.
  Status ChangedOne(const std::string& what) {
    return sqlite3_changes(db_) == 0 ? NotFound(what + " not found") : Status::Ok();
  }

  // FailedPrecondition when `user_id` is the only admin.
  Status KeepAnAdminLocked(int64_t user_id) {
    PREPARE(s, "SELECT COUNT(*), SUM(id = ?) FROM users WHERE role = 'admin'");
    s.Bind(1, user_id);
    ASSERT_OR_STEP(s, "count admins");
    if (s.Int(0) == 1 && s.Int(1) == 1) {
      return FailedPrecondition("user " + std::to_string(user_id) +
                                " is the last admin; make another user admin first");
    }
    return Status::Ok();
  }

  static std::string_view Table(Kind kind) {
    switch (kind) {
      case Kind::kCluster:
        return "clusters";
      case Kind::kSchedulePolicy:
        return "schedule_policies";
      case Kind::kRule:
        return "rules";
      case Kind::kBackup:
        return "backups";
      case Kind::kRestore:
        return "restores";
    }
    return "";
  }
  static std::string ObjectColumns(Kind kind) {
    std::string cols =
        "id, name, owner_id, spec, status, sealed_secrets, created_at, updated_at, " +
        std::string(KindHasState(kind) ? "state" : "''");
    for (std::string_view r : KindRefs(kind)) {
      cols += ", " + std::string(r);
    }
    return cols;
  }
  static ObjectRecord ReadObject(Stmt& s, Kind kind) {
    ObjectRecord o;
    o.id = s.Int(0);
    o.name = s.Text(1);
    o.owner_id = s.Int(2);
    o.spec_json = s.Text(3);
    o.status_json = s.Text(4);
    o.sealed_secrets = s.Blob(5);
    o.created_at = s.Int(6);
    o.updated_at = s.Int(7);
    o.state = s.Text(8);
    int col = 9;
    for (std::string_view r : KindRefs(kind)) {
      if (int64_t v = s.Int(col++); v != 0) {
        o.refs[std::string(r)] = v;
      }
    }
    return o;
  }
  // Binds the columns in the order CreateObject / UpdateObject name them;
  // returns the next bind index.
  static int BindObject(Stmt& s, Kind kind, const ObjectRecord& o, bool with_owner) {
    int i = 1;
    s.Bind(i++, o.name);
    if (with_owner) {
      s.Bind(i++, o.owner_id);
    }
    s.Bind(i++, o.spec_json);
    s.Bind(i++, o.status_json);
    s.Bind(i++, ByteSpan(o.sealed_secrets));
    if (with_owner) {
      s.Bind(i++, o.created_at);
    }
    s.Bind(i++, o.updated_at);
    if (KindHasState(kind)) {
      s.Bind(i++, o.state);
    }
    for (std::string_view r : KindRefs(kind)) {
      s.BindRef(i++, o.Ref(r));
    }
    return i;
  }

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

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kCluster:
      return "cluster";
    case Kind::kSchedulePolicy:
      return "schedule-policy";
    case Kind::kRule:
      return "rule";
    case Kind::kBackup:
      return "backup";
    case Kind::kRestore:
      return "restore";
  }
  return "";
}

std::vector<std::string_view> KindRefs(Kind kind) {
  switch (kind) {
    case Kind::kBackup:
      return {"cluster_id", "location_id", "pre_rule_id", "post_rule_id", "schedule_policy_id"};
    case Kind::kRestore:
      return {"backup_id", "cluster_id"};
    default:
      return {};
  }
}

bool KindHasState(Kind kind) { return kind == Kind::kBackup || kind == Kind::kRestore; }

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
