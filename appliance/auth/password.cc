#include "appliance/auth/password.h"

#include <charconv>
#include <vector>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/util/bytes.h"

namespace bunker::auth {
namespace {

constexpr uint32_t kLogN = 15;  // N = 32768, r = 8: 32 MiB per hash
constexpr uint32_t kR = 8;
constexpr uint32_t kP = 1;
constexpr size_t kSaltSize = 16;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) {
      return out;
    }
    start = pos + 1;
  }
}

bool ParseU32(std::string_view s, uint32_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<std::string> HashPassword(std::string_view password) {
  Bytes salt(kSaltSize);
  RETURN_IF_ERROR(crypto::RandomBytes(salt));
  ASSIGN_OR_RETURN(crypto::Key key,
                   crypto::DeriveKeyScrypt(password, salt, uint64_t{1} << kLogN, kR, kP));
  return "scrypt$" + std::to_string(kLogN) + "$" + std::to_string(kR) + "$" + std::to_string(kP) +
         "$" + Base64Encode(salt) + "$" + Base64Encode(key);
}

bool VerifyPassword(std::string_view password, std::string_view encoded) {
  std::vector<std::string_view> parts = Split(encoded, '$');
  uint32_t log_n = 0;
  uint32_t r = 0;
  uint32_t p = 0;
  if (parts.size() != 6 || parts[0] != "scrypt" || !ParseU32(parts[1], &log_n) ||
      !ParseU32(parts[2], &r) || !ParseU32(parts[3], &p) || log_n == 0 || log_n > 24) {
    return false;
  }
  Result<Bytes> salt = Base64Decode(parts[4]);
  Result<Bytes> want = Base64Decode(parts[5]);
  if (!salt.ok() || !want.ok()) {
    return false;
  }
  Result<crypto::Key> key = crypto::DeriveKeyScrypt(password, *salt, uint64_t{1} << log_n, r, p);
  if (!key.ok()) {
    return false;
  }
  return crypto::ConstantTimeEqual(*key, *want);
}

}  // namespace bunker::auth
