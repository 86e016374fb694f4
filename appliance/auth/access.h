#pragma once

// The ownership model (DESIGN.md "owner, grants"): whoever creates an object
// owns it; the owner grants users or groups READ (view, restore from) or FULL
// access; admins see and do everything. A user with no access to an object
// must not learn it exists: the API answers 404 for it, never 403.
// Thread-safety: pure functions over values.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "appliance/store/store.h"

namespace bunker::auth {

enum class Role { kAdmin, kUser };

// Parses "admin" / "user"; false for anything else.
bool ParseRole(std::string_view text, Role* out);
std::string_view RoleName(Role role);

// Ordered: a higher level includes the lower ones.
enum class Access { kNone = 0, kRead = 1, kFull = 2, kOwner = 3 };

// Parses "READ" / "FULL" (grantable levels); false for anything else.
bool ParseGrantAccess(std::string_view text, Access* out);

// The authenticated caller of a request.
struct Principal {
  int64_t user_id = 0;
  std::string name;
  Role role = Role::kUser;
  std::vector<int64_t> group_ids;
  std::string token_id;  // the bearer token used (for logs and self-revocation)
};

// What `who` may do with an object owned by `owner_id` that carries `grants`:
// kOwner for the owner and for admins, else the highest grant to the user or
// to one of their groups, else kNone.
Access EffectiveAccess(const Principal& who, int64_t owner_id,
                       const std::vector<store::GrantRecord>& grants);

}  // namespace bunker::auth
