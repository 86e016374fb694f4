#pragma once

// Bearer tokens. A token is "bkr_" followed by 64 hex digits (256 random
// bits). Only its SHA-256 is stored; the plaintext is shown once, when it is
// issued. Each token also has a short public id (for lists and revocation)
// that reveals nothing about the secret.
// Thread-safety: free functions, thread-safe.

#include <string>
#include <string_view>

#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::auth {

struct IssuedToken {
  std::string id;      // public: 16 hex digits
  std::string secret;  // "bkr_…": returned to the client once, never stored or logged
  Bytes hash;          // SHA-256 of `secret`: what the store keeps
};

Result<IssuedToken> IssueToken();

// SHA-256 of a presented bearer secret, to look it up in the store.
Bytes HashTokenSecret(std::string_view secret);

}  // namespace bunker::auth
