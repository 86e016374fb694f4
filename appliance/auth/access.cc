#include "appliance/auth/access.h"

#include <algorithm>

namespace bunker::auth {

bool ParseRole(std::string_view text, Role* out) {
  if (text == "admin") {
    *out = Role::kAdmin;
    return true;
  }
  if (text == "user") {
    *out = Role::kUser;
    return true;
  }
  return false;
}

std::string_view RoleName(Role role) { return role == Role::kAdmin ? "admin" : "user"; }

bool ParseGrantAccess(std::string_view text, Access* out) {
  if (text == "READ") {
    *out = Access::kRead;
    return true;
  }
  if (text == "FULL") {
    *out = Access::kFull;
    return true;
  }
  return false;
}

Access EffectiveAccess(const Principal& who, int64_t owner_id,
                       const std::vector<store::GrantRecord>& grants) {
  if (who.role == Role::kAdmin || who.user_id == owner_id) {
    return Access::kOwner;
  }
  Access best = Access::kNone;
  for (const store::GrantRecord& g : grants) {
    bool applies =
        (g.grantee_kind == "user" && g.grantee_id == who.user_id) ||
        (g.grantee_kind == "group" && std::find(who.group_ids.begin(), who.group_ids.end(),
                                                g.grantee_id) != who.group_ids.end());
    Access level = Access::kNone;
    if (applies && ParseGrantAccess(g.access, &level)) {
      best = std::max(best, level);
    }
  }
  return best;
}

}  // namespace bunker::auth
