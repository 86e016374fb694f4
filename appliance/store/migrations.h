#pragma once

// The appliance database schema as numbered migrations. Migration N turns a
// version N-1 database into version N; they are applied in order, all pending
// ones in one transaction, when the store is opened (sqlite_store.cc), and
// the version reached is recorded in the table schema_version. A migration is
// never edited once released: a schema change is a new migration.

#include <span>

namespace bunker::store {

struct Migration {
  int version;      // the version this migration produces
  const char* sql;  // one or more statements, run with sqlite3_exec
};

// Every migration, in increasing version order starting at 1.
std::span<const Migration> Migrations();

}  // namespace bunker::store
