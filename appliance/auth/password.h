#pragma once

// Password hashing for appliance users: scrypt (OpenSSL EVP_KDF) with a
// random 16-byte salt per password. The encoded form records its parameters,
// so they can be raised later without invalidating stored hashes:
//   "scrypt$<log2 N>$<r>$<p>$<salt, base64>$<32-byte key, base64>"
// Thread-safety: free functions, thread-safe. Each call costs ~32 MiB and tens
// of milliseconds by design.

#include <string>
#include <string_view>

#include "nodeagent/core/util/status.h"

namespace bunker::auth {

// Hashes `password` with a fresh salt and the current parameters.
Result<std::string> HashPassword(std::string_view password);

// True when `password` matches `encoded`; the comparison is constant-time.
// False (never an error) for a malformed or unsupported encoding.
bool VerifyPassword(std::string_view password, std::string_view encoded);

}  // namespace bunker::auth
