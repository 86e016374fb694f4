// bunkerctl: the command line for bunkerd's REST API. Thin: CLI11 parsing,
// config (cli_config.h), one request per command (client.h), output
// (output.h).
//
// Exit codes: 0 success; 1 failure (server error, connection, TLS); 2 usage
// or invalid input (HTTP 400/413/422); 3 not logged in or token rejected
// (401); 4 not found (404); 5 conflict (409); 6 permission denied (403).

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "appliance/bunkerctl/cli_config.h"
#include "appliance/bunkerctl/client.h"
#include "appliance/bunkerctl/output.h"

namespace bunker::bunkerctl {
namespace {

using json = nlohmann::json;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int ExitCodeForStatus(int http) {
  switch (http) {
    case 400:
    case 413:
    case 422:
      return kExitUsage;
    case 401:
      return 3;
    case 404:
      return 4;
    case 409:
      return 5;
    case 403:
      return 6;
    default:
      return kExitFailure;
  }
}

// Reads a secret from a file ("-" for stdin), dropping one trailing newline.
Result<std::string> ReadSecret(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) {
      return NotFound("cannot read " + path);
    }
    ss << in.rdbuf();
  }
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

struct Globals {
  std::string config_path;
  std::string server;
  std::string ca_file;
  bool insecure = false;
  std::string output = "table";
};

class Cli {
 public:
  explicit Cli(Globals g) : g_(std::move(g)) {}

  // Loads the config and applies the command-line overrides.
  int Setup() {
    if (g_.config_path.empty()) {
      g_.config_path = DefaultConfigPath();
    }
    Result<CliConfig> c = LoadCliConfig(g_.config_path);
    if (!c.ok()) {
      return Error(c.status().message(), kExitUsage);
    }
    config_ = *c;
    if (!g_.server.empty()) {
      config_.server = g_.server;
    }
    if (!g_.ca_file.empty()) {
      config_.ca_file = g_.ca_file;
    }
    if (g_.insecure) {
      config_.insecure_skip_tls_verify = true;
    }
    if (!ParseOutputFormat(g_.output, &format_)) {
      return Error("-o must be table, json or yaml", kExitUsage);
    }
    return 0;
  }

  int Login(const std::string& username, const std::string& password_file) {
    if (config_.server.empty()) {
      return Error("--server https://host:port is required for the first login", kExitUsage);
    }
    Result<std::string> password = ReadSecret(password_file);
    if (!password.ok()) {
      return Error(password.status().message(), kExitUsage);
    }
    config_.token.clear();
    json reply;
    int rc = Call(
        "POST", "/api/v1/login",
        json{{"username", username}, {"password", *password}, {"description", "bunkerctl"}}.dump(),
        &reply);
    if (rc != 0) {
      return rc;
    }
    config_.token = reply["token"].get<std::string>();
    if (Status st = SaveCliConfig(g_.config_path, config_); !st.ok()) {
      return Error(st.message(), kExitFailure);
    }
    std::cerr << "logged in to " << config_.server << " as " << username << "; token saved in "
              << g_.config_path << "\n";
    return 0;
  }

  int Show(const std::string& method, const std::string& path, const std::string& body,
           const std::vector<std::string>& columns) {
    json reply;
    int rc = Call(method, path, body, &reply);
    if (rc == 0 && !reply.is_null()) {
      std::cout << Render(reply, format_, columns);
    }
    return rc;
  }

  // A location's id from an id or a name.
  int ResolveLocation(const std::string& ref, std::string* id) {
    if (!ref.empty() && ref.find_first_not_of("0123456789") == std::string::npos) {
      *id = ref;
      return 0;
    }
    std::string after;
    while (true) {
      json page;
      int rc = Call("GET", "/api/v1/backup-locations?limit=1000" + after, "", &page);
      if (rc != 0) {
        return rc;
      }
      for (const json& item : page["items"]) {
        if (item["name"] == ref) {
          *id = std::to_string(item["id"].get<int64_t>());
          return 0;
        }
      }
      if (page["next_after"].is_null()) {
        return Error("backup location \"" + ref + "\" not found", 4);
      }
      after = "&after=" + std::to_string(page["next_after"].get<int64_t>());
    }
  }

 private:
  int Error(const std::string& message, int code) {
    std::cerr << "bunkerctl: " << message << "\n";
    return code;
  }

  int Call(const std::string& method, const std::string& path, const std::string& body,
           json* reply) {
    if (config_.server.empty()) {
      return Error("not logged in: bunkerctl login --server https://host:port …", 3);
    }
    ClientOptions options;
    options.server = config_.server;
    options.ca_file = config_.ca_file;
    options.insecure_skip_tls_verify = config_.insecure_skip_tls_verify;
    options.token = config_.token;
    Result<ClientResponse> r = ApiClient(options).Call(method, path, body);
    if (!r.ok()) {
      return Error(r.status().message(),
                   r.status().code() == Code::kInvalidArgument ? kExitUsage : kExitFailure);
    }
    json parsed = r->body.empty() ? json() : json::parse(r->body, nullptr, false);
    if (r->status >= 400) {
      std::string msg = parsed.is_object() && parsed.contains("message")
                            ? parsed["message"].get<std::string>()
                            : "HTTP " + std::to_string(r->status);
      return Error(msg, ExitCodeForStatus(r->status));
    }
    *reply = parsed.is_discarded() ? json() : parsed;
    return 0;
  }

  Globals g_;
  CliConfig config_;
  OutputFormat format_ = OutputFormat::kTable;
};

const std::vector<std::string> kLocationColumns = {"id", "name", "type", "url", "access"};
const std::vector<std::string> kUserColumns = {"id", "name", "role"};

}  // namespace
}  // namespace bunker::bunkerctl

int main(int argc, char** argv) {
  using namespace bunker::bunkerctl;
  CLI::App app{"bunkerctl: manage a Bunker appliance (bunkerd) over its REST API"};
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommands too (inherited)
  Globals g;
  app.add_option("--config", g.config_path,
                 "Config file (default $BUNKER_CONFIG, else ~/.config/bunker/config.yaml)");
  app.add_option("--server", g.server, "bunkerd URL, https://host:port");
  app.add_option("--ca-file", g.ca_file, "PEM CA certificates to verify bunkerd with");
  app.add_flag("--insecure-skip-tls-verify", g.insecure,
               "Do not verify bunkerd's certificate (only when asked; never the default)");
  app.add_option("-o,--output", g.output, "table, json or yaml")->capture_default_str();

  std::string username;
  std::string password_file = "-";
  CLI::App* login = app.add_subcommand("login", "Log in and save the token in the config file");
  login->add_option("--username,-u", username, "User name")->required();
  login->add_option("--password-file", password_file, "File with the password; - for stdin")
      ->capture_default_str();

  CLI::App* location = app.add_subcommand("location", "Backup locations");
  location->require_subcommand(1);
  std::string name, type, url, endpoint, region, repo_password_file, key_id, secret_key_file;
  CLI::App* loc_add = location->add_subcommand("add", "Create (and probe) a backup location");
  loc_add->add_option("name", name, "Name")->required();
  loc_add->add_option("--type", type, "file, nfs or s3")->required();
  loc_add->add_option("--url", url, "file:///dir, nfs://host/export/path, s3://bucket/prefix")
      ->required();
  loc_add->add_option("--endpoint", endpoint, "S3 endpoint");
  loc_add->add_option("--region", region, "S3 region");
  loc_add->add_option("--access-key-id", key_id, "S3 access key id");
  loc_add->add_option("--secret-access-key-file", secret_key_file, "File with the S3 secret key");
  loc_add->add_option("--repository-password-file", repo_password_file,
                      "File with the repository password");
  std::string ref;
  CLI::App* loc_list = location->add_subcommand("list", "List backup locations");
  CLI::App* loc_get = location->add_subcommand("get", "Show one backup location");
  loc_get->add_option("location", ref, "Id or name")->required();
  CLI::App* loc_delete = location->add_subcommand("delete", "Delete a backup location's record");
  loc_delete->add_option("location", ref, "Id or name")->required();

  CLI::App* user = app.add_subcommand("user", "Users (admin)");
  user->require_subcommand(1);
  std::string role = "user";
  std::string user_password_file = "-";
  CLI::App* user_add = user->add_subcommand("add", "Create a user");
  user_add->add_option("name", name, "Name")->required();
  user_add->add_option("--role", role, "admin or user")->capture_default_str();
  user_add->add_option("--password-file", user_password_file, "File with the password; - for stdin")
      ->capture_default_str();
  CLI::App* user_list = user->add_subcommand("list", "List users");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  Cli cli(g);
  if (int rc = cli.Setup(); rc != 0) {
    return rc;
  }
  if (*login) {
    return cli.Login(username, password_file);
  }
  if (*loc_add) {
    nlohmann::json body{{"name", name}, {"type", type}, {"url", url}};
    if (!endpoint.empty()) body["endpoint"] = endpoint;
    if (!region.empty()) body["region"] = region;
    if (!key_id.empty()) body["access_key_id"] = key_id;
    for (auto [file, field] : {std::pair{&secret_key_file, "secret_access_key"},
                               std::pair{&repo_password_file, "repository_password"}}) {
      if (file->empty()) continue;
      auto secret = ReadSecret(*file);
      if (!secret.ok()) {
        std::cerr << "bunkerctl: " << secret.status().message() << "\n";
        return 2;
      }
      body[field] = *secret;
    }
    return cli.Show("POST", "/api/v1/backup-locations", body.dump(), kLocationColumns);
  }
  if (*loc_list) {
    return cli.Show("GET", "/api/v1/backup-locations?limit=1000", "", kLocationColumns);
  }
  if (*loc_get || *loc_delete) {
    std::string id;
    if (int rc = cli.ResolveLocation(ref, &id); rc != 0) {
      return rc;
    }
    if (*loc_get) {
      return cli.Show("GET", "/api/v1/backup-locations/" + id, "", kLocationColumns);
    }
    return cli.Show("DELETE", "/api/v1/backup-locations/" + id, "", kLocationColumns);
  }
  if (*user_add) {
    auto password = ReadSecret(user_password_file);
    if (!password.ok()) {
      std::cerr << "bunkerctl: " << password.status().message() << "\n";
      return 2;
    }
    return cli.Show("POST", "/api/v1/users",
                    nlohmann::json{{"name", name}, {"password", *password}, {"role", role}}.dump(),
                    kUserColumns);
  }
  if (*user_list) {
    return cli.Show("GET", "/api/v1/users?limit=1000", "", kUserColumns);
  }
  return 2;
}
