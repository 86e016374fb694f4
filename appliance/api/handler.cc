#include "appliance/api/handler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <ctime>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <tuple>
#include <vector>

#include "appliance/auth/access.h"
#include "appliance/auth/password.h"
#include "appliance/auth/token.h"
#include "appliance/kube/kubeconfig.h"

namespace bunker::api {
namespace {

using json = nlohmann::json;
using auth::Access;
using auth::Principal;

// Thrown inside request handling, caught in ApiHandler::Handle.
struct ApiError : std::exception {
  ApiError(int s, std::string c, std::string m, json d)
      : status(s), code(std::move(c)), message(std::move(m)), details(std::move(d)) {}
  const char* what() const noexcept override { return message.c_str(); }
  int status;
  std::string code;
  std::string message;
  json details;
};

[[noreturn]] void Fail(int status, std::string code, std::string message,
                       json details = json::object()) {
  throw ApiError(status, std::move(code), std::move(message), std::move(details));
}

[[noreturn]] void NotFoundError(const std::string& what) {
  Fail(404, "not_found", what + " not found");
}

// Status → HTTP, the one place that maps them.
[[noreturn]] void FailWith(const Status& st) {
  switch (st.code()) {
    case Code::kNotFound:
      Fail(404, "not_found", st.message());
    case Code::kAlreadyExists:
      Fail(409, "already_exists", st.message());
    case Code::kInvalidArgument:
      Fail(400, "invalid_argument", st.message());
    case Code::kPermissionDenied:
      Fail(403, "permission_denied", st.message());
    case Code::kFailedPrecondition:
      Fail(409, "conflict", st.message());
    case Code::kUnavailable:
      Fail(503, "unavailable", st.message());
    default:
      // The text may name files, SQL or library errors: it goes to the log,
      // the client gets the generic message.
      spdlog::error("internal error: {}", st.ToString());
      Fail(500, "internal", "internal error; see the bunkerd log");
  }
}

void Must(const Status& st) {
  if (!st.ok()) {
    FailWith(st);
  }
}
template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) {
    FailWith(r.status());
  }
  return std::move(r).value();
}

// Object names (users, groups, locations): 1–63 of [a-z0-9._-], starting and
// ending with a letter or digit.
bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 63) {
    return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : s) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return alnum(s.front()) && alnum(s.back());
}
constexpr const char* kNameRule =
    "must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a letter or "
    "digit";

// Kubernetes DNS labels (namespaces): 1-63 of [a-z0-9-], starting and
// ending with a letter or digit.
bool ValidLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) {
    return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : s) {
    if (!alnum(c) && c != '-') {
      return false;
    }
  }
  return alnum(s.front()) && alnum(s.back());
}
constexpr const char* kLabelRule =
    "must be a Kubernetes name: 1-63 characters of a-z, 0-9, '-', starting and ending with a "
    "letter or digit";

// Bodies nest at most this deep: nothing in the API needs more, and it keeps
// recursive JSON operations (merge-patch, dump) far from the stack's end.
constexpr size_t kMaxJsonDepth = 32;

// The deepest nesting of arrays and objects in JSON text (brackets inside
// strings do not count). Runs before parsing, so it bounds the work too.
size_t NestingDepth(std::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// Reads a JSON object body against a fixed set of fields. Every problem is
// collected per field; Done() throws one 400 naming them all.
class Fields {
 public:
  Fields(const std::string& body, std::initializer_list<std::string_view> allowed)
      : Fields(ParseBody(body), std::vector<std::string_view>(allowed)) {}
  // An already parsed object (merge-patched views); unknown keys are errors.
  Fields(json obj, const std::vector<std::string_view>& allowed) : obj_(std::move(obj)) {
    for (const auto& [key, value] : obj_.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        errors_[key] = "unknown field";
      }
    }
  }

  // The body as a JSON object, or a 400 (empty, malformed, not an object).
  static json ParseBody(const std::string& body) {
    if (body.empty()) {
      Fail(400, "invalid_argument", "a JSON object body is required");
    }
    if (NestingDepth(body) > kMaxJsonDepth) {
      Fail(400, "invalid_argument",
           "the request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    json obj = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded()) {
      Fail(400, "malformed_json", "the request body is not valid JSON");
    }
    if (!obj.is_object()) {
      Fail(400, "invalid_argument", "the request body must be a JSON object");
    }
    return obj;
  }

  const json& object() const { return obj_; }

  // An integer in [min, max]; nullopt when absent or null ("required" error
  // when `required`), or when invalid (error recorded).
  std::optional<int64_t> Int(const std::string& name, int64_t min, int64_t max,
                             bool required = false) {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      if (required) {
        errors_[name] = "required";
      }
      return std::nullopt;
    }
    return IntValue(*it, name, min, max);
  }
  std::optional<int64_t> IntValue(const json& v, const std::string& field, int64_t min,
                                  int64_t max) {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX) ||
        v.get<int64_t>() < min || v.get<int64_t>() > max) {
      errors_[field] =
          "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
      return std::nullopt;
    }
    return v.get<int64_t>();
  }
  // An object id (positive integer); 0 when absent or null.
  int64_t Id(const std::string& name, bool required) {
    return Int(name, 1, INT64_MAX, required).value_or(0);
  }
  bool Bool(const std::string& name, bool fallback) {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      return fallback;
    }
    if (!it->is_boolean()) {
      errors_[name] = "must be true or false";
      return fallback;
    }
    return it->get<bool>();
  }
  // A JSON object of string values (labels, mappings); {} when absent.
  json StringMap(const std::string& name, bool (*valid)(std::string_view) = nullptr,
                 const char* rule = "") {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      return json::object();
    }
    return StringMapValue(*it, name, valid, rule);
  }
  json StringMapValue(const json& v, const std::string& field, bool (*valid)(std::string_view),
                      const char* rule) {
    if (!v.is_object() || v.size() > 256) {
      errors_[field] = "must be an object of at most 256 string values";
      return json::object();
    }
    for (const auto& [k, val] : v.items()) {
      if (!val.is_string() || k.empty() || k.size() > 253 || val.get<std::string>().size() > 253) {
        errors_[field + "." + k] = "must be a string of 1-253 characters";
      } else if (valid != nullptr && (!valid(k) || !valid(val.get<std::string>()))) {
        errors_[field + "." + k] = rule;
      }
    }
    return v;
  }
  // Kubernetes namespace names (DNS labels); nullopt when absent or null.
  std::optional<std::vector<std::string>> Namespaces(const std::string& name, bool required);

  std::optional<std::string> OptString(const std::string& name, size_t max_len = 1024) {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      return std::nullopt;
    }
    if (!it->is_string()) {
      errors_[name] = "must be a string";
      return std::nullopt;
    }
    std::string v = it->get<std::string>();
    if (v.size() > max_len) {
      errors_[name] = "must be at most " + std::to_string(max_len) + " characters";
      return std::nullopt;
    }
    return v;
  }
  std::string String(const std::string& name, size_t max_len = 1024) {
    bool present = obj_.contains(name) && !obj_[name].is_null();
    std::optional<std::string> v = OptString(name, max_len);
    if (!present) {
      errors_[name] = "required";
    } else if (v && v->empty()) {
      errors_[name] = "must not be empty";
    }
    return v.value_or("");
  }
  std::string Name(const std::string& name) {
    std::string v = String(name, 63);
    if (!v.empty() && !ValidName(v)) {
      errors_[name] = kNameRule;
    }
    return v;
  }
  std::vector<std::string> StringList(const std::string& name) {
    std::vector<std::string> out;
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      return out;
    }
    if (!it->is_array()) {
      errors_[name] = "must be an array of strings";
      return out;
    }
    for (const json& v : *it) {
      if (!v.is_string()) {
        errors_[name] = "must be an array of strings";
        return {};
      }
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  bool Has(const std::string& name) const { return obj_.contains(name); }
  void Error(const std::string& name, std::string message) {
    errors_.emplace(name, std::move(message));
  }
  void Done() {
    if (errors_.empty()) {
      return;
    }
    std::string msg = "invalid request: ";
    json fields = json::object();
    bool first = true;
    for (const auto& [k, v] : errors_) {
      msg += (first ? "" : "; ") + k + ": " + v;
      fields[k] = v;
      first = false;
    }
    Fail(400, "invalid_argument", msg, json{{"fields", fields}});
  }

 private:
  json obj_;
  std::map<std::string, std::string> errors_;
};

std::optional<std::vector<std::string>> Fields::Namespaces(const std::string& name, bool required) {
  auto it = obj_.find(name);
  if (it == obj_.end() || it->is_null()) {
    if (required) {
      errors_[name] = "required";
    }
    return std::nullopt;
  }
  if (!it->is_array() || it->empty() || it->size() > 1000) {
    errors_[name] = "must be a non-empty array of namespace names";
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const json& v : *it) {
    if (!v.is_string() || !ValidLabel(v.get<std::string>())) {
      errors_[name] = std::string("every entry ") + kLabelRule;
      return std::nullopt;
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    out.push_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

std::optional<int64_t> ParseId(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v <= 0) {
    return std::nullopt;
  }
  return v;
}

// JSON text of `j`. Strings that came from the request line (path segments,
// query values) may hold bytes that are not UTF-8; they are replaced (U+FFFD)
// rather than making dump() throw, so echoing them in a message never turns
// into a 500.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiResponse Json(int status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

ApiResponse NoContent() {
  ApiResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

// "2026-11-26T01:08:54Z" for unix seconds.
std::string Rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string_view AccessName(Access a) {
  switch (a) {
    case Access::kOwner:
      return "owner";
    case Access::kFull:
      return "FULL";
    case Access::kRead:
      return "READ";
    default:
      return "none";
  }
}

}  // namespace

ApiResponse ErrorResponse(int status, const std::string& code, const std::string& message,
                          const std::string& details_json) {
  json details = json::parse(details_json, nullptr, false);
  if (details.is_discarded() || !details.is_object()) {
    details = json::object();
  }
  return Json(status, json{{"code", code}, {"message", message}, {"details", details}});
}

struct ApiHandler::Context {
  const ApiRequest& req;
  std::string path;
  std::map<std::string, std::string> query;
  std::string route = "unmatched";  // template for metrics
  std::optional<Principal> who;
};

namespace {

// Per-request helpers bound to the handler's dependencies.
class Routes {
 public:
  Routes(ApiHandler::Context& ctx, store::Store* store, const auth::SecretBox* secrets,
         const LocationProber& prober, const HandlerOptions& options, int64_t now,
         auth::LoginThrottle* throttle, auth::LoginThrottle* address_throttle)
      : throttle_(throttle),
        address_throttle_(address_throttle),
        ctx_(ctx),
        store_(store),
        secrets_(secrets),
        prober_(prober),
        options_(options),
        now_(now) {}

  const Principal& Authenticate(std::optional<Principal>& who) {
    if (who) {
      return *who;
    }
    auto it = ctx_.req.headers.find("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (it == ctx_.req.headers.end() || it->second.rfind(kBearer, 0) != 0) {
      Fail(401, "unauthenticated", "a bearer token is required (POST /api/v1/login)");
    }
    std::string_view secret = std::string_view(it->second).substr(kBearer.size());
    Result<store::TokenRecord> token = store_->FindTokenByHash(auth::HashTokenSecret(secret));
    if (!token.ok() && token.status().code() != Code::kNotFound) {
      FailWith(token.status());
    }
    if (!token.ok() || token->revoked || token->expires_at <= now_) {
      Fail(401, "unauthenticated", "the bearer token is invalid, expired or revoked");
    }
    store::UserRecord user = Must(store_->GetUser(token->user_id));
    Principal p;
    p.user_id = user.id;
    p.name = user.name;
    auth::ParseRole(user.role, &p.role);
    p.group_ids = Must(store_->GroupsOfUser(user.id));
    p.token_id = token->id;
    who = std::move(p);
    return *who;
  }

  static void RequireAdmin(const Principal& p) {
    if (p.role != auth::Role::kAdmin) {
      Fail(403, "permission_denied", "this needs the admin role");
    }
  }

  // ?limit=N&after=ID (and ?name=) as a store query; 400 naming the bad
  // parameters.
  store::ListQuery PageQuery() {
    store::ListQuery q;
    json field_errors = json::object();
    if (auto it = ctx_.query.find("limit"); it != ctx_.query.end()) {
      std::optional<int64_t> v = ParseId(it->second);
      if (!v || *v > 1000) {
        field_errors["limit"] = "must be an integer from 1 to 1000";
      } else {
        q.limit = *v;
      }
    }
    if (auto it = ctx_.query.find("after"); it != ctx_.query.end()) {
      std::optional<int64_t> v = ParseId(it->second);
      if (!v) {
        field_errors["after"] = "must be a positive integer (an id)";
      } else {
        q.after = *v;
      }
    }
    if (!field_errors.empty()) {
      Fail(400, "invalid_argument", "invalid query parameters", json{{"fields", field_errors}});
    }
    if (auto it = ctx_.query.find("name"); it != ctx_.query.end()) {
      q.name = it->second;
    }
    return q;
  }

  // {"items": [...], "next_after": last id when more records follow, else
  // null}.
  template <typename T, typename F>
  static json PageJson(const store::ListPage<T>& page, F to_json) {
    json out = json::array();
    for (size_t i = 0; i < page.items.size(); ++i) {
      out.push_back(to_json(page.items[i], i));
    }
    json next = nullptr;
    if (page.more && !page.items.empty()) {
      next = page.items.back().id;
    }
    return json{{"items", out}, {"next_after", next}};
  }

  // Whom a list shows objects to (auth::EffectiveAccess's rules, in SQL).
  static store::Viewer ViewerOf(const Principal& p) {
    return store::Viewer{p.role == auth::Role::kAdmin, p.user_id, p.group_ids};
  }
  static Access ListedAccess(store::AccessLevel level) {
    static_assert(static_cast<int>(store::AccessLevel::kRead) == static_cast<int>(Access::kRead) &&
                  static_cast<int>(store::AccessLevel::kFull) == static_cast<int>(Access::kFull) &&
                  static_cast<int>(store::AccessLevel::kOwner) == static_cast<int>(Access::kOwner));
    return static_cast<Access>(level);
  }

  // --- login and tokens ---

  ApiResponse Login() {
    Fields f(ctx_.req.body, {"username", "password", "description"});
    std::string username = f.String("username", 63);
    std::string password = f.String("password", 1024);
    std::string description = f.OptString("description", 256).value_or("");
    f.Done();
    // Throttled per user name and client host (the port changes per
    // connection), and per host over all names (password spraying).
    std::string host = ctx_.req.remote.substr(0, ctx_.req.remote.rfind(':'));
    std::string key = username + "@" + host;
    if (int64_t wait =
            std::max(throttle_->RetryAfter(key, now_), address_throttle_->RetryAfter(host, now_));
        wait > 0) {
      Fail(429, "too_many_requests",
           "too many failed logins; retry in " + std::to_string(wait) + " s",
           json{{"retry_after_seconds", wait}});
    }
    Result<store::UserRecord> user = store_->FindUserByName(username);
    if (!user.ok() && user.status().code() != Code::kNotFound) {
      FailWith(user.status());
    }
    // An unknown user costs the same scrypt as a wrong password.
    static const std::string kDummy = auth::HashPassword("dummy").value();
    bool ok = auth::VerifyPassword(password, user.ok() ? user->password_hash : kDummy);
    if (!user.ok() || !ok) {
      throttle_->RecordFailure(key, now_);
      address_throttle_->RecordFailure(host, now_);
      Fail(401, "unauthenticated", "invalid username or password");
    }
    throttle_->RecordSuccess(key);
    ctx_.who = Principal{user->id, user->name, auth::Role::kUser, {}, ""};  // for the log line
    return Json(201, IssueTokenFor(*user, description.empty() ? "login" : description));
  }

  json IssueTokenFor(const store::UserRecord& user, const std::string& description) {
    auth::IssuedToken t = Must(auth::IssueToken());
    store::TokenRecord rec{
        t.id, user.id, t.hash, description, now_, now_ + options_.token_ttl.count(), false};
    Must(store_->CreateToken(rec));
    return json{{"token", t.secret},
                {"token_id", t.id},
                {"expires_at", rec.expires_at},
                {"user", UserJson(user)}};
  }

  json TokenJson(const store::TokenRecord& t) {
    return json{{"id", t.id},
                {"user_id", t.user_id},
                {"description", t.description},
                {"created_at", t.created_at},
                {"expires_at", t.expires_at},
                {"revoked", t.revoked},
                {"expired", t.expires_at <= now_}};
  }

  ApiResponse ListTokens(const Principal& p) {
    std::optional<int64_t> only;
    if (p.role != auth::Role::kAdmin) {
      only = p.user_id;
    }
    json items = json::array();
    for (const store::TokenRecord& t : Must(store_->ListTokens(only))) {
      items.push_back(TokenJson(t));
    }
    return Json(200, json{{"items", items}});
  }

  ApiResponse CreateToken(const Principal& p) {
    Fields f(ctx_.req.body, {"description"});
    std::string description = f.OptString("description", 256).value_or("api");
    f.Done();
    return Json(201, IssueTokenFor(Must(store_->GetUser(p.user_id)), description));
  }

  ApiResponse RevokeToken(const Principal& p, std::string_view id) {
    Result<store::TokenRecord> t = store_->GetToken(id);
    if (!t.ok() && t.status().code() != Code::kNotFound) {
      FailWith(t.status());
    }
    if (!t.ok() || (p.role != auth::Role::kAdmin && t->user_id != p.user_id)) {
      NotFoundError("token " + std::string(id));
    }
    Must(store_->RevokeToken(id));
    return NoContent();
  }

  // --- users and groups ---

  static json UserJson(const store::UserRecord& u) {
    return json{{"id", u.id}, {"name", u.name}, {"role", u.role}, {"created_at", u.created_at}};
  }

  ApiResponse CreateUser(const Principal& p) {
    RequireAdmin(p);
    Fields f(ctx_.req.body, {"name", "password", "role"});
    std::string name = f.Name("name");
    std::string password = f.String("password", 1024);
    if (!password.empty() && password.size() < 8) {
      f.Error("password", "must be at least 8 characters");
    }
    std::string role = f.OptString("role", 16).value_or("user");
    auth::Role parsed;
    if (f.Has("role") && !auth::ParseRole(role, &parsed)) {
      f.Error("role", "must be \"admin\" or \"user\"");
    }
    f.Done();
    store::UserRecord u{0, name, role, Must(auth::HashPassword(password)), now_};
    u.id = Must(store_->CreateUser(u));
    return Json(201, UserJson(u));
  }

  ApiResponse ListUsers(const Principal& p) {
    RequireAdmin(p);
    return Json(200, PageJson(Must(store_->ListUsersPage(PageQuery())),
                              [](const store::UserRecord& u, size_t) { return UserJson(u); }));
  }

  ApiResponse GetUser(const Principal& p, std::string_view id_text) {
    int64_t id = p.user_id;
    if (id_text != "me") {
      std::optional<int64_t> parsed = ParseId(id_text);
      if (!parsed || (p.role != auth::Role::kAdmin && *parsed != p.user_id)) {
        NotFoundError("user " + std::string(id_text));
      }
      id = *parsed;
    }
    json out = UserJson(Must(store_->GetUser(id)));
    out["group_ids"] = Must(store_->GroupsOfUser(id));
    return Json(200, out);
  }

  static json GroupJson(const store::GroupRecord& g) {
    return json{
        {"id", g.id}, {"name", g.name}, {"member_ids", g.member_ids}, {"created_at", g.created_at}};
  }

  ApiResponse CreateGroup(const Principal& p) {
    RequireAdmin(p);
    Fields f(ctx_.req.body, {"name", "members"});
    std::string name = f.Name("name");
    std::vector<int64_t> ids;
    for (const std::string& member : f.StringList("members")) {
      Result<store::UserRecord> u = store_->FindUserByName(member);
      if (!u.ok()) {
        f.Error("members", "no user named \"" + member + "\"");
        continue;
      }
      ids.push_back(u->id);
    }
    f.Done();
    store::GroupRecord g{0, name, ids, now_};
    g.id = Must(store_->CreateGroup(g));
    return Json(201, GroupJson(g));
  }

  ApiResponse ListGroups(const Principal& p) {
    RequireAdmin(p);
    return Json(200, PageJson(Must(store_->ListGroupsPage(PageQuery())),
                              [](const store::GroupRecord& g, size_t) { return GroupJson(g); }));
  }

  // --- backup locations ---

  json LocationJson(const store::LocationRecord& l, Access access) {
    json config = json::parse(l.config_json, nullptr, false);
    if (!config.is_object()) {
      config = json::object();
    }
    json out{{"id", l.id},
             {"name", l.name},
             {"type", l.type},
             {"url", l.url},
             {"owner", l.owner_id},
             {"owner_id", l.owner_id},
             {"created_at", l.created_at},
             {"access", AccessName(access)}};
    for (const auto& [k, v] : config.items()) {
      out[k] = v;
    }
    return out;
  }

  // The location if `p` may see it; 404 otherwise (never 403: its existence
  // is not revealed).
  std::pair<store::LocationRecord, Access> VisibleLocation(const Principal& p,
                                                           std::string_view id_text) {
    std::optional<int64_t> id = ParseId(id_text);
    if (!id) {
      NotFoundError("backup location " + std::string(id_text));
    }
    Result<store::LocationRecord> l = store_->GetLocation(*id);
    if (!l.ok()) {
      if (l.status().code() == Code::kNotFound) {
        NotFoundError("backup location " + std::string(id_text));
      }
      FailWith(l.status());
    }
    Access a = auth::EffectiveAccess(p, l->owner_id,
                                     Must(store_->ListGrants(store::kKindLocation, l->id)));
    if (a == Access::kNone) {
      NotFoundError("backup location " + std::string(id_text));
    }
    return {std::move(l).value(), a};
  }

  ApiResponse ListLocations(const Principal& p) {
    store::ListQuery q = PageQuery();
    if (auto type = ctx_.query.find("type"); type != ctx_.query.end()) {
      q.type = type->second;
    }
    store::ListPage<store::LocationRecord> page = Must(store_->ListLocationsPage(ViewerOf(p), q));
    return Json(200, PageJson(page, [&](const store::LocationRecord& l, size_t i) {
                  return LocationJson(l, ListedAccess(page.access[i]));
                }));
  }

  ApiResponse CreateLocation(const Principal& p) {
    Fields f(ctx_.req.body, {"name", "type", "url", "endpoint", "region", "addressing_style",
                             "access_key_id", "secret_access_key", "repository_password"});
    std::string name = f.Name("name");
    std::string type = f.String("type", 16);
    if (!type.empty() && type != "file" && type != "nfs" && type != "s3") {
      f.Error("type", "must be one of \"file\", \"nfs\", \"s3\"");
    }
    std::string url = f.String("url", 2048);
    std::optional<std::string> endpoint = f.OptString("endpoint", 2048);
    std::optional<std::string> region = f.OptString("region", 64);
    std::optional<std::string> style = f.OptString("addressing_style", 16);
    std::optional<std::string> key_id = f.OptString("access_key_id", 256);
    std::optional<std::string> secret_key = f.OptString("secret_access_key", 1024);
    std::optional<std::string> repo_password = f.OptString("repository_password", 1024);
    if (!url.empty()) {
      Result<backend::LocationUrl> parsed = backend::ParseLocationUrl(url);
      if (!parsed.ok()) {
        f.Error("url", parsed.status().message());
      } else if (!type.empty() && parsed->scheme != type) {
        f.Error("url", "scheme \"" + parsed->scheme + "\" does not match type \"" + type + "\"");
      } else if (url.find('@') != std::string::npos) {
        f.Error("url", "must not contain credentials; use access_key_id/secret_access_key");
      }
    }
    if (type != "s3") {
      for (const char* s3_only :
           {"endpoint", "region", "addressing_style", "access_key_id", "secret_access_key"}) {
        if (f.Has(s3_only)) {
          f.Error(s3_only, "only for type \"s3\"");
        }
      }
    }
    backend::BackendOptions options;
    if (style && *style != "auto" && *style != "path" && *style != "virtual-hosted") {
      f.Error("addressing_style", "must be \"auto\", \"path\" or \"virtual-hosted\"");
    } else if (style) {
      options.s3_addressing_style = *style == "path" ? backend::S3AddressingStyle::kPath
                                    : *style == "virtual-hosted"
                                        ? backend::S3AddressingStyle::kVirtualHosted
                                        : backend::S3AddressingStyle::kAuto;
    }
    if (key_id.has_value() != secret_key.has_value()) {
      f.Error(key_id ? "secret_access_key" : "access_key_id",
              "access_key_id and secret_access_key go together");
    }
    f.Done();
    if (p.role != auth::Role::kAdmin && backend::ParseLocationUrl(url)->scheme == "file") {
      url = FileUrlWithinRoots(backend::ParseLocationUrl(url)->path);
    }
    if (p.role != auth::Role::kAdmin && type == "s3" && !key_id) {
      // Without keys the backend would sign with bunkerd's own credentials
      // (environment, credentials file): those are for admins to lend.
      std::string why = "required: S3 locations of users who are not admins carry their own keys";
      Fail(403, "permission_denied", "access_key_id: " + why,
           json{{"fields", {{"access_key_id", why}}}});
    }
    options.s3_endpoint = endpoint.value_or("");
    options.s3_region = region.value_or("");
    // The probe signs with the location's own keys, not bunkerd's.
    options.s3_access_key_id = key_id.value_or("");
    options.s3_secret_access_key = secret_key.value_or("");

    Status probe = prober_(url, options);
    if (!probe.ok()) {
      Fail(422, "probe_failed", probe.message(),
           json{{"status", std::string(CodeName(probe.code()))}});
    }

    json config = json::object();
    if (endpoint) {
      config["endpoint"] = *endpoint;
    }
    if (region) {
      config["region"] = *region;
    }
    if (style) {
      config["addressing_style"] = *style;
    }
    config["has_credentials"] = key_id.has_value();
    config["has_repository_password"] = repo_password.has_value();
    json secrets = json::object();
    if (key_id) {
      secrets["access_key_id"] = *key_id;
      secrets["secret_access_key"] = *secret_key;
    }
    if (repo_password) {
      secrets["repository_password"] = *repo_password;
    }
    store::LocationRecord rec{0, name, type, url, Dump(config), {}, p.user_id, now_};
    // Sealed with the name as associated data (the id is not known yet);
    // names are unique and never change.
    if (!secrets.empty()) {
      rec.sealed_secrets = Must(secrets_->Seal(Dump(secrets), "backup-location/" + name));
    }
    rec.id = Must(store_->CreateLocation(rec));
    return Json(201, LocationJson(rec, Access::kOwner));
  }

  // For a user who is not an admin: the file:// URL of `path` once symlinks
  // and ".." are resolved, when that is inside one of file_location_roots;
  // 403 naming the field otherwise (always when there are no roots).
  std::string FileUrlWithinRoots(const std::string& path) {
    auto components = [](const std::filesystem::path& p) {
      std::vector<std::string> out;
      for (const std::filesystem::path& c : p) {
        if (!c.empty() && c != "/") {
          out.push_back(c.string());
        }
      }
      return out;
    };
    std::string why;
    if (options_.file_location_roots.empty()) {
      why =
          "file:// backup locations are for admins only (an admin may open directories to all "
          "users with file_location_roots in bunkerd.yaml)";
    } else {
      std::error_code ec;
      std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
      std::vector<std::string> have = components(resolved);
      std::string roots;
      for (const std::string& root : options_.file_location_roots) {
        std::error_code root_ec;
        std::vector<std::string> want =
            components(std::filesystem::weakly_canonical(root, root_ec));
        if (!ec && !root_ec && want.size() <= have.size() &&
            std::equal(want.begin(), want.end(), have.begin())) {
          return "file://" + resolved.string();
        }
        roots += (roots.empty() ? "" : ", ") + root;
      }
      why = "file:// backup locations must be inside one of " + roots +
            " (file_location_roots in bunkerd.yaml), after resolving symlinks and \"..\"";
    }
    Fail(403, "permission_denied", "url: " + why, json{{"fields", {{"url", why}}}});
  }

  ApiResponse GetLocation(const Principal& p, std::string_view id) {
    auto [l, a] = VisibleLocation(p, id);
    return Json(200, LocationJson(l, a));
  }

  ApiResponse DeleteLocation(const Principal& p, std::string_view id) {
    auto [l, a] = VisibleLocation(p, id);
    if (a < Access::kFull) {
      Fail(403, "permission_denied",
           "deleting backup location \"" + l.name + "\" needs FULL access");
    }
    Must(store_->DeleteLocation(l.id));
    return NoContent();
  }

  // --- grants ---

  static json GrantJson(const store::GrantRecord& g) {
    json out{{"id", g.id},
             {"grantee_type", g.grantee_kind},
             {"grantee_id", g.grantee_id},
             {"access", g.access},
             {"created_at", g.created_at}};
    out[g.grantee_kind == "user" ? "user_id" : "group_id"] = g.grantee_id;
    return out;
  }

  // --- users and groups: update and delete ---

  std::optional<int64_t> UserIdFromPath(const Principal& p, std::string_view id_text) {
    if (id_text == "me") {
      return p.user_id;
    }
    std::optional<int64_t> id = ParseId(id_text);
    if (!id || (p.role != auth::Role::kAdmin && *id != p.user_id)) {
      return std::nullopt;
    }
    return id;
  }

  ApiResponse PatchUser(const Principal& p, std::string_view id_text) {
    std::optional<int64_t> id = UserIdFromPath(p, id_text);
    if (!id) {
      NotFoundError("user " + std::string(id_text));
    }
    store::UserRecord u = Must(store_->GetUser(*id));
    Fields f(ctx_.req.body, {"password", "role"});
    std::optional<std::string> password = f.OptString("password", 1024);
    if (password && password->size() < 8) {
      f.Error("password", "must be at least 8 characters");
    }
    std::optional<std::string> role = f.OptString("role", 16);
    auth::Role parsed;
    if (role && !auth::ParseRole(*role, &parsed)) {
      f.Error("role", "must be \"admin\" or \"user\"");
    }
    f.Done();
    if (role && *role != u.role) {
      RequireAdmin(p);
      u.role = *role;
    }
    if (password) {
      u.password_hash = Must(auth::HashPassword(*password));
    }
    Must(store_->UpdateUser(u));
    return Json(200, UserJson(u));
  }

  ApiResponse DeleteUser(const Principal& p, std::string_view id_text) {
    RequireAdmin(p);
    std::optional<int64_t> id = UserIdFromPath(p, id_text);
    if (!id) {
      NotFoundError("user " + std::string(id_text));
    }
    Must(store_->DeleteUser(*id));
    return NoContent();
  }

  store::GroupRecord GroupFromPath(const Principal& p, std::string_view id_text) {
    RequireAdmin(p);
    std::optional<int64_t> id = ParseId(id_text);
    if (!id) {
      NotFoundError("group " + std::string(id_text));
    }
    return Must(store_->GetGroup(*id));
  }

  ApiResponse GetGroup(const Principal& p, std::string_view id) {
    return Json(200, GroupJson(GroupFromPath(p, id)));
  }

  ApiResponse PatchGroup(const Principal& p, std::string_view id) {
    store::GroupRecord g = GroupFromPath(p, id);
    Fields f(ctx_.req.body, {"name"});
    if (f.Has("name")) {
      g.name = f.Name("name");
    }
    f.Done();
    Must(store_->UpdateGroup(g));
    return Json(200, GroupJson(Must(store_->GetGroup(g.id))));
  }

  ApiResponse DeleteGroup(const Principal& p, std::string_view id) {
    Must(store_->DeleteGroup(GroupFromPath(p, id).id));
    return NoContent();
  }

  ApiResponse AddMember(const Principal& p, std::string_view id) {
    store::GroupRecord g = GroupFromPath(p, id);
    Fields f(ctx_.req.body, {"user_id"});
    int64_t user_id = f.Id("user_id", /*required=*/true);
    if (user_id != 0 && !store_->GetUser(user_id).ok()) {
      f.Error("user_id", "no user with id " + std::to_string(user_id));
    }
    f.Done();
    Must(store_->AddGroupMember(g.id, user_id));
    return Json(200, GroupJson(Must(store_->GetGroup(g.id))));
  }

  ApiResponse RemoveMember(const Principal& p, std::string_view id, std::string_view user) {
    store::GroupRecord g = GroupFromPath(p, id);
    std::optional<int64_t> user_id = ParseId(user);
    if (!user_id) {
      NotFoundError("member " + std::string(user));
    }
    Must(store_->RemoveGroupMember(g.id, *user_id));
    return NoContent();
  }

  // --- ownable objects (backup locations and the generic kinds) ---

  // What grants and access checks need to know about an object.
  struct Owned {
    std::string grant_kind;  // grants.object_kind
    std::string noun;        // for messages: "backup location"
    int64_t id = 0;
    std::string name;
    Access access = Access::kNone;
  };

  static std::string Noun(store::Kind kind) {
    std::string n(store::KindName(kind));
    std::replace(n.begin(), n.end(), '-', ' ');
    return n;
  }

  // The object if `p` may see it; 404 otherwise (never 403).
  std::pair<store::ObjectRecord, Access> VisibleObject(store::Kind kind, const Principal& p,
                                                       std::string_view id_text) {
    std::optional<int64_t> id = ParseId(id_text);
    if (!id) {
      NotFoundError(Noun(kind) + " " + std::string(id_text));
    }
    Result<store::ObjectRecord> o = store_->GetObject(kind, *id);
    if (!o.ok()) {
      if (o.status().code() == Code::kNotFound) {
        NotFoundError(Noun(kind) + " " + std::string(id_text));
      }
      FailWith(o.status());
    }
    Access a = auth::EffectiveAccess(p, o->owner_id,
                                     Must(store_->ListGrants(store::KindName(kind), o->id)));
    if (a == Access::kNone) {
      NotFoundError(Noun(kind) + " " + std::string(id_text));
    }
    return {std::move(o).value(), a};
  }

  Owned Resolve(std::optional<store::Kind> kind, const Principal& p, std::string_view id) {
    if (!kind) {
      auto [l, a] = VisibleLocation(p, id);
      return Owned{std::string(store::kKindLocation), "backup location", l.id, l.name, a};
    }
    auto [o, a] = VisibleObject(*kind, p, id);
    return Owned{std::string(store::KindName(*kind)), Noun(*kind), o.id, o.name, a};
  }

  static void RequireFull(const Owned& o, const char* verb) {
    if (o.access < Access::kFull) {
      Fail(403, "permission_denied",
           std::string(verb) + " " + o.noun + " \"" + o.name + "\" needs FULL access");
    }
  }

  // A referenced object (`field` of the body) the caller must hold `need` on:
  // 400 naming the field when it does not exist or is invisible (its
  // existence is not revealed), 403 when visible with too little access.
  store::ObjectRecord Referenced(store::Kind kind, const Principal& p, const std::string& field,
                                 int64_t id, Access need) {
    Result<store::ObjectRecord> o = store_->GetObject(kind, id);
    Access a = Access::kNone;
    if (o.ok()) {
      a = auth::EffectiveAccess(p, o->owner_id,
                                Must(store_->ListGrants(store::KindName(kind), o->id)));
    } else if (o.status().code() != Code::kNotFound) {
      FailWith(o.status());
    }
    if (a == Access::kNone) {
      Fail(400, "invalid_argument",
           "invalid request: " + field + ": no " + Noun(kind) + " with id " + std::to_string(id),
           json{{"fields", {{field, "no " + Noun(kind) + " with id " + std::to_string(id)}}}});
    }
    if (a < need) {
      std::string why = "needs " + std::string(AccessName(need)) + " access on " + Noun(kind) +
                        " \"" + o->name + "\"";
      Fail(403, "permission_denied", field + ": " + why, json{{"fields", {{field, why}}}});
    }
    return std::move(o).value();
  }

  Access LocationAccess(const Principal& p, int64_t location_id, std::string* name) {
    Result<store::LocationRecord> l = store_->GetLocation(location_id);
    if (!l.ok()) {
      if (l.status().code() == Code::kNotFound) {
        return Access::kNone;
      }
      FailWith(l.status());
    }
    *name = l->name;
    return auth::EffectiveAccess(p, l->owner_id,
                                 Must(store_->ListGrants(store::kKindLocation, l->id)));
  }

  // --- grants (any ownable object) ---

  ApiResponse ListGrants(std::optional<store::Kind> kind, const Principal& p, std::string_view id) {
    Owned o = Resolve(kind, p, id);
    json items = json::array();
    for (const store::GrantRecord& g : Must(store_->ListGrants(o.grant_kind, o.id))) {
      items.push_back(GrantJson(g));
    }
    return Json(200, json{{"items", items}, {"next_after", nullptr}});
  }

  // Body: {"user_id": N} or {"group_id": N} (or, as before,
  // {"grantee_type": "user"|"group", "grantee": NAME}), and "access".
  ApiResponse CreateGrant(std::optional<store::Kind> kind, const Principal& p,
                          std::string_view id) {
    Owned o = Resolve(kind, p, id);
    RequireFull(o, "granting access to");
    Fields f(ctx_.req.body, {"user_id", "group_id", "grantee_type", "grantee", "access"});
    std::string access = f.String("access", 8);
    Access parsed;
    if (!access.empty() && !auth::ParseGrantAccess(access, &parsed)) {
      f.Error("access", "must be \"READ\" or \"FULL\"");
    }
    std::string grantee_kind;
    int64_t grantee_id = 0;
    int forms = int{f.Has("user_id")} + int{f.Has("group_id")} + int{f.Has("grantee_type")};
    if (forms != 1) {
      f.Error("user_id", "give exactly one of user_id or group_id");
    } else if (f.Has("user_id")) {
      grantee_kind = "user";
      grantee_id = f.Id("user_id", true);
      if (grantee_id != 0 && !store_->GetUser(grantee_id).ok()) {
        f.Error("user_id", "no user with id " + std::to_string(grantee_id));
      }
    } else if (f.Has("group_id")) {
      grantee_kind = "group";
      grantee_id = f.Id("group_id", true);
      if (grantee_id != 0 && !store_->GetGroup(grantee_id).ok()) {
        f.Error("group_id", "no group with id " + std::to_string(grantee_id));
      }
    } else {
      grantee_kind = f.String("grantee_type", 16);
      std::string grantee = f.String("grantee", 63);
      if (grantee_kind == "user") {
        Result<store::UserRecord> u = store_->FindUserByName(grantee);
        if (u.ok()) {
          grantee_id = u->id;
        } else if (!grantee.empty()) {
          f.Error("grantee", "no user named \"" + grantee + "\"");
        }
      } else if (grantee_kind == "group") {
        Result<store::GroupRecord> g = store_->FindGroupByName(grantee);
        if (g.ok()) {
          grantee_id = g->id;
        } else if (!grantee.empty()) {
          f.Error("grantee", "no group named \"" + grantee + "\"");
        }
      } else if (!grantee_kind.empty()) {
        f.Error("grantee_type", "must be \"user\" or \"group\"");
      }
    }
    f.Done();
    store::GrantRecord g{0, o.grant_kind, o.id, grantee_kind, grantee_id, access, now_};
    g.id = Must(store_->CreateGrant(g));
    return Json(201, GrantJson(g));
  }

  ApiResponse DeleteGrant(std::optional<store::Kind> kind, const Principal& p, std::string_view id,
                          std::string_view grant_id) {
    Owned o = Resolve(kind, p, id);
    RequireFull(o, "revoking access to");
    std::optional<int64_t> gid = ParseId(grant_id);
    bool found = false;
    for (const store::GrantRecord& g : Must(store_->ListGrants(o.grant_kind, o.id))) {
      found = found || (gid && g.id == *gid);
    }
    if (!found) {
      NotFoundError("grant " + std::string(grant_id));
    }
    Must(store_->DeleteGrant(*gid));
    return NoContent();
  }

  // --- backup locations: update ---

  ApiResponse PatchLocation(const Principal& p, std::string_view id) {
    auto [l, a] = VisibleLocation(p, id);
    if (a < Access::kFull) {
      Fail(403, "permission_denied",
           "updating backup location \"" + l.name + "\" needs FULL access");
    }
    json patch = Fields::ParseBody(ctx_.req.body);
    Fields f(patch, std::vector<std::string_view>{"name"});
    std::string name = f.Has("name") ? f.Name("name") : l.name;
    f.Done();
    if (name != l.name && !l.sealed_secrets.empty()) {
      std::string secrets = Must(secrets_->Open(l.sealed_secrets, "backup-location/" + l.name));
      l.sealed_secrets = Must(secrets_->Seal(secrets, "backup-location/" + name));
    }
    l.name = name;
    Must(store_->UpdateLocation(l));
    return Json(200, LocationJson(l, a));
  }

  // --- generic kinds: create, get, list, update, delete ---

  // The fields a create body may hold, and the subset a PATCH may change.
  static std::vector<std::string_view> CreateFields(store::Kind kind) {
    switch (kind) {
      case store::Kind::kCluster:
        return {"name", "kubeconfig", "context", "data_mover"};
      case store::Kind::kSchedulePolicy:
        return {"name", "schedule", "retain", "incrementals_between_fulls"};
      case store::Kind::kRule:
        return {"name", "actions"};
      case store::Kind::kBackup:
        return {"name",        "cluster_id",   "location_id",        "namespaces", "label_selector",
                "pre_rule_id", "post_rule_id", "schedule_policy_id", "type",       "labels"};
      case store::Kind::kRestore:
        return {"name",
                "backup_id",
                "cluster_id",
                "namespaces",
                "namespace_mapping",
                "storage_class_mapping",
                "project_mapping",
                "replace_policy",
                "labels"};
    }
    return {};
  }
  static std::vector<std::string_view> MutableFields(store::Kind kind) {
    switch (kind) {
      case store::Kind::kBackup:
      case store::Kind::kRestore:
        return {"name", "labels"};
      default:
        return CreateFields(kind);
    }
  }

  // Validates "HH:MM" (24 h clock).
  static bool ValidTime(const json& v) {
    if (!v.is_string()) {
      return false;
    }
    const std::string& t = v.get_ref<const std::string&>();
    return t.size() == 5 && t[2] == ':' && std::isdigit(static_cast<unsigned char>(t[0])) &&
           std::isdigit(static_cast<unsigned char>(t[1])) &&
           std::isdigit(static_cast<unsigned char>(t[3])) &&
           std::isdigit(static_cast<unsigned char>(t[4])) && std::stoi(t.substr(0, 2)) < 24 &&
           std::stoi(t.substr(3, 2)) < 60;
  }

  json ScheduleSpec(Fields& f) {
    const json& body = f.object();
    auto it = body.find("schedule");
    if (it == body.end() || it->is_null()) {
      f.Error("schedule", "required");
      return nullptr;
    }
    if (!it->is_object()) {
      f.Error("schedule", "must be an object with \"kind\"");
      return nullptr;
    }
    const json& s = *it;
    std::string kind =
        s.contains("kind") && s["kind"].is_string() ? s["kind"].get<std::string>() : "";
    std::vector<std::string> allowed = {"kind"};
    json out{{"kind", kind}};
    if (kind == "interval") {
      allowed.push_back("every_minutes");
      if (!s.contains("every_minutes")) {
        f.Error("schedule.every_minutes", "required");
      } else if (auto v = f.IntValue(s["every_minutes"], "schedule.every_minutes", 1, 525600)) {
        out["every_minutes"] = *v;
      }
    } else if (kind == "daily" || kind == "weekly" || kind == "monthly") {
      allowed.push_back("at");
      if (!s.contains("at") || !ValidTime(s["at"])) {
        f.Error("schedule.at", "required, as \"HH:MM\" (00:00 to 23:59)");
      } else {
        out["at"] = s["at"];
      }
      if (kind == "weekly") {
        allowed.push_back("days");
        static const std::vector<std::string> kDays = {"mon", "tue", "wed", "thu",
                                                       "fri", "sat", "sun"};
        const json days = s.value("days", json());
        bool ok = days.is_array() && !days.empty() && days.size() <= 7;
        std::vector<std::string> seen;
        for (const json& d : ok ? days : json::array()) {
          if (!d.is_string() ||
              std::find(kDays.begin(), kDays.end(), d.get<std::string>()) == kDays.end() ||
              std::find(seen.begin(), seen.end(), d.get<std::string>()) != seen.end()) {
            ok = false;
            break;
          }
          seen.push_back(d.get<std::string>());
        }
        if (!ok) {
          f.Error("schedule.days",
                  "required: a non-empty array of distinct days among \"mon\" … \"sun\"");
        } else {
          out["days"] = days;
        }
      }
      if (kind == "monthly") {
        allowed.push_back("day");
        if (!s.contains("day")) {
          f.Error("schedule.day", "required");
        } else if (auto v = f.IntValue(s["day"], "schedule.day", 1, 31)) {
          out["day"] = *v;
        }
      }
    } else {
      f.Error("schedule.kind", "must be \"interval\", \"daily\", \"weekly\" or \"monthly\"");
      return nullptr;
    }
    for (const auto& [k, v] : s.items()) {
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        f.Error("schedule." + k, "unknown field for kind \"" + kind + "\"");
      }
    }
    return out;
  }

  json ActionsSpec(Fields& f) {
    const json& body = f.object();
    auto it = body.find("actions");
    if (it == body.end() || it->is_null()) {
      f.Error("actions", "required");
      return nullptr;
    }
    if (!it->is_array() || it->empty() || it->size() > 64) {
      f.Error("actions", "must be an array of 1 to 64 actions");
      return nullptr;
    }
    json out = json::array();
    static const std::vector<std::string> kAllowed = {
        "namespace", "pod_selector",    "container",       "command",
        "all_pods",  "timeout_seconds", "abort_on_failure"};
    for (size_t i = 0; i < it->size(); ++i) {
      const json& a = (*it)[i];
      std::string at = "actions[" + std::to_string(i) + "]";
      if (!a.is_object()) {
        f.Error(at, "must be an object");
        continue;
      }
      for (const auto& [k, v] : a.items()) {
        if (std::find(kAllowed.begin(), kAllowed.end(), k) == kAllowed.end()) {
          f.Error(at + "." + k, "unknown field");
        }
      }
      json action = json::object();
      json ns = a.value("namespace", json());
      if (!ns.is_string() || !ValidLabel(ns.get<std::string>())) {
        f.Error(at + ".namespace", std::string("required; ") + kLabelRule);
      } else {
        action["namespace"] = ns;
      }
      action["pod_selector"] =
          a.contains("pod_selector") && !a["pod_selector"].is_null()
              ? f.StringMapValue(a["pod_selector"], at + ".pod_selector", nullptr, "")
              : json::object();
      json container = a.value("container", json());
      if (!container.is_null() && (!container.is_string() || container.get<std::string>().empty() ||
                                   container.get<std::string>().size() > 253)) {
        f.Error(at + ".container", "must be a container name or null");
      }
      action["container"] = container;
      json command = a.value("command", json());
      if (!command.is_string() || command.get<std::string>().empty() ||
          command.get<std::string>().size() > 4096) {
        f.Error(at + ".command", "required: a non-empty string of at most 4096 characters");
      } else {
        action["command"] = command;
      }
      for (const char* flag : {"all_pods", "abort_on_failure"}) {
        json v = a.value(flag, json(std::string_view(flag) == "abort_on_failure"));
        if (!v.is_boolean()) {
          f.Error(at + "." + flag, "must be true or false");
        }
        action[flag] = v;
      }
      json timeout = a.value("timeout_seconds", json(60));
      if (auto v = f.IntValue(timeout, at + ".timeout_seconds", 1, 86400)) {
        action["timeout_seconds"] = *v;
      }
      out.push_back(action);
    }
    return out;
  }

  // Validated spec of `kind` from `f` (the create body, or the merge-patched
  // view of an object). Secrets go to `secrets`, references to `refs`.
  json BuildSpec(store::Kind kind, Fields& f, json* secrets, std::map<std::string, int64_t>* refs) {
    json spec = json::object();
    switch (kind) {
      case store::Kind::kCluster: {
        std::string kubeconfig = f.String("kubeconfig", 512 << 10);
        std::optional<std::string> context = f.OptString("context", 253);
        std::string mover = f.OptString("data_mover", 16).value_or("generic");
        if (mover != "csi" && mover != "generic") {
          f.Error("data_mover", "must be \"csi\" or \"generic\"");
        }
        spec["data_mover"] = mover;
        spec["context"] = context ? json(*context) : json(nullptr);
        if (!kubeconfig.empty()) {
          Result<kube::KubeConfig> kc = kube::ParseKubeconfig(kubeconfig, context.value_or(""));
          if (!kc.ok()) {
            f.Error("kubeconfig", kc.status().message());
          } else {
            spec["server"] = kc->server;
            spec["context"] = kc->context;
            if (context) {
              spec["context_requested"] = *context;
            }
          }
          (*secrets)["kubeconfig"] = kubeconfig;
        }
        break;
      }
      case store::Kind::kSchedulePolicy:
        spec["schedule"] = ScheduleSpec(f);
        spec["retain"] = f.Int("retain", 1, 100000, /*required=*/true).value_or(0);
        spec["incrementals_between_fulls"] =
            f.Int("incrementals_between_fulls", 0, 10000).value_or(0);
        break;
      case store::Kind::kRule:
        spec["actions"] = ActionsSpec(f);
        break;
      case store::Kind::kBackup: {
        for (const char* ref : {"cluster_id", "location_id"}) {
          (*refs)[ref] = f.Id(ref, /*required=*/true);
        }
        for (const char* ref : {"pre_rule_id", "post_rule_id", "schedule_policy_id"}) {
          (*refs)[ref] = f.Id(ref, /*required=*/false);
        }
        spec["namespaces"] =
            f.Namespaces("namespaces", /*required=*/true).value_or(std::vector<std::string>{});
        std::optional<std::string> selector = f.OptString("label_selector", 1024);
        spec["label_selector"] = selector ? json(*selector) : json(nullptr);
        std::string type = f.OptString("type", 16).value_or("full");
        if (type != "full" && type != "incremental") {
          f.Error("type", "must be \"full\" or \"incremental\"");
        }
        spec["type"] = type;
        spec["labels"] = f.StringMap("labels");
        break;
      }
      case store::Kind::kRestore: {
        (*refs)["backup_id"] = f.Id("backup_id", true);
        (*refs)["cluster_id"] = f.Id("cluster_id", true);
        std::optional<std::vector<std::string>> ns = f.Namespaces("namespaces", false);
        spec["namespaces"] = ns ? json(*ns) : json(nullptr);
        spec["namespace_mapping"] = f.StringMap("namespace_mapping", ValidLabel, kLabelRule);
        spec["storage_class_mapping"] = f.StringMap("storage_class_mapping");
        spec["project_mapping"] = f.StringMap("project_mapping");
        std::string policy = f.OptString("replace_policy", 16).value_or("retain");
        if (policy != "retain" && policy != "replace") {
          f.Error("replace_policy", "must be \"retain\" or \"replace\"");
        }
        spec["replace_policy"] = policy;
        spec["labels"] = f.StringMap("labels");
        break;
      }
    }
    return spec;
  }

  // The API's view of what a client set on the object (spec, name, and for
  // clusters the sealed kubeconfig): what a merge-patch applies to.
  json InputView(store::Kind kind, const store::ObjectRecord& o) {
    json view = json::parse(o.spec_json, nullptr, false);
    if (!view.is_object()) {
      view = json::object();
    }
    view["name"] = o.name;
    if (kind == store::Kind::kCluster) {
      view.erase("server");
      view["context"] = view.value("context_requested", json());
      view.erase("context_requested");
      if (!o.sealed_secrets.empty()) {
        json secrets = json::parse(Must(secrets_->Open(o.sealed_secrets, SecretAad(kind, o.name))),
                                   nullptr, false);
        if (secrets.is_object() && secrets.contains("kubeconfig")) {
          view["kubeconfig"] = secrets["kubeconfig"];
        }
      }
    }
    for (const auto& [ref, v] : o.refs) {
      view[ref] = v;
    }
    return view;
  }

  static std::string SecretAad(store::Kind kind, const std::string& name) {
    return std::string(store::KindName(kind)) + "/" + name;
  }

  json ObjectJson(store::Kind kind, const store::ObjectRecord& o, Access access) {
    json spec = json::parse(o.spec_json, nullptr, false);
    json status = json::parse(o.status_json, nullptr, false);
    if (!status.is_object()) {
      status = json::object();
    }
    json out{{"id", o.id},
             {"name", o.name},
             {"owner", o.owner_id},
             {"access", AccessName(access)},
             {"created_at", o.created_at},
             {"updated_at", o.updated_at}};
    if (spec.is_object()) {
      for (const auto& [k, v] : spec.items()) {
        if (k != "context_requested") {
          out[k] = v;
        }
      }
    }
    for (std::string_view ref : store::KindRefs(kind)) {
      int64_t v = o.Ref(ref);
      out[std::string(ref)] = v == 0 ? json(nullptr) : json(v);
    }
    if (kind == store::Kind::kCluster) {
      out["status"] = status;
    }
    if (store::KindHasState(kind)) {
      out["state"] = o.state;
      for (const char* k : {"reason", "started_at", "finished_at"}) {
        out[k] = status.value(k, json());
      }
      if (kind == store::Kind::kBackup) {
        for (const char* k : {"bytes_total", "bytes_new"}) {
          out[k] = status.value(k, json(0));
        }
      }
    }
    return out;
  }

  // Probes the cluster and returns its status object.
  json ProbeCluster(const std::string& kubeconfig, const json& spec) {
    json status{{"reachable", false},
                {"reason", nullptr},
                {"version", nullptr},
                {"checked_at", Rfc3339(now_)}};
    Result<kube::KubeConfig> kc =
        kube::ParseKubeconfig(kubeconfig, spec.value("context_requested", std::string()));
    if (!kc.ok()) {
      status["reason"] = kc.status().message();
      return status;
    }
    kube::ProbeResult r = options_.cluster_prober
                              ? options_.cluster_prober(*kc)
                              : kube::ProbeVersion(*kc, options_.cluster_probe_timeout);
    status["reachable"] = r.reachable;
    status["reason"] = r.reachable ? json(nullptr) : json(r.reason);
    status["version"] = r.version.empty() ? json(nullptr) : json(r.version);
    return status;
  }

  // References of a new backup or restore, checked against the caller's
  // access (see openapi.json "Access"); fills `status` defaults.
  void CheckReferences(store::Kind kind, const Principal& p,
                       const std::map<std::string, int64_t>& refs, const json& spec) {
    auto ref = [&](const char* k) {
      auto it = refs.find(k);
      return it == refs.end() ? int64_t{0} : it->second;
    };
    if (kind == store::Kind::kBackup) {
      Referenced(store::Kind::kCluster, p, "cluster_id", ref("cluster_id"), Access::kRead);
      std::string loc_name;
      if (LocationAccess(p, ref("location_id"), &loc_name) == Access::kNone) {
        std::string why = "no backup location with id " + std::to_string(ref("location_id"));
        Fail(400, "invalid_argument", "invalid request: location_id: " + why,
             json{{"fields", {{"location_id", why}}}});
      }
      for (const char* r : {"pre_rule_id", "post_rule_id"}) {
        if (ref(r) != 0) {
          Referenced(store::Kind::kRule, p, r, ref(r), Access::kRead);
        }
      }
      if (ref("schedule_policy_id") != 0) {
        Referenced(store::Kind::kSchedulePolicy, p, "schedule_policy_id", ref("schedule_policy_id"),
                   Access::kRead);
      }
    } else if (kind == store::Kind::kRestore) {
      store::ObjectRecord backup =
          Referenced(store::Kind::kBackup, p, "backup_id", ref("backup_id"), Access::kRead);
      // Restoring from a backup also needs READ on the location holding it.
      std::string loc_name;
      if (LocationAccess(p, backup.Ref("location_id"), &loc_name) < Access::kRead) {
        std::string why =
            "needs READ access on the backup location holding backup \"" + backup.name + "\"";
        Fail(403, "permission_denied", "backup_id: " + why, json{{"fields", {{"backup_id", why}}}});
      }
      Referenced(store::Kind::kCluster, p, "cluster_id", ref("cluster_id"), Access::kFull);
      // What is restored must be in the backup.
      json backed_up = json::parse(backup.spec_json, nullptr, false).value("namespaces", json());
      auto in_backup = [&](const std::string& ns) {
        return backed_up.is_array() &&
               std::find(backed_up.begin(), backed_up.end(), ns) != backed_up.end();
      };
      json field_errors = json::object();
      const json namespaces = spec.value("namespaces", json::array());
      const json mapping = spec.value("namespace_mapping", json::object());
      for (const json& ns : namespaces.is_array() ? namespaces : json::array()) {
        if (ns.is_string() && !in_backup(ns.get<std::string>())) {
          field_errors["namespaces"] = "namespace \"" + ns.get<std::string>() +
                                       "\" is not in backup \"" + backup.name + "\"";
        }
      }
      for (const auto& [from, to] : mapping.items()) {
        if (!in_backup(from)) {
          field_errors["namespace_mapping." + from] =
              "namespace \"" + from + "\" is not in backup \"" + backup.name + "\"";
        }
      }
      if (!field_errors.empty()) {
        std::string msg = "invalid request: ";
        for (const auto& [k, v] : field_errors.items()) {
          msg += k + ": " + v.get<std::string>() + "; ";
        }
        Fail(400, "invalid_argument", msg.substr(0, msg.size() - 2),
             json{{"fields", field_errors}});
      }
    }
  }

  ApiResponse CreateObject(store::Kind kind, const Principal& p) {
    Fields f(Fields::ParseBody(ctx_.req.body), CreateFields(kind));
    std::string name = f.Name("name");
    json secrets = json::object();
    std::map<std::string, int64_t> refs;
    json spec = BuildSpec(kind, f, &secrets, &refs);
    f.Done();
    CheckReferences(kind, p, refs, spec);
    store::ObjectRecord o;
    o.name = name;
    o.owner_id = p.user_id;
    o.created_at = o.updated_at = now_;
    for (const auto& [k, v] : refs) {
      if (v != 0) {
        o.refs[k] = v;
      }
    }
    json status = json::object();
    if (kind == store::Kind::kCluster) {
      status = ProbeCluster(secrets["kubeconfig"].get<std::string>(), spec);
    }
    if (store::KindHasState(kind)) {
      o.state = "pending";
      status = json{{"reason", nullptr}, {"started_at", nullptr}, {"finished_at", nullptr}};
      if (kind == store::Kind::kBackup) {
        status["bytes_total"] = 0;
        status["bytes_new"] = 0;
      }
    }
    o.spec_json = Dump(spec);
    o.status_json = Dump(status);
    if (!secrets.empty()) {
      o.sealed_secrets = Must(secrets_->Seal(Dump(secrets), SecretAad(kind, name)));
    }
    o.id = Must(store_->CreateObject(kind, o));
    if (store::KindHasState(kind)) {
      Must(store_->AppendEvent(kind, o.id, {0, now_, "info", "created (state pending)"}));
    }
    return Json(201, ObjectJson(kind, o, Access::kOwner));
  }

  ApiResponse GetObject(store::Kind kind, const Principal& p, std::string_view id) {
    auto [o, a] = VisibleObject(kind, p, id);
    return Json(200, ObjectJson(kind, o, a));
  }

  ApiResponse ListObjects(store::Kind kind, const Principal& p) {
    // Filters: ?name=, and ?state=, ?cluster_id=, ?location_id=, ?backup_id=
    // where the kind has them. A reference matches the id's decimal text
    // exactly ("0" an absent reference); other text matches nothing.
    store::ListQuery q = PageQuery();
    bool impossible = false;
    if (auto state = ctx_.query.find("state");
        store::KindHasState(kind) && state != ctx_.query.end()) {
      q.state = state->second;
    }
    for (std::string_view r : store::KindRefs(kind)) {
      auto it = ctx_.query.find(std::string(r));
      if (it == ctx_.query.end()) {
        continue;
      }
      int64_t id = 0;
      auto [end, ec] =
          std::from_chars(it->second.data(), it->second.data() + it->second.size(), id);
      if (ec != std::errc() || end != it->second.data() + it->second.size() ||
          std::to_string(id) != it->second) {
        impossible = true;
      }
      q.refs[std::string(r)] = id;
    }
    if (impossible) {
      return Json(200, json{{"items", json::array()}, {"next_after", nullptr}});
    }
    store::ListPage<store::ObjectRecord> page = Must(store_->ListObjectsPage(kind, ViewerOf(p), q));
    return Json(200, PageJson(page, [&](const store::ObjectRecord& o, size_t i) {
                  return ObjectJson(kind, o, ListedAccess(page.access[i]));
                }));
  }

  ApiResponse PatchObject(store::Kind kind, const Principal& p, std::string_view id) {
    auto [o, a] = VisibleObject(kind, p, id);
    Owned owned{std::string(store::KindName(kind)), Noun(kind), o.id, o.name, a};
    RequireFull(owned, "updating");
    json patch = Fields::ParseBody(ctx_.req.body);
    std::vector<std::string_view> mutable_fields = MutableFields(kind);
    {
      Fields check(patch, CreateFields(kind));
      for (std::string_view k : CreateFields(kind)) {
        if (patch.contains(k) &&
            std::find(mutable_fields.begin(), mutable_fields.end(), k) == mutable_fields.end()) {
          check.Error(std::string(k), "cannot be changed");
        }
      }
      check.Done();
    }
    json view = InputView(kind, o);
    view.merge_patch(patch);
    Fields f(view, CreateFields(kind));
    std::string old_name = o.name;
    o.name = f.Name("name");
    json secrets = json::object();
    std::map<std::string, int64_t> refs;
    json spec = BuildSpec(kind, f, &secrets, &refs);
    f.Done();
    o.spec_json = Dump(spec);
    o.updated_at = now_;
    if (!secrets.empty()) {
      o.sealed_secrets = Must(secrets_->Seal(Dump(secrets), SecretAad(kind, o.name)));
    }
    if (kind == store::Kind::kCluster &&
        (patch.contains("kubeconfig") || patch.contains("context"))) {
      o.status_json = Dump(ProbeCluster(secrets["kubeconfig"].get<std::string>(), spec));
    }
    Must(store_->UpdateObject(kind, o));
    if (store::KindHasState(kind) && old_name != o.name) {
      Must(store_->AppendEvent(kind, o.id, {0, now_, "info", "renamed from \"" + old_name + "\""}));
    }
    return Json(200, ObjectJson(kind, o, a));
  }

  ApiResponse DeleteObject(store::Kind kind, const Principal& p, std::string_view id) {
    auto [o, a] = VisibleObject(kind, p, id);
    RequireFull(Owned{std::string(store::KindName(kind)), Noun(kind), o.id, o.name, a}, "deleting");
    Must(store_->DeleteObject(kind, o.id));
    return NoContent();
  }

  ApiResponse ProbeClusterNow(const Principal& p, std::string_view id) {
    auto [o, a] = VisibleObject(store::Kind::kCluster, p, id);
    json spec = json::parse(o.spec_json, nullptr, false);
    json secrets = json::parse(
        Must(secrets_->Open(o.sealed_secrets, SecretAad(store::Kind::kCluster, o.name))), nullptr,
        false);
    o.status_json = Dump(ProbeCluster(secrets.value("kubeconfig", std::string()), spec));
    o.updated_at = now_;
    Must(store_->UpdateObject(store::Kind::kCluster, o));
    return Json(200, ObjectJson(store::Kind::kCluster, o, a));
  }

  ApiResponse BackupLogs(const Principal& p, std::string_view id) {
    auto [o, a] = VisibleObject(store::Kind::kBackup, p, id);
    (void)a;
    json items = json::array();
    for (const store::EventRecord& e : Must(store_->ListEvents(store::Kind::kBackup, o.id))) {
      items.push_back(json{{"time", Rfc3339(e.time)}, {"level", e.level}, {"message", e.message}});
    }
    return Json(200, json{{"items", items}});
  }

  // /metrics additions from the datastore.
  std::string BackupMetrics() {
    std::map<std::string, int64_t> counts = Must(store_->CountByState(store::Kind::kBackup));
    return RenderBackupMetrics(counts,
                               Must(store_->SumStatusField(store::Kind::kBackup, "bytes_total")),
                               Must(store_->SumStatusField(store::Kind::kBackup, "bytes_new")));
  }

 private:
  auth::LoginThrottle* const throttle_;          // per user name and host
  auth::LoginThrottle* const address_throttle_;  // per host; successes do not clear it
  ApiHandler::Context& ctx_;
  store::Store* const store_;
  const auth::SecretBox* const secrets_;
  const LocationProber& prober_;
  const HandlerOptions& options_;
  const int64_t now_;
};

std::map<std::string, std::string> ParseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i <= q.size() && !q.empty()) {
    size_t end = q.find('&', i);
    if (end == std::string_view::npos) {
      end = q.size();
    }
    std::string_view kv = q.substr(i, end - i);
    size_t eq = kv.find('=');
    if (!kv.empty()) {
      out[std::string(kv.substr(0, eq))] =
          eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1));
    }
    i = end + 1;
  }
  return out;
}

[[noreturn]] void MethodNotAllowed(const std::string& allow) {
  Fail(405, "method_not_allowed", "allowed methods: " + allow, json{{"allow", allow}});
}

}  // namespace

ApiHandler::ApiHandler(store::Store* store, const auth::SecretBox* secrets, Metrics* metrics,
                       LocationProber prober, HandlerOptions options,
                       std::function<int64_t()> clock)
    : store_(store),
      secrets_(secrets),
      metrics_(metrics),
      prober_(prober ? std::move(prober) : LocationProber(ProbeLocation)),
      options_(std::move(options)),
      clock_(clock ? std::move(clock) : [] {
        return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
      }),
      login_throttle_(options_.login_max_failures, options_.login_failure_window.count()),
      address_throttle_(options_.login_max_failures_per_address,
                        options_.login_failure_window.count()) {}

ApiResponse ApiHandler::Handle(const ApiRequest& request) {
  auto start = std::chrono::steady_clock::now();
  Context ctx{request, {}, {}, "unmatched", std::nullopt};
  size_t q = request.target.find('?');
  ctx.path = request.target.substr(0, q);
  if (q != std::string::npos) {
    ctx.query = ParseQuery(std::string_view(request.target).substr(q + 1));
  }
  ApiResponse response;
  try {
    if (request.body.size() > options_.max_body_bytes) {
      Fail(413, "payload_too_large",
           "the request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes");
    }
    response = Dispatch(ctx);
  } catch (const ApiError& e) {
    response =
        Json(e.status, json{{"code", e.code}, {"message", e.message}, {"details", e.details}});
    if (e.status == 401) {
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
    }
    if (e.status == 429) {
      response.headers.emplace_back("Retry-After",
                                    std::to_string(e.details.value("retry_after_seconds", 60)));
    }
    if (e.status == 405) {
      response.headers.emplace_back("Allow", e.details.value("allow", ""));
    }
  } catch (const std::exception& e) {
    spdlog::error("{} {}: unexpected error: {}", request.method, ctx.route, e.what());
    response = ErrorResponse(500, "internal", "internal error; see the bunkerd log");
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Record(request.method, ctx.path, ctx.route, response.status, seconds,
         ctx.who ? ctx.who->name : "-", request.remote);
  return response;
}

namespace {

// The method as a metrics label: the methods HTTP defines, anything else
// "other", so clients cannot create series at will.
std::string MethodLabel(const std::string& m) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (m == known) {
      return m;
    }
  }
  return m.empty() || m == "-" ? "-" : "other";
}

}  // namespace

void ApiHandler::Record(const std::string& method, const std::string& path,
                        const std::string& route, int status, double seconds,
                        const std::string& user, const std::string& remote) {
  if (metrics_ != nullptr) {
    metrics_->RecordRequest(MethodLabel(method), route, status, seconds);
  }
  spdlog::info("{} {} {} {:.1f}ms user={} remote={}", method.empty() ? "-" : method,
               path.empty() ? "-" : path, status, seconds * 1000, user,
               remote.empty() ? "-" : remote);
}

namespace {

using Args = std::vector<std::string_view>;  // the {…} segments of the path, in order
using RouteFn = std::function<ApiResponse(Routes&, const Principal&, const Args&)>;

// One API route. Routes marked public need no bearer token; the few that
// need the handler's own state (health, readiness, metrics, openapi, login)
// have no `fn` and are answered by Dispatch itself.
struct RouteDef {
  std::string method;
  std::string pattern;  // "/api/v1/backups/{id}/grants"
  RouteFn fn;
  ApiHandler::Work work = ApiHandler::Work::kQuick;  // set from kSlowRoutes
};

// Routes that hash passwords (scrypt) or probe clusters and storage; see
// ApiHandler::Classify.
const std::vector<std::tuple<std::string, std::string, ApiHandler::Work>> kSlowRoutes = {
    {"POST", "/api/v1/login", ApiHandler::Work::kCompute},
    {"POST", "/api/v1/users", ApiHandler::Work::kCompute},
    {"PATCH", "/api/v1/users/{id}", ApiHandler::Work::kCompute},
    {"POST", "/api/v1/backup-locations", ApiHandler::Work::kWait},
    {"POST", "/api/v1/clusters", ApiHandler::Work::kWait},
    {"PATCH", "/api/v1/clusters/{id}", ApiHandler::Work::kWait},
    {"POST", "/api/v1/clusters/{id}/probe", ApiHandler::Work::kWait},
};

// Adds the list/create/get/patch/delete and grants routes of one ownable
// resource.
void AddOwnable(std::vector<RouteDef>& t, const std::string& base,
                std::optional<store::Kind> kind) {
  const std::string one = base + "/{id}";
  if (kind) {
    store::Kind k = *kind;
    t.push_back({"GET", base,
                 [k](Routes& r, const Principal& p, const Args&) { return r.ListObjects(k, p); }});
    t.push_back({"POST", base,
                 [k](Routes& r, const Principal& p, const Args&) { return r.CreateObject(k, p); }});
    t.push_back({"GET", one, [k](Routes& r, const Principal& p, const Args& a) {
                   return r.GetObject(k, p, a[0]);
                 }});
    t.push_back({"PATCH", one, [k](Routes& r, const Principal& p, const Args& a) {
                   return r.PatchObject(k, p, a[0]);
                 }});
    t.push_back({"DELETE", one, [k](Routes& r, const Principal& p, const Args& a) {
                   return r.DeleteObject(k, p, a[0]);
                 }});
  }
  t.push_back({"GET", one + "/grants", [kind](Routes& r, const Principal& p, const Args& a) {
                 return r.ListGrants(kind, p, a[0]);
               }});
  t.push_back({"POST", one + "/grants", [kind](Routes& r, const Principal& p, const Args& a) {
                 return r.CreateGrant(kind, p, a[0]);
               }});
  t.push_back(
      {"DELETE", one + "/grants/{grant_id}", [kind](Routes& r, const Principal& p, const Args& a) {
         return r.DeleteGrant(kind, p, a[0], a[1]);
       }});
}

const std::vector<RouteDef>& RouteTable() {
  static const std::vector<RouteDef> table = [] {
    std::vector<RouteDef> t = {
        {"GET", "/healthz", nullptr},
        {"GET", "/readyz", nullptr},
        {"GET", "/metrics", nullptr},
        {"GET", "/api/v1/openapi.json", nullptr},
        {"POST", "/api/v1/login", nullptr},
        {"GET", "/api/v1/tokens",
         [](Routes& r, const Principal& p, const Args&) { return r.ListTokens(p); }},
        {"POST", "/api/v1/tokens",
         [](Routes& r, const Principal& p, const Args&) { return r.CreateToken(p); }},
        {"DELETE", "/api/v1/tokens/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.RevokeToken(p, a[0]); }},
        {"GET", "/api/v1/users",
         [](Routes& r, const Principal& p, const Args&) { return r.ListUsers(p); }},
        {"POST", "/api/v1/users",
         [](Routes& r, const Principal& p, const Args&) { return r.CreateUser(p); }},
        {"GET", "/api/v1/users/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.GetUser(p, a[0]); }},
        {"PATCH", "/api/v1/users/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.PatchUser(p, a[0]); }},
        {"DELETE", "/api/v1/users/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.DeleteUser(p, a[0]); }},
        {"GET", "/api/v1/groups",
         [](Routes& r, const Principal& p, const Args&) { return r.ListGroups(p); }},
        {"POST", "/api/v1/groups",
         [](Routes& r, const Principal& p, const Args&) { return r.CreateGroup(p); }},
        {"GET", "/api/v1/groups/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.GetGroup(p, a[0]); }},
        {"PATCH", "/api/v1/groups/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.PatchGroup(p, a[0]); }},
        {"DELETE", "/api/v1/groups/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.DeleteGroup(p, a[0]); }},
        {"POST", "/api/v1/groups/{id}/members",
         [](Routes& r, const Principal& p, const Args& a) { return r.AddMember(p, a[0]); }},
        {"DELETE", "/api/v1/groups/{id}/members/{user_id}",
         [](Routes& r, const Principal& p, const Args& a) {
           return r.RemoveMember(p, a[0], a[1]);
         }},
        {"GET", "/api/v1/backup-locations",
         [](Routes& r, const Principal& p, const Args&) { return r.ListLocations(p); }},
        {"POST", "/api/v1/backup-locations",
         [](Routes& r, const Principal& p, const Args&) { return r.CreateLocation(p); }},
        {"GET", "/api/v1/backup-locations/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.GetLocation(p, a[0]); }},
        {"PATCH", "/api/v1/backup-locations/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.PatchLocation(p, a[0]); }},
        {"DELETE", "/api/v1/backup-locations/{id}",
         [](Routes& r, const Principal& p, const Args& a) { return r.DeleteLocation(p, a[0]); }},
    };
    AddOwnable(t, "/api/v1/backup-locations", std::nullopt);
    AddOwnable(t, "/api/v1/clusters", store::Kind::kCluster);
    t.push_back(
        {"POST", "/api/v1/clusters/{id}/probe",
         [](Routes& r, const Principal& p, const Args& a) { return r.ProbeClusterNow(p, a[0]); }});
    AddOwnable(t, "/api/v1/schedule-policies", store::Kind::kSchedulePolicy);
    AddOwnable(t, "/api/v1/rules", store::Kind::kRule);
    AddOwnable(t, "/api/v1/backups", store::Kind::kBackup);
    t.push_back(
        {"GET", "/api/v1/backups/{id}/logs",
         [](Routes& r, const Principal& p, const Args& a) { return r.BackupLogs(p, a[0]); }});
    AddOwnable(t, "/api/v1/restores", store::Kind::kRestore);
    for (RouteDef& def : t) {
      for (const auto& [method, pattern, work] : kSlowRoutes) {
        if (def.method == method && def.pattern == pattern) {
          def.work = work;
        }
      }
    }
    return t;
  }();
  return table;
}

// Matches `seg` against `pattern`; the {…} segments go to `args`.
bool Match(const std::string& pattern, const std::vector<std::string_view>& seg, Args* args) {
  std::vector<std::string_view> want = SplitPath(pattern);
  if (want.size() != seg.size()) {
    return false;
  }
  args->clear();
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].empty() && want[i].front() == '{') {
      args->push_back(seg[i]);
    } else if (want[i] != seg[i]) {
      return false;
    }
  }
  return true;
}

// The route `method` `path` goes to (nullptr when none), and the template of
// the path's route for metrics ("unmatched" when no route has that path).
const RouteDef* FindRoute(const std::string& method, std::string_view path, std::string* route) {
  std::vector<std::string_view> seg = SplitPath(path);
  *route = "unmatched";
  Args args;
  for (const RouteDef& def : RouteTable()) {
    if (Match(def.pattern, seg, &args)) {
      *route = def.pattern;
      if (def.method == method) {
        return &def;
      }
    }
  }
  return nullptr;
}

std::string_view PathOf(const std::string& target) {
  return std::string_view(target).substr(0, target.find('?'));
}

}  // namespace

ApiHandler::Work ApiHandler::Classify(const ApiRequest& request) const {
  std::string route;
  const RouteDef* def = FindRoute(request.method, PathOf(request.target), &route);
  return def != nullptr ? def->work : Work::kQuick;
}

void ApiHandler::RecordServerResponse(const std::string& method, const std::string& target,
                                      int status, double seconds, const std::string& remote) {
  std::string path(PathOf(target));
  std::string route = "unmatched";
  if (!path.empty()) {
    FindRoute(method, path, &route);
  }
  Record(method, path, route, status, seconds, "-", remote);
}

std::vector<std::pair<std::string, std::string>> ApiRoutes() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const RouteDef& r : RouteTable()) {
    out.emplace_back(r.method, r.pattern);
  }
  return out;
}

ApiResponse ApiHandler::Dispatch(Context& ctx) {
  const std::string& m = ctx.req.method;
  std::vector<std::string_view> seg = SplitPath(ctx.path);
  Routes r(ctx, store_, secrets_, prober_, options_, clock_(), &login_throttle_,
           &address_throttle_);

  const RouteDef* found = nullptr;
  std::string allow;
  Args args;
  for (const RouteDef& def : RouteTable()) {
    Args a;
    if (!Match(def.pattern, seg, &a)) {
      continue;
    }
    ctx.route = def.pattern;
    allow += (allow.empty() ? "" : ", ") + def.method;
    if (def.method == m) {
      found = &def;
      args = std::move(a);
    }
  }
  if (allow.empty()) {
    Fail(404, "not_found", "no such endpoint: " + ctx.path);
  }
  if (found == nullptr) {
    MethodNotAllowed(allow);
  }
  if (found->fn) {
    const Principal& p = r.Authenticate(ctx.who);
    return found->fn(r, p, args);
  }
  if (ctx.route == "/healthz") {
    return Json(200, json{{"status", "ok"}});
  }
  if (ctx.route == "/readyz") {
    if (!ready_) {
      Fail(503, "unavailable", "not ready");
    }
    Must(store_->CountUsers().status());
    return Json(200, json{{"status", "ready"}});
  }
  if (ctx.route == "/metrics") {
    ApiResponse res;
    res.content_type = "text/plain; version=0.0.4";
    res.body = metrics_ != nullptr ? metrics_->RenderPrometheus() : "";
    res.body += r.BackupMetrics();
    return res;
  }
  if (ctx.route == "/api/v1/openapi.json") {
    ApiResponse out;
    out.body = OpenApiDocument();
    return out;
  }
  return r.Login();
}

}  // namespace bunker::api
