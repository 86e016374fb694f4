// ParseLocationUrl: the repository URL from the command line, a config file
// or the appliance's API (nodeagent/core/backend/backend.h).
//
// Input: the URL text (any bytes).
//
// Properties: rejections are InvalidArgument; an accepted URL has a known
// scheme, no NUL anywhere, an absolute path for file://, a server and an
// export path for nfs://, a bucket for s3://, and a port in 0 … 65535.

#include <string>
#include <string_view>

#include "nodeagent/core/backend/backend.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {

BUNKER_FUZZ_TARGET(location_url) {
  std::string_view url = AsChars(data);
  Result<backend::LocationUrl> r = backend::ParseLocationUrl(url);
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == Code::kInvalidArgument, Describe(r.status()));
    return false;
  }
  const backend::LocationUrl& u = *r;
  FUZZ_CHECK(u.original == url, "original URL not kept");
  FUZZ_CHECK(url.find('\0') == std::string_view::npos, "URL with a NUL accepted");
  FUZZ_CHECK(u.port >= 0 && u.port <= 65535, "port out of range");
  if (u.scheme == "file") {
    FUZZ_CHECK(!u.path.empty() && u.path.front() == '/', "file path is not absolute");
    FUZZ_CHECK(u.port == 0 && u.host.empty() && u.query.empty(), "file URL with host or query");
  } else if (u.scheme == "nfs") {
    FUZZ_CHECK(!u.host.empty(), "nfs URL without a server");
    FUZZ_CHECK(u.path.size() > 1 && u.path.front() == '/', "nfs URL without an export path");
  } else {
    FUZZ_CHECK(u.scheme == "s3", "unknown scheme accepted: " + u.scheme.substr(0, 40));
    FUZZ_CHECK(!u.host.empty(), "s3 URL without a bucket");
  }
  return true;
}

}  // namespace bunker::fuzz
