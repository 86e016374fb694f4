#pragma once

// The appliance's view of an HTTP exchange, free of Boost.Beast: the server
// (server.cc) converts to and from these, so the request handler is a pure
// function testable without sockets and Beast's templates stay in one file.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace bunker::api {

struct ApiRequest {
  std::string method;  // "GET", "POST", …
  std::string target;  // path and query: "/api/v1/backup-locations?limit=10"
  // Header names lower-cased; a repeated header keeps its last value.
  std::map<std::string, std::string> headers;
  std::string body;
  std::string remote;  // peer address, for logs
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// A JSON error body, the one shape used everywhere:
//   {"code": "invalid_argument", "message": "…", "details": {…}}
// `details_json` must be a JSON object's text ("{}" when there is nothing).
ApiResponse ErrorResponse(int status, const std::string& code, const std::string& message,
                          const std::string& details_json = "{}");

}  // namespace bunker::api
