#pragma once

// Store: the appliance's datastore — users, groups, tokens, backup locations,
// clusters, schedule policies, rules, backups, restores, their grants and
// events — as domain records. The implementation (sqlite_store.cc) keeps
// them in one SQLite database (`bunker.db` in the data directory) whose schema
// is upgraded in place by numbered migrations when it is opened
// (migrations.cc).
//
// Contracts:
//  - Create* returns AlreadyExists when a unique name is taken, and stores
//    nothing then. Get*/Find* return NotFound for a missing record.
//  - Delete* of a missing record is NotFound (the API maps it to 404).
//  - Deleting a location deletes the grants on it in the same transaction.
//  - Secrets are stored as the caller gives them: the caller seals them
//    (auth/secret_box.h) before they reach the store.
// Thread-safety: every method may be called concurrently from many threads.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::store {

struct UserRecord {
  int64_t id = 0;
  std::string name;
  std::string role;           // "admin" or "user"
  std::string password_hash;  // auth/password.h encoding; never leaves the appliance
  int64_t created_at = 0;     // unix seconds
};

struct GroupRecord {
  int64_t id = 0;
  std::string name;
  std::vector<int64_t> member_ids;
  int64_t created_at = 0;
};

struct TokenRecord {
  std::string id;  // public identifier, shown in lists and used to revoke
  int64_t user_id = 0;
  Bytes hash;  // SHA-256 of the bearer secret; the secret itself is never stored
  std::string description;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  bool revoked = false;
};

struct LocationRecord {
  int64_t id = 0;
  std::string name;
  std::string type;         // "file", "nfs", "s3"
  std::string url;          // without credentials
  std::string config_json;  // non-secret settings (endpoint, region, …)
  Bytes sealed_secrets;     // sealed JSON of write-only fields; may be empty
  int64_t owner_id = 0;
  int64_t created_at = 0;
};

// Kinds of objects that grants apply to (also the API's resource names,
// singular).
inline constexpr std::string_view kKindLocation = "backup-location";

// The ownable objects kept in generic tables (migration 3): each has a name,
// an owner, grants, a JSON spec (the API fields) and a JSON status (what
// the appliance observed), and some have a state and references to other
// objects (foreign keys, so a referenced object cannot be deleted while in
// use: FailedPrecondition).
enum class Kind { kCluster, kSchedulePolicy, kRule, kBackup, kRestore };

// "cluster", "schedule-policy", "rule", "backup", "restore": the grants'
// object_kind and the sealed secrets' associated-data prefix.
std::string_view KindName(Kind kind);

// The reference columns a kind has, e.g. for kBackup "cluster_id",
// "location_id", "pre_rule_id", "post_rule_id", "schedule_policy_id".
std::vector<std::string_view> KindRefs(Kind kind);
// Whether the kind has a `state` (backups, restores).
bool KindHasState(Kind kind);

struct ObjectRecord {
  int64_t id = 0;
  std::string name;
  int64_t owner_id = 0;
  std::string spec_json = "{}";
  std::string status_json = "{}";
  Bytes sealed_secrets;  // sealed JSON of write-only fields; may be empty
  std::string state;     // KindHasState kinds only
  // Reference columns of the kind (KindRefs) → id; a missing key or 0 is NULL.
  std::map<std::string, int64_t, std::less<>> refs;
  int64_t created_at = 0;
  int64_t updated_at = 0;

  int64_t Ref(std::string_view column) const {
    auto it = refs.find(column);
    return it == refs.end() ? 0 : it->second;
  }
};

struct EventRecord {
  int64_t id = 0;
  int64_t time = 0;   // unix seconds
  std::string level;  // "info", "warning", "error"
  std::string message;
};

struct GrantRecord {
  int64_t id = 0;
  std::string object_kind;  // kKindLocation, …
  int64_t object_id = 0;
  std::string grantee_kind;  // "user" or "group"
  int64_t grantee_id = 0;
  std::string access;  // "READ" or "FULL"
  int64_t created_at = 0;
};

// Who is listing ownable objects (DESIGN.md "owner, grants", the rules of
// auth::EffectiveAccess): an admin sees everything; anyone else sees what they
// own and what is granted (READ or FULL) to them or to one of `group_ids`.
struct Viewer {
  bool admin = false;
  int64_t user_id = 0;
  std::vector<int64_t> group_ids;
};

// The caller's access to a listed object; the values are auth::Access's.
enum class AccessLevel { kRead = 1, kFull = 2, kOwner = 3 };

// One page of a list: records with id > `after` matching every filter that
// is set, in increasing id order, at most `limit` of them.
struct ListQuery {
  int64_t after = 0;
  int64_t limit = 100;               // 1 to 2^40 (else InvalidArgument)
  std::optional<std::string> name;   // exact
  std::optional<std::string> type;   // backup locations only
  std::optional<std::string> state;  // KindHasState kinds only
  // KindRefs columns -> id; 0 matches an absent reference (NULL).
  std::map<std::string, int64_t, std::less<>> refs;
};

template <typename T>
struct ListPage {
  std::vector<T> items;             // increasing id
  std::vector<AccessLevel> access;  // per item (ownable kinds; empty otherwise)
  bool more = false;                // further records match after the last item
};

class Store {
 public:
  virtual ~Store() = default;

  // The schema version the database is at (after migrations).
  virtual int SchemaVersion() = 0;

  virtual Result<int64_t> CreateUser(const UserRecord& user) = 0;
  virtual Result<UserRecord> GetUser(int64_t id) = 0;
  virtual Result<UserRecord> FindUserByName(std::string_view name) = 0;
  virtual Result<std::vector<UserRecord>> ListUsers() = 0;
  virtual Result<int64_t> CountUsers() = 0;
  // One page of users (ListQuery: after, limit, name), in one query.
  virtual Result<ListPage<UserRecord>> ListUsersPage(const ListQuery& query) = 0;

  virtual Result<int64_t> CreateGroup(const GroupRecord& group) = 0;
  virtual Result<GroupRecord> GetGroup(int64_t id) = 0;
  virtual Result<GroupRecord> FindGroupByName(std::string_view name) = 0;
  virtual Result<std::vector<GroupRecord>> ListGroups() = 0;
  // One page of groups with their members (ListQuery: after, limit, name),
  // in one query.
  virtual Result<ListPage<GroupRecord>> ListGroupsPage(const ListQuery& query) = 0;
  // Ids of the groups `user_id` belongs to.
  virtual Result<std::vector<int64_t>> GroupsOfUser(int64_t user_id) = 0;

  virtual Status CreateToken(const TokenRecord& token) = 0;
  // NotFound when no token has this hash (revoked and expired ones are found;
  // the caller decides).
  virtual Result<TokenRecord> FindTokenByHash(ByteSpan hash) = 0;
  // Tokens of one user, or of everyone when `user_id` is empty.
  virtual Result<std::vector<TokenRecord>> ListTokens(std::optional<int64_t> user_id) = 0;
  virtual Result<TokenRecord> GetToken(std::string_view id) = 0;
  // Idempotent: revoking a revoked token is OK.
  virtual Status RevokeToken(std::string_view id) = 0;

  virtual Result<int64_t> CreateLocation(const LocationRecord& location) = 0;
  virtual Result<LocationRecord> GetLocation(int64_t id) = 0;
  virtual Result<std::vector<LocationRecord>> ListLocations() = 0;
  // One page of the locations `viewer` may see (ListQuery: after, limit,
  // name, type) with the viewer's access to each, in one query whose work is
  // bounded by the page, not the table, for owners and grantees alike.
  virtual Result<ListPage<LocationRecord>> ListLocationsPage(const Viewer& viewer,
                                                             const ListQuery& query) = 0;
  // Deletes the location and the grants on it, atomically.
  virtual Status DeleteLocation(int64_t id) = 0;

  // Renames the location and replaces its sealed secrets (re-sealed for the
  // new name by the caller).
  virtual Status UpdateLocation(const LocationRecord& location) = 0;

  // Users: a role or password change; deleting a user deletes their tokens,
  // group memberships and the grants to them, atomically. FailedPrecondition
  // when that would leave no admin, or the user still owns objects.
  virtual Status UpdateUser(const UserRecord& user) = 0;
  virtual Status DeleteUser(int64_t id) = 0;

  // Groups: deleting one deletes its memberships and the grants to it.
  virtual Status UpdateGroup(const GroupRecord& group) = 0;  // name only
  virtual Status DeleteGroup(int64_t id) = 0;
  // Idempotent; NotFound for an unknown group or user.
  virtual Status AddGroupMember(int64_t group_id, int64_t user_id) = 0;
  // NotFound when the user is not a member.
  virtual Status RemoveGroupMember(int64_t group_id, int64_t user_id) = 0;

  // Generic ownable objects (Kind). Create ignores `id`; Update writes every
  // field but id, owner_id and created_at. Delete also deletes the grants on
  // the object and its events, atomically.
  virtual Result<int64_t> CreateObject(Kind kind, const ObjectRecord& object) = 0;
  virtual Result<ObjectRecord> GetObject(Kind kind, int64_t id) = 0;
  virtual Result<std::vector<ObjectRecord>> ListObjects(Kind kind) = 0;
  // One page of the objects of `kind` that `viewer` may see (ListQuery:
  // after, limit, name, state, refs) with the viewer's access to each, in one
  // query (see ListLocationsPage). InvalidArgument for a ref column the kind
  // does not have.
  virtual Result<ListPage<ObjectRecord>> ListObjectsPage(Kind kind, const Viewer& viewer,
                                                         const ListQuery& query) = 0;
  virtual Status UpdateObject(Kind kind, const ObjectRecord& object) = 0;
  virtual Status DeleteObject(Kind kind, int64_t id) = 0;

  // Events of an object (backups, restores), oldest first.
  virtual Status AppendEvent(Kind kind, int64_t object_id, const EventRecord& event) = 0;
  virtual Result<std::vector<EventRecord>> ListEvents(Kind kind, int64_t object_id) = 0;

  // Backups per state, and the sum of a numeric status field over all
  // backups (for /metrics).
  virtual Result<std::map<std::string, int64_t>> CountByState(Kind kind) = 0;
  virtual Result<int64_t> SumStatusField(Kind kind, std::string_view field) = 0;

  // AlreadyExists when the same grantee already has a grant on the object.
  virtual Result<int64_t> CreateGrant(const GrantRecord& grant) = 0;
  virtual Result<std::vector<GrantRecord>> ListGrants(std::string_view object_kind,
                                                      int64_t object_id) = 0;
  virtual Status DeleteGrant(int64_t id) = 0;
};

// Opens (creating if needed) the SQLite database at `path`, in WAL mode with
// foreign keys on and a busy timeout, and applies every pending migration in
// one transaction. FailedPrecondition when the database is from a newer
// Bunker (its schema version is above the newest this build knows).
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

// The newest schema version this build knows.
int LatestSchemaVersion();

}  // namespace bunker::store
