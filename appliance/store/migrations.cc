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
    // v3: clusters, schedule policies, rules, backups and restores (all
    // ownable, with grants), events of backups and restores. API fields that
    // are not looked up by SQL live in `spec` (JSON); server-maintained
    // state (cluster probe, backup progress) in `status` (JSON).
    {3, R"sql(
CREATE TABLE clusters (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
  spec TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT '{}',
  sealed_secrets BLOB,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE schedule_policies (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
  spec TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT '{}',
  sealed_secrets BLOB,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE rules (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
  spec TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT '{}',
  sealed_secrets BLOB,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE backups (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
  spec TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT '{}',
  sealed_secrets BLOB,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN
    ('pending', 'running', 'succeeded', 'partial', 'failed', 'deleting')),
  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE RESTRICT,
  location_id INTEGER NOT NULL REFERENCES locations(id) ON DELETE RESTRICT,
  pre_rule_id INTEGER REFERENCES rules(id) ON DELETE SET NULL,
  post_rule_id INTEGER REFERENCES rules(id) ON DELETE SET NULL,
  schedule_policy_id INTEGER REFERENCES schedule_policies(id) ON DELETE SET NULL
);
CREATE INDEX backups_by_cluster ON backups (cluster_id);
CREATE INDEX backups_by_location ON backups (location_id);
CREATE TABLE restores (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
  spec TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT '{}',
  sealed_secrets BLOB,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN
    ('pending', 'running', 'succeeded', 'partial', 'failed', 'deleting')),
  backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE RESTRICT,
  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE RESTRICT
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  object_kind TEXT NOT NULL,
  object_id INTEGER NOT NULL,
  time INTEGER NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('info', 'warning', 'error')),
  message TEXT NOT NULL
);
CREATE INDEX events_by_object ON events (object_kind, object_id);
)sql"},
    // v4: indexes for list pages (Store::List*Page): what a user owns, in id
    // order, and what is granted to a user or group, in object id order.
    {4, R"sql(
CREATE INDEX locations_by_owner ON locations (owner_id);
CREATE INDEX clusters_by_owner ON clusters (owner_id);
CREATE INDEX schedule_policies_by_owner ON schedule_policies (owner_id);
CREATE INDEX rules_by_owner ON rules (owner_id);
CREATE INDEX backups_by_owner ON backups (owner_id);
CREATE INDEX restores_by_owner ON restores (owner_id);
CREATE INDEX grants_by_grantee ON grants (object_kind, grantee_kind, grantee_id, object_id);
)sql"},
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

}  // namespace bunker::store
