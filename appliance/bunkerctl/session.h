#pragma once

// Session: what every bunkerctl command does with bunkerd — one request
// (Call), a whole list across pages (ListAll), an object's id from its name or
// id (Resolve) — and how failures become one-line messages on stderr and the
// documented exit codes (kExit*). Commands never print errors themselves: they
// return the exit code a Session method gave them.
//
// Thread-safety: one command at a time (single-threaded CLI).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "appliance/bunkerctl/cli_config.h"
#include "appliance/bunkerctl/output.h"

namespace bunker::bunkerctl {

// Exit codes, also listed in `bunkerctl --help` (kExitCodesHelp).
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;    // server error, connection or TLS failure
constexpr int kExitUsage = 2;      // bad command line or input (HTTP 400/413/422)
constexpr int kExitAuth = 3;       // not logged in, token expired or rejected (HTTP 401)
constexpr int kExitNotFound = 4;   // no such object, or not visible to you (HTTP 404)
constexpr int kExitConflict = 5;   // name taken, object in use (HTTP 409)
constexpr int kExitForbidden = 6;  // visible but needs FULL access or admin (HTTP 403)
constexpr int kExitThrottled = 7;  // too many attempts, retry later (HTTP 429)
extern const char* const kExitCodesHelp;

// The exit code for an HTTP error status.
int ExitCodeForHttpStatus(int status);

// One kind of API object: its bunkerctl noun, its collection under /api/v1
// and how a table shows it.
struct Resource {
  std::string noun;        // "location"
  std::string collection;  // "backup-locations"
  std::string label;       // "backup location" (for messages)
  std::vector<std::string> columns;
  bool ownable = false;  // has /grants
};

// The resources bunkerctl knows; nullptr for an unknown noun.
const Resource* FindResource(const std::string& noun);
const std::vector<Resource>& AllResources();

struct SessionOptions {
  std::string config_path;  // empty: DefaultConfigPath()
  std::string server;       // overrides the config's
  std::string ca_file;      // overrides the config's
  bool insecure_skip_tls_verify = false;
  std::string output = "table";
};

class Session {
 public:
  // Loads the config and applies the overrides; returns an exit code (0 ok)
  // after printing why it failed.
  int Setup(const SessionOptions& options);

  OutputFormat format() const { return format_; }
  CliConfig& config() { return config_; }
  const std::string& config_path() const { return config_path_; }

  // One request; `body` is sent as JSON when not empty. On 2xx stores the
  // parsed reply (null for an empty body) and returns 0; otherwise prints the
  // server's message and each field error on a line of its own and returns
  // the exit code for the failure.
  int Call(const std::string& method, const std::string& path, const nlohmann::json& body,
           nlohmann::json* reply);
  int Call(const std::string& method, const std::string& path, nlohmann::json* reply) {
    return Call(method, path, nlohmann::json(), reply);
  }

  // Every item of a list, following next_after until the end or until `cap`
  // items (0: no cap), asking for `page_size` items a request. `query` is ""
  // or "k=v&k2=v2" (already escaped).
  int ListAll(const std::string& collection, const std::string& query, int64_t cap,
              nlohmann::json* items, int64_t page_size = 1000);

  // The id of `ref` in `resource`: a string of digits is an id as is; else a
  // name, looked up with ?name= (exactly equal names only); the user "me" is
  // the caller. A missing name is exit code 4 with "<label> "<ref>" not
  // found".
  int Resolve(const Resource& resource, const std::string& ref, int64_t* id);

  // Prints `value` in the chosen format (table columns from `columns`).
  void Print(const nlohmann::json& value, const std::vector<std::string>& columns) const;

  // While quiet, failed calls print nothing (for optional look-ups).
  void set_quiet(bool quiet) { quiet_ = quiet; }

  // Prints "bunkerctl: message" on stderr and returns `code`.
  static int Fail(const std::string& message, int code);

 private:
  std::string config_path_;
  CliConfig config_;
  OutputFormat format_ = OutputFormat::kTable;
  bool quiet_ = false;
};

// A Unix time as RFC 3339 UTC ("2026-11-26T02:04:42Z").
std::string FormatTime(int64_t unix_seconds);

// How a table shows an object: schedules as text ("daily 02:30"), Unix
// times in "*_at" fields as RFC 3339. -o json and yaml show the API's data.
void Humanize(nlohmann::json* row);

// Percent-encodes a query parameter value.
std::string QueryEscape(const std::string& value);

}  // namespace bunker::bunkerctl
