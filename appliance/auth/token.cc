#include "appliance/auth/token.h"

#include "nodeagent/core/crypto/crypto.h"

namespace bunker::auth {

Result<IssuedToken> IssueToken() {
  Bytes secret(32);
  Bytes id(8);
  RETURN_IF_ERROR(crypto::RandomBytes(secret));
  RETURN_IF_ERROR(crypto::RandomBytes(id));
  IssuedToken out;
  out.id = HexEncode(id);
  out.secret = "bkr_" + HexEncode(secret);
  out.hash = HashTokenSecret(out.secret);
  return out;
}

Bytes HashTokenSecret(std::string_view secret) {
  crypto::Digest d = crypto::Sha256(AsBytes(secret));
  return Bytes(d.begin(), d.end());
}

}  // namespace bunker::auth
