#pragma once

// Store: the appliance's datastore — users, groups, tokens, backup locations
// and grants — as domain records. The implementation (sqlite_store.cc) keeps
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

// Kinds of objects that grants apply to.
inline constexpr std::string_view kKindLocation = "backup-location";

struct GrantRecord {
  int64_t id = 0;
  std::string object_kind;  // kKindLocation, …
  int64_t object_id = 0;
  std::string grantee_kind;  // "user" or "group"
  int64_t grantee_id = 0;
  std::string access;  // "READ" or "FULL"
  int64_t created_at = 0;
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

  virtual Result<int64_t> CreateGroup(const GroupRecord& group) = 0;
  virtual Result<GroupRecord> GetGroup(int64_t id) = 0;
  virtual Result<GroupRecord> FindGroupByName(std::string_view name) = 0;
  virtual Result<std::vector<GroupRecord>> ListGroups() = 0;
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
  // Deletes the location and the grants on it, atomically.
  virtual Status DeleteLocation(int64_t id) = 0;

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
