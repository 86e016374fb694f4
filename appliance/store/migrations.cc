#include "appliance/store/migrations.h"

namespace bunker::store {
namespace {

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  hash BLOB NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE locations (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  url TEXT NOT NULL,
  config_json TEXT NOT NULL DEFAULT '{}',
  sealed_secrets BLOB,
  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
  created_at INTEGER NOT NULL
);
)sql"},
    // v2: groups and grants (ownership model), token descriptions.
    {2, R"sql(
CREATE TABLE groups (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE group_members (
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);
CREATE TABLE grants (
  id INTEGER PRIMARY KEY,
  object_kind TEXT NOT NULL,
  object_id INTEGER NOT NULL,
  grantee_kind TEXT NOT NULL CHECK (grantee_kind IN ('user', 'group')),
  grantee_id INTEGER NOT NULL,
  access TEXT NOT NULL CHECK (access IN ('READ', 'FULL')),
  created_at INTEGER NOT NULL,
  UNIQUE (object_kind, object_id, grantee_kind, grantee_id)
);
CREATE INDEX grants_by_object ON grants (object_kind, object_id);
ALTER TABLE tokens ADD COLUMN description TEXT NOT NULL DEFAULT '';
)sql"},
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

}  // namespace bunker::store
