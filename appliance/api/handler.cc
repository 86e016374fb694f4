#include "appliance/api/handler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "appliance/auth/access.h"
#include "appliance/auth/password.h"
#include "appliance/auth/token.h"

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

[[noreturn]] void NotFoundError(std::string what) { Fail(404, "not_found", what + " not found"); }

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
      Fail(500, "internal", st.ToString());
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

// Reads a JSON object body against a fixed set of fields. Every problem is
// collected per field; Done() throws one 400 naming them all.
class Fields {
 public:
  Fields(const std::string& body, std::initializer_list<std::string_view> allowed) {
    if (body.empty()) {
      Fail(400, "invalid_argument", "a JSON object body is required");
    }
    obj_ = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (obj_.is_discarded()) {
      Fail(400, "malformed_json", "the request body is not valid JSON");
    }
    if (!obj_.is_object()) {
      Fail(400, "invalid_argument", "the request body must be a JSON object");
    }
    for (const auto& [key, value] : obj_.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        errors_[key] = "unknown field";
      }
    }
  }

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

ApiResponse Json(int status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

ApiResponse NoContent() {
  ApiResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
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
         auth::LoginThrottle* throttle)
      : throttle_(throttle),
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

  // ?limit=N&after=ID over records sorted by id.
  template <typename T, typename F>
  json Page(const std::vector<T>& items, F to_json) {
    int64_t limit = 100;
    int64_t after = 0;
    json field_errors = json::object();
    if (auto it = ctx_.query.find("limit"); it != ctx_.query.end()) {
      std::optional<int64_t> v = ParseId(it->second);
      if (!v || *v > 1000) {
        field_errors["limit"] = "must be an integer from 1 to 1000";
      } else {
        limit = *v;
      }
    }
    if (auto it = ctx_.query.find("after"); it != ctx_.query.end()) {
      std::optional<int64_t> v = ParseId(it->second);
      if (!v) {
        field_errors["after"] = "must be a positive integer (an id)";
      } else {
        after = *v;
      }
    }
    if (!field_errors.empty()) {
      Fail(400, "invalid_argument", "invalid query parameters", json{{"fields", field_errors}});
    }
    json out = json::array();
    json next = nullptr;
    for (const T& item : items) {
      if (item.id <= after) {
        continue;
      }
      if (static_cast<int64_t>(out.size()) == limit) {
        next = out.back()["id"];
        break;
      }
      out.push_back(to_json(item));
    }
    return json{{"items", out}, {"next_after", next}};
  }

  // --- login and tokens ---

  ApiResponse Login() {
    Fields f(ctx_.req.body, {"username", "password", "description"});
    std::string username = f.String("username", 63);
    std::string password = f.String("password", 1024);
    std::string description = f.OptString("description", 256).value_or("");
    f.Done();
    // Throttled per user name and client host (the port changes per connection).
    std::string host = ctx_.req.remote.substr(0, ctx_.req.remote.rfind(':'));
    std::string key = username + "@" + host;
    if (int64_t wait = throttle_->RetryAfter(key, now_); wait > 0) {
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
    return Json(200, Page(Must(store_->ListUsers()), UserJson));
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
    return Json(200, Page(Must(store_->ListGroups()), GroupJson));
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
    std::vector<store::LocationRecord> visible;
    std::map<int64_t, Access> access;
    auto type = ctx_.query.find("type");
    for (store::LocationRecord& l : Must(store_->ListLocations())) {
      Access a = auth::EffectiveAccess(p, l.owner_id,
                                       Must(store_->ListGrants(store::kKindLocation, l.id)));
      if (a == Access::kNone || (type != ctx_.query.end() && type->second != l.type)) {
        continue;
      }
      access[l.id] = a;
      visible.push_back(std::move(l));
    }
    return Json(200, Page(visible, [&](const store::LocationRecord& l) {
                  return LocationJson(l, access[l.id]);
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
    options.s3_endpoint = endpoint.value_or("");
    options.s3_region = region.value_or("");

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
    store::LocationRecord rec{0, name, type, url, config.dump(), {}, p.user_id, now_};
    // Sealed with the name as associated data (the id is not known yet);
    // names are unique and never change.
    if (!secrets.empty()) {
      rec.sealed_secrets = Must(secrets_->Seal(secrets.dump(), "backup-location/" + name));
    }
    rec.id = Must(store_->CreateLocation(rec));
    return Json(201, LocationJson(rec, Access::kOwner));
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
    return json{{"id", g.id},
                {"grantee_type", g.grantee_kind},
                {"grantee_id", g.grantee_id},
                {"access", g.access},
                {"created_at", g.created_at}};
  }

  // Grants are managed by the owner (and admins) only.
  store::LocationRecord GrantableLocation(const Principal& p, std::string_view id) {
    auto [l, a] = VisibleLocation(p, id);
    if (a != Access::kOwner) {
      Fail(403, "permission_denied",
           "only the owner of backup location \"" + l.name + "\" or an admin manages its grants");
    }
    return l;
  }

  ApiResponse ListGrants(const Principal& p, std::string_view id) {
    auto [l, a] = VisibleLocation(p, id);
    (void)a;
    json items = json::array();
    for (const store::GrantRecord& g : Must(store_->ListGrants(store::kKindLocation, l.id))) {
      items.push_back(GrantJson(g));
    }
    return Json(200, json{{"items", items}});
  }

  ApiResponse CreateGrant(const Principal& p, std::string_view id) {
    store::LocationRecord l = GrantableLocation(p, id);
    Fields f(ctx_.req.body, {"grantee_type", "grantee", "access"});
    std::string kind = f.String("grantee_type", 16);
    std::string grantee = f.String("grantee", 63);
    std::string access = f.String("access", 8);
    Access parsed;
    if (!access.empty() && !auth::ParseGrantAccess(access, &parsed)) {
      f.Error("access", "must be \"READ\" or \"FULL\"");
    }
    int64_t grantee_id = 0;
    if (kind == "user") {
      Result<store::UserRecord> u = store_->FindUserByName(grantee);
      if (u.ok()) {
        grantee_id = u->id;
      } else if (!grantee.empty()) {
        f.Error("grantee", "no user named \"" + grantee + "\"");
      }
    } else if (kind == "group") {
      Result<store::GroupRecord> g = store_->FindGroupByName(grantee);
      if (g.ok()) {
        grantee_id = g->id;
      } else if (!grantee.empty()) {
        f.Error("grantee", "no group named \"" + grantee + "\"");
      }
    } else if (!kind.empty()) {
      f.Error("grantee_type", "must be \"user\" or \"group\"");
    }
    f.Done();
    store::GrantRecord g{0,   std::string(store::kKindLocation), l.id, kind, grantee_id, access,
                         now_};
    g.id = Must(store_->CreateGrant(g));
    return Json(201, GrantJson(g));
  }

  ApiResponse DeleteGrant(const Principal& p, std::string_view id, std::string_view grant_id) {
    store::LocationRecord l = GrantableLocation(p, id);
    std::optional<int64_t> gid = ParseId(grant_id);
    bool found = false;
    for (const store::GrantRecord& g : Must(store_->ListGrants(store::kKindLocation, l.id))) {
      found = found || (gid && g.id == *gid);
    }
    if (!found) {
      NotFoundError("grant " + std::string(grant_id));
    }
    Must(store_->DeleteGrant(*gid));
    return NoContent();
  }

 private:
  auth::LoginThrottle* const throttle_;
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
      options_(options),
      clock_(clock ? std::move(clock) : [] {
        return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
      }),
      login_throttle_(options.login_max_failures, options.login_failure_window.count()) {}

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
  if (metrics_ != nullptr) {
    metrics_->RecordRequest(request.method, ctx.route, response.status, seconds);
  }
  spdlog::info("{} {} {} {:.1f}ms user={} remote={}", request.method, ctx.path, response.status,
               seconds * 1000, ctx.who ? ctx.who->name : "-",
               request.remote.empty() ? "-" : request.remote);
  return response;
}

ApiResponse ApiHandler::Dispatch(Context& ctx) {
  const std::string& m = ctx.req.method;
  std::vector<std::string_view> seg = SplitPath(ctx.path);
  Routes r(ctx, store_, secrets_, prober_, options_, clock_(), &login_throttle_);
  auto route = [&](const char* name, const char* allow) {
    ctx.route = name;
    return std::string(allow);
  };

  if (seg.size() == 1 && seg[0] == "healthz") {
    route("/healthz", "GET");
    return Json(200, json{{"status", "ok"}});
  }
  if (seg.size() == 1 && seg[0] == "readyz") {
    route("/readyz", "GET");
    if (!ready_) {
      Fail(503, "unavailable", "not ready");
    }
    Must(store_->CountUsers().status());
    return Json(200, json{{"status", "ready"}});
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    route("/metrics", "GET");
    ApiResponse res;
    res.content_type = "text/plain; version=0.0.4";
    res.body = metrics_ != nullptr ? metrics_->RenderPrometheus() : "";
    return res;
  }
  if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1") {
    Fail(404, "not_found", "no such endpoint: " + ctx.path);
  }
  std::string_view res = seg[2];
  size_t n = seg.size();
  if (res == "openapi.json" && n == 3) {
    std::string allow = route("/api/v1/openapi.json", "GET");
    if (m != "GET") {
      MethodNotAllowed(allow);
    }
    ApiResponse out;
    out.body = OpenApiDocument();
    return out;
  }
  if (res == "login" && n == 3) {
    std::string allow = route("/api/v1/login", "POST");
    if (m != "POST") {
      MethodNotAllowed(allow);
    }
    return r.Login();
  }
  if (res == "users" && n == 3) {
    std::string allow = route("/api/v1/users", "GET, POST");
    const Principal& p = r.Authenticate(ctx.who);
    if (m == "GET") return r.ListUsers(p);
    if (m == "POST") return r.CreateUser(p);
    MethodNotAllowed(allow);
  }
  if (res == "users" && n == 4) {
    std::string allow = route("/api/v1/users/{id}", "GET");
    const Principal& p = r.Authenticate(ctx.who);
    if (m == "GET") return r.GetUser(p, seg[3]);
    MethodNotAllowed(allow);
  }
  if (res == "groups" && n == 3) {
    std::string allow = route("/api/v1/groups", "GET, POST");
    const Principal& p = r.Authenticate(ctx.who);
    if (m == "GET") return r.ListGroups(p);
    if (m == "POST") return r.CreateGroup(p);
    MethodNotAllowed(allow);
  }
  if (res == "tokens" && n == 3) {
    std::string allow = route("/api/v1/tokens", "GET, POST");
    const Principal& p = r.Authenticate(ctx.who);
    if (m == "GET") return r.ListTokens(p);
    if (m == "POST") return r.CreateToken(p);
    MethodNotAllowed(allow);
  }
  if (res == "tokens" && n == 4) {
    std::string allow = route("/api/v1/tokens/{id}", "DELETE");
    const Principal& p = r.Authenticate(ctx.who);
    if (m == "DELETE") return r.RevokeToken(p, seg[3]);
    MethodNotAllowed(allow);
  }
  if (res == "backup-locations") {
    const Principal& p = r.Authenticate(ctx.who);
    if (n == 3) {
      std::string allow = route("/api/v1/backup-locations", "GET, POST");
      if (m == "GET") return r.ListLocations(p);
      if (m == "POST") return r.CreateLocation(p);
      MethodNotAllowed(allow);
    }
    if (n == 4) {
      std::string allow = route("/api/v1/backup-locations/{id}", "GET, DELETE");
      if (m == "GET") return r.GetLocation(p, seg[3]);
      if (m == "DELETE") return r.DeleteLocation(p, seg[3]);
      MethodNotAllowed(allow);
    }
    if (n == 5 && seg[4] == "grants") {
      std::string allow = route("/api/v1/backup-locations/{id}/grants", "GET, POST");
      if (m == "GET") return r.ListGrants(p, seg[3]);
      if (m == "POST") return r.CreateGrant(p, seg[3]);
      MethodNotAllowed(allow);
    }
    if (n == 6 && seg[4] == "grants") {
      std::string allow = route("/api/v1/backup-locations/{id}/grants/{grant_id}", "DELETE");
      if (m == "DELETE") return r.DeleteGrant(p, seg[3], seg[5]);
      MethodNotAllowed(allow);
    }
  }
  Fail(404, "not_found", "no such endpoint: " + ctx.path);
}

}  // namespace bunker::api
