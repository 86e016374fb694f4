#include "appliance/bunkerctl/session.h"

#include <algorithm>
#include <ctime>
#include <iostream>

#include "appliance/bunkerctl/client.h"

namespace bunker::bunkerctl {

using json = nlohmann::json;

const char* const kExitCodesHelp =
    "Exit codes:\n"
    "  0  success\n"
    "  1  failure: server error, connection or TLS failure\n"
    "  2  usage: bad command line or input refused by the server (HTTP 400, 413, 422)\n"
    "  3  authentication: not logged in, token expired or rejected (HTTP 401)\n"
    "  4  not found, or not visible to you (HTTP 404)\n"
    "  5  conflict: name already taken, object in use (HTTP 409)\n"
    "  6  permission denied: needs FULL access or the admin role (HTTP 403)\n"
    "  7  throttled: too many attempts, retry later (HTTP 429)\n";

int ExitCodeForHttpStatus(int status) {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return kExitUsage;
    case 401:
      return kExitAuth;
    case 403:
      return kExitForbidden;
    case 404:
      return kExitNotFound;
    case 409:
      return kExitConflict;
    case 429:
      return kExitThrottled;
    default:
      return kExitFailure;
  }
}

const std::vector<Resource>& AllResources() {
  static const std::vector<Resource> kResources = {
      {"cluster",
       "clusters",
       "cluster",
       {"id", "name", "data_mover", "status.reachable", "status.version", "status.reason"},
       true},
      {"location", "backup-locations", "backup location", {"id", "name", "type", "url"}, true},
      {"policy",
       "schedule-policies",
       "schedule policy",
       {"id", "name", "schedule", "retain", "incrementals_between_fulls"},
       true},
      {"rule", "rules", "rule", {"id", "name", "actions#"}, true},
      {"backup",
       "backups",
       "backup",
       {"id", "name", "state", "type", "cluster_id", "location_id", "bytes_total", "started_at"},
       true},
      {"restore",
       "restores",
       "restore",
       {"id", "name", "state", "backup_id", "cluster_id", "replace_policy"},
       true},
      {"user", "users", "user", {"id", "name", "role"}, false},
      {"group", "groups", "group", {"id", "name", "member_ids"}, false},
  };
  return kResources;
}

const Resource* FindResource(const std::string& noun) {
  for (const Resource& r : AllResources()) {
    if (r.noun == noun) {
      return &r;
    }
  }
  return nullptr;
}

std::string QueryEscape(const std::string& value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int Session::Fail(const std::string& message, int code) {
  std::cerr << "bunkerctl: " << message << "\n";
  return code;
}

int Session::Setup(const SessionOptions& options) {
  config_path_ = options.config_path.empty() ? DefaultConfigPath() : options.config_path;
  Result<CliConfig> c = LoadCliConfig(config_path_);
  if (!c.ok()) {
    return Fail(c.status().message(), kExitUsage);
  }
  config_ = *c;
  if (!options.server.empty()) {
    config_.server = options.server;
  }
  if (!options.ca_file.empty()) {
    config_.ca_file = options.ca_file;
  }
  if (options.insecure_skip_tls_verify) {
    config_.insecure_skip_tls_verify = true;
  }
  if (!ParseOutputFormat(options.output, &format_)) {
    return Fail("-o must be table, json or yaml", kExitUsage);
  }
  return kExitOk;
}

int Session::Call(const std::string& method, const std::string& path, const json& body,
                  json* reply) {
  if (config_.server.empty()) {
    return Fail("not logged in: run bunkerctl login --server https://HOST:PORT -u NAME", kExitAuth);
  }
  ClientOptions options;
  options.server = config_.server;
  options.ca_file = config_.ca_file;
  options.insecure_skip_tls_verify = config_.insecure_skip_tls_verify;
  options.token = config_.token;
  Result<ClientResponse> r =
      ApiClient(options).Call(method, path, body.is_null() ? std::string() : body.dump());
  if (!r.ok()) {
    return Fail(r.status().message(),
                r.status().code() == Code::kInvalidArgument ? kExitUsage : kExitFailure);
  }
  json parsed = r->body.empty() ? json() : json::parse(r->body, nullptr, false);
  if (r->status >= 400 && quiet_) {
    return ExitCodeForHttpStatus(r->status);
  }
  if (r->status >= 400) {
    std::string message = "HTTP " + std::to_string(r->status);
    if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
      message = parsed["message"].get<std::string>();
    }
    std::cerr << "bunkerctl: " << message << "\n";
    if (parsed.is_object() && parsed.contains("details") && parsed["details"].is_object() &&
        parsed["details"].contains("fields") && parsed["details"]["fields"].is_object()) {
      for (const auto& [field, error] : parsed["details"]["fields"].items()) {
        std::cerr << "  " << field << ": "
                  << (error.is_string() ? error.get<std::string>() : error.dump()) << "\n";
      }
    }
    if (r->status == 401 && path != "/api/v1/login") {
      std::cerr << "  (log in again: bunkerctl login -u NAME)\n";
    }
    return ExitCodeForHttpStatus(r->status);
  }
  if (parsed.is_discarded()) {
    return Fail(method + " " + path + ": the reply is not JSON", kExitFailure);
  }
  *reply = std::move(parsed);
  return kExitOk;
}

int Session::ListAll(const std::string& collection, const std::string& query, int64_t cap,
                     json* items, int64_t page_size) {
  *items = json::array();
  std::string after;
  while (true) {
    int64_t want = std::clamp<int64_t>(page_size, 1, 1000);
    if (cap > 0) {
      want = std::min<int64_t>(want, cap - static_cast<int64_t>(items->size()));
    }
    std::string path = "/api/v1/" + collection + "?limit=" + std::to_string(want) + after;
    if (!query.empty()) {
      path += "&" + query;
    }
    json page;
    if (int rc = Call("GET", path, &page); rc != kExitOk) {
      return rc;
    }
    if (!page.is_object() || !page.contains("items") || !page["items"].is_array()) {
      return Fail("GET " + path + ": the reply has no items", kExitFailure);
    }
    for (json& item : page["items"]) {
      items->push_back(std::move(item));
    }
    if (cap > 0 && static_cast<int64_t>(items->size()) >= cap) {
      return kExitOk;
    }
    if (!page.contains("next_after") || page["next_after"].is_null()) {
      return kExitOk;
    }
    after = "&after=" + page["next_after"].dump();
  }
}

int Session::Resolve(const Resource& resource, const std::string& ref, int64_t* id) {
  if (ref.empty()) {
    return Fail(resource.label + ": an id or a name is required", kExitUsage);
  }
  if (ref.find_first_not_of("0123456789") == std::string::npos && ref.size() < 19) {
    *id = std::stoll(ref);
    return kExitOk;
  }
  if (resource.noun == "user" && ref == "me") {
    json me;
    if (int rc = Call("GET", "/api/v1/users/me", &me); rc != kExitOk) {
      return rc;
    }
    *id = me.value("id", int64_t{0});
    return kExitOk;
  }
  json items;
  if (int rc = ListAll(resource.collection, "name=" + QueryEscape(ref), 0, &items); rc != kExitOk) {
    return rc;
  }
  for (const json& item : items) {
    if (item.value("name", "") == ref && item.contains("id") && item["id"].is_number_integer()) {
      *id = item["id"].get<int64_t>();
      return kExitOk;
    }
  }
  return Fail(resource.label + " \"" + ref + "\" not found", kExitNotFound);
}

namespace {

// A schedule policy's schedule as a table cell: "every 90m", "daily 02:30",
// "weekly mon,thu 03:00", "monthly 28 23:00".
void HumanizeSchedule(json* row) {
  if (!row->is_object() || !row->contains("schedule") || !(*row)["schedule"].is_object()) {
    return;
  }
  const json& s = (*row)["schedule"];
  std::string kind = s.value("kind", "");
  std::string at = s.value("at", "");
  std::string text;
  if (kind == "interval") {
    text = "every " + s.value("every_minutes", json()).dump() + "m";
  } else if (kind == "daily") {
    text = "daily " + at;
  } else if (kind == "weekly") {
    std::string days;
    for (const json& d : s.value("days", json::array())) {
      days += (days.empty() ? "" : ",") + (d.is_string() ? d.get<std::string>() : d.dump());
    }
    text = "weekly " + days + " " + at;
  } else if (kind == "monthly") {
    text = "monthly " + s.value("day", json()).dump() + " " + at;
  } else {
    return;
  }
  (*row)["schedule"] = text;
}

// Unix times in "*_at" fields as RFC 3339 UTC.
void HumanizeTimes(json* row) {
  if (!row->is_object()) {
    return;
  }
  for (auto& [key, value] : row->items()) {
    if (key.size() > 3 && key.compare(key.size() - 3, 3, "_at") == 0 && value.is_number_integer()) {
      value = FormatTime(value.get<int64_t>());
    }
  }
}

}  // namespace

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) {
    return std::to_string(unix_seconds);
  }
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void Humanize(json* row) {
  HumanizeSchedule(row);
  HumanizeTimes(row);
}

void Session::Print(const json& value, const std::vector<std::string>& columns) const {
  if (format_ != OutputFormat::kTable) {
    std::cout << Render(value, format_, columns);
    return;
  }
  json shown = value;
  if (shown.is_object() && shown.contains("items") && shown["items"].is_array()) {
    for (json& row : shown["items"]) {
      Humanize(&row);
    }
  } else {
    Humanize(&shown);
  }
  std::cout << Render(shown, format_, columns);
}

}  // namespace bunker::bunkerctl
