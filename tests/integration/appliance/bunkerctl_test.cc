// bunkerctl end to end: the real binary against a real bunkerd
// (BunkerdFixture: temp data directory, free loopback port, real HTTPS
// verified with bunkerd's self-signed certificate). Clusters are registered against a small Python
// HTTPS server answering GET /version like a kube-apiserver. bunkerctl's
// config lives in the temp dir ($HOME and $BUNKER_CONFIG point there).

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/ports.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"
#include "tests/integration/appliance/bunkerd_fixture.h"

namespace bunker::testing {
namespace {

using json = nlohmann::json;

std::string Bunkerctl() {
  return std::string(BUNKER_BINARY_DIR) + "/appliance/bunkerctl/bunkerctl";
}

// Answers GET /version with a Kubernetes version object over HTTPS; argv:
// port cert key.
constexpr const char* kVersionServer = R"(import http.server, json, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/version":
            body = json.dumps({"major": "1", "minor": "29", "gitVersion": "v1.29.3"}).encode()
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
)";

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) {
      out += kAlphabet[(v >> s) & 63];
    }
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63],
                       kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

bool WaitForPort(uint16_t port, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (PortAcceptsConnections(port)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

class BunkerctlTest : public BunkerdFixture {
 protected:
  std::string Server() { return "https://127.0.0.1:" + std::to_string(port_); }
  std::string Ca() { return data_ + "/tls/cert.pem"; }

  // Runs bunkerctl with the config in `config` (one per logged-in user).
  RunResult Ctl(std::vector<std::string> args, const std::string& stdin_data = "",
                const std::string& config = "cli") {
    args.insert(args.begin(), Bunkerctl());
    RunOptions options;
    options.env = {"HOME=" + dir_.path().string(),
                   "BUNKER_CONFIG=" + (dir_.path() / config / "config.yaml").string()};
    options.stdin_data = stdin_data;
    auto run = RunCommand(args, options);
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    return run.ok() ? *run : RunResult{};
  }

  // Runs bunkerctl with -o json; expects success and returns the document.
  json Json(std::vector<std::string> args, const std::string& stdin_data = "",
            const std::string& config = "cli") {
    args.insert(args.end(), {"-o", "json"});
    RunResult r = Ctl(args, stdin_data, config);
    EXPECT_TRUE(r.ok()) << r.Describe();
    json parsed = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.out;
    return parsed;
  }

  void LoginAs(const std::string& user, const std::string& password,
               const std::string& config = "cli") {
    RunResult login = Ctl({"--server", Server(), "--ca-file", Ca(), "login", "-u", user},
                          password + "\n", config);
    ASSERT_TRUE(login.ok()) << login.Describe();
  }

  // A file:// location directory.
  std::string LocationUrl(const std::string& name) {
    auto dir = dir_.MakeSubdir("loc-" + name);
    EXPECT_TRUE(dir.ok());
    return "file://" + dir->string();
  }

  // Starts the /version server (once) and writes a kubeconfig for it.
  std::string Kubeconfig(const std::string& name) {
    if (!version_server_.pid()) {
      auto python = FindExecutable("python3");
      EXPECT_TRUE(python.ok()) << "python3 is needed for the /version server";
      EXPECT_TRUE(WriteFile(dir_.path() / "version_server.py", kVersionServer).ok());
      auto port = PickFreePort();
      EXPECT_TRUE(port.ok());
      kube_port_ = *port;
      SpawnOptions options;
      options.log_path = dir_.path() / "version_server.log";
      auto proc = Process::Start(
          {python->string(), (dir_.path() / "version_server.py").string(),
           std::to_string(kube_port_), data_ + "/tls/cert.pem", data_ + "/tls/key.pem"},
          options);
      EXPECT_TRUE(proc.ok()) << proc.status().ToString();
      version_server_ = std::move(proc).value();
      EXPECT_TRUE(WaitForPort(kube_port_, std::chrono::seconds(30)));
    }
    auto ca = ReadFile(data_ + "/tls/cert.pem");
    EXPECT_TRUE(ca.ok());
    std::string text =
        "apiVersion: v1\nkind: Config\ncurrent-context: " + name + "\nclusters:\n- name: " + name +
        "\n  cluster:\n    server: https://" + "127.0.0.1:" + std::to_string(kube_port_) +
        "\n    certificate-authority-data: " + Base64(*ca) + "\nusers:\n- name: " + name +
        "\n  user:\n    token: secret-token-" + name + "\ncontexts:\n- name: " + name +
        "\n  context:\n    cluster: " + name + "\n    user: " + name + "\n";
    std::string path = (dir_.path() / (name + ".kubeconfig")).string();
    EXPECT_TRUE(WriteFile(path, text).ok());
    return path;
  }

  uint16_t kube_port_ = 0;
  Process version_server_;
};

TEST_F(BunkerctlTest, HelpTeachesAndUsageErrorsExit2) {
  RunResult help = Ctl({"--help"});
  EXPECT_TRUE(help.ok()) << help.Describe();
  EXPECT_NE(help.out.find("Exit codes:"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("4  not found"), std::string::npos);
  RunResult policy_help = Ctl({"policy", "create", "--help"});
  EXPECT_NE(policy_help.out.find("bunkerctl policy create nightly --daily 02:30 --retain 7"),
            std::string::npos)
      << policy_help.out;
  EXPECT_EQ(Ctl({"policy", "frobnicate"}).exit_code, 2);
  EXPECT_EQ(Ctl({"location", "list", "-o", "xml"}).exit_code, 2);
  // Not logged in: no server in the config.
  RunResult nologin = Ctl({"location", "list"});
  EXPECT_EQ(nologin.exit_code, 3) << nologin.Describe();
  EXPECT_NE(nologin.err.find("bunkerctl login"), std::string::npos);
}

TEST_F(BunkerctlTest, LoginSavesTheTokenPrivately) {
  LoginAs("admin", "admin-password");
  struct stat st {};
  ASSERT_EQ(stat((dir_.path() / "cli" / "config.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  YAML::Node config = YAML::LoadFile((dir_.path() / "cli" / "config.yaml").string());
  EXPECT_EQ(config["server"].as<std::string>(), Server());
  EXPECT_FALSE(config["token"].as<std::string>().empty());
  RunResult wrong =
      Ctl({"--server", Server(), "--ca-file", Ca(), "login", "-u", "admin"}, "nope-nope\n");
  EXPECT_EQ(wrong.exit_code, 3) << wrong.Describe();
}

TEST_F(BunkerctlTest, VerifiesTheServerUnlessToldNotTo) {
  RunResult unverified = Ctl({"--server", Server(), "login", "-u", "admin"}, "admin-password\n");
  EXPECT_EQ(unverified.exit_code, 1) << unverified.Describe();
  EXPECT_NE(unverified.err.find("certificate"), std::string::npos) << unverified.err;
  RunResult insecure =
      Ctl({"--server", Server(), "--insecure-skip-tls-verify", "login", "-u", "admin"},
          "admin-password\n");
  EXPECT_TRUE(insecure.ok()) << insecure.Describe();
}

TEST_F(BunkerctlTest, RejectedTokenExits3) {
  LoginAs("admin", "admin-password");
  std::string path = (dir_.path() / "cli" / "config.yaml").string();
  ASSERT_TRUE(WriteFile(path, "server: " + Server() + "\nca_file: " + Ca() +
                                  "\ntoken: bkr_not-a-real-token\n")
                  .ok());
  RunResult r = Ctl({"location", "list"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
}

TEST_F(BunkerctlTest, LocationCrudByNameAndId) {
  LoginAs("admin", "admin-password");
  json created = Json({"location", "add", "nas", "--type", "file", "--url", LocationUrl("nas")});
  EXPECT_EQ(created["name"], "nas");
  EXPECT_EQ(created["type"], "file");
  ASSERT_TRUE(created["id"].is_number_integer());
  std::string id = created["id"].dump();

  RunResult table = Ctl({"location", "list"});
  ASSERT_TRUE(table.ok()) << table.Describe();
  EXPECT_NE(table.out.find("NAME"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("nas"), std::string::npos);
  json list = Json({"location", "list"});
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["name"], "nas");
  EXPECT_EQ(Json({"location", "get", id})["name"], "nas");
  RunResult yaml_list = Ctl({"location", "list", "-o", "yaml"});
  ASSERT_TRUE(yaml_list.ok()) << yaml_list.Describe();
  YAML::Node listed = YAML::Load(yaml_list.out);
  ASSERT_TRUE(listed["items"].IsSequence()) << yaml_list.out;
  EXPECT_EQ(listed["items"][0]["url"].as<std::string>(), created["url"].get<std::string>());

  RunResult yaml = Ctl({"location", "get", "nas", "-o", "yaml"});
  ASSERT_TRUE(yaml.ok()) << yaml.Describe();
  YAML::Node node = YAML::Load(yaml.out);
  EXPECT_EQ(node["name"].as<std::string>(), "nas");
  EXPECT_EQ(node["id"].as<int64_t>(), created["id"].get<int64_t>());

  EXPECT_EQ(Json({"location", "update", "nas", "--new-name", "nas2"})["name"], "nas2");
  EXPECT_EQ(Json({"location", "get", "nas2"})["id"], created["id"]);

  RunResult dup = Ctl({"location", "create", "nas2", "--type", "file", "--url", LocationUrl("x")});
  EXPECT_EQ(dup.exit_code, 5) << dup.Describe();
  RunResult bad_type = Ctl({"location", "add", "x", "--type", "tape", "--url", "file:///tmp"});
  EXPECT_EQ(bad_type.exit_code, 2) << bad_type.Describe();
  // The server's message, then one line per field error.
  RunResult bad_url = Ctl({"location", "create", "x", "--type", "file", "--url", "gopher://x"});
  EXPECT_EQ(bad_url.exit_code, 2) << bad_url.Describe();
  EXPECT_NE(bad_url.err.find("bunkerctl: invalid request"), std::string::npos) << bad_url.err;
  EXPECT_NE(bad_url.err.find("\n  url: "), std::string::npos) << bad_url.err;

  RunResult del = Ctl({"location", "delete", "nas2"});
  EXPECT_TRUE(del.ok()) << del.Describe();
  RunResult gone = Ctl({"location", "get", "nas2"});
  EXPECT_EQ(gone.exit_code, 4) << gone.Describe();
  EXPECT_NE(gone.err.find("backup location \"nas2\" not found"), std::string::npos) << gone.err;
  EXPECT_EQ(Ctl({"location", "get", id}).exit_code, 4);
  EXPECT_EQ(Ctl({"location", "delete", id}).exit_code, 4);
}

TEST_F(BunkerctlTest, PolicyCrudAndSchedules) {
  LoginAs("admin", "admin-password");
  json nightly = Json(
      {"policy", "create", "nightly", "--daily", "02:30", "--retain", "7", "--incrementals", "6"});
  EXPECT_EQ(nightly["schedule"], (json{{"kind", "daily"}, {"at", "02:30"}}));
  EXPECT_EQ(nightly["retain"], 7);
  EXPECT_EQ(nightly["incrementals_between_fulls"], 6);
  EXPECT_EQ(Json({"policy", "add", "hourly", "--every", "2h", "--retain", "24"})["schedule"],
            (json{{"kind", "interval"}, {"every_minutes", 120}}));
  EXPECT_EQ(Json({"policy", "create", "weekend", "--weekly", "sat,sun", "--at", "04:00", "--retain",
                  "8"})["schedule"],
            (json{{"kind", "weekly"}, {"days", {"sat", "sun"}}, {"at", "04:00"}}));
  // From a YAML document, a field overridden by a flag.
  ASSERT_TRUE(WriteFile(dir_.path() / "monthly.yaml",
                        "name: month-end\nschedule:\n  kind: monthly\n  day: 28\n  at: \"23:00\"\n"
                        "retain: 3\nincrementals_between_fulls: 0\n")
                  .ok());
  json monthly =
      Json({"policy", "create", "-f", (dir_.path() / "monthly.yaml").string(), "--retain", "12"});
  EXPECT_EQ(monthly["name"], "month-end");
  EXPECT_EQ(monthly["schedule"], (json{{"kind", "monthly"}, {"day", 28}, {"at", "23:00"}}));
  EXPECT_EQ(monthly["retain"], 12);

  json updated = Json({"policy", "update", "nightly", "--retain", "14"});
  EXPECT_EQ(updated["retain"], 14);
  EXPECT_EQ(updated["schedule"]["at"], "02:30");  // merge-patch keeps the rest
  EXPECT_EQ(Json({"policy", "update", "nightly", "--daily", "01:00"})["schedule"]["at"], "01:00");

  json all = Json({"policy", "list"});
  EXPECT_EQ(all["items"].size(), 4u);
  // Pages are followed: two a request, four in all; --limit caps.
  EXPECT_EQ(Json({"policy", "list", "--page-size", "2"})["items"].size(), 4u);
  EXPECT_EQ(Json({"policy", "list", "--page-size", "3", "--limit", "3"})["items"].size(), 3u);
  EXPECT_EQ(Json({"policy", "list", "--name", "weekend"})["items"].size(), 1u);

  RunResult bad = Ctl({"policy", "create", "bad", "--daily", "25:00", "--retain", "1"});
  EXPECT_EQ(bad.exit_code, 2) << bad.Describe();
  EXPECT_NE(bad.err.find("schedule.at"), std::string::npos) << bad.err;
  RunResult two = Ctl({"policy", "create", "two", "--daily", "01:00", "--every", "5m"});
  EXPECT_EQ(two.exit_code, 2);
  RunResult none = Ctl({"policy", "create", "none", "--retain", "1"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("schedule is required"), std::string::npos);
  EXPECT_EQ(Ctl({"policy", "create", "nightly", "--every", "5", "--retain", "1"}).exit_code, 5);
  EXPECT_EQ(Ctl({"policy", "update", "nope", "--retain", "1"}).exit_code, 4);
  EXPECT_EQ(Ctl({"policy", "update", "nightly"}).exit_code, 2);  // nothing to update

  ASSERT_TRUE(Ctl({"policy", "delete", "nightly", "hourly"}).ok());
  EXPECT_EQ(Json({"policy", "list"})["items"].size(), 2u);
}

TEST_F(BunkerctlTest, RuleCrudFromFlagsAndDocuments) {
  LoginAs("admin", "admin-password");
  json rule = Json({"rule", "create", "freeze-db", "--namespace", "app1", "--selector",
                    "app=postgres", "--selector", "tier=db", "--container", "db", "--command",
                    "psql -c CHECKPOINT", "--timeout", "120", "--continue-on-failure"});
  ASSERT_EQ(rule["actions"].size(), 1u);
  const json& a = rule["actions"][0];
  EXPECT_EQ(a["namespace"], "app1");
  EXPECT_EQ(a["pod_selector"], (json{{"app", "postgres"}, {"tier", "db"}}));
  EXPECT_EQ(a["container"], "db");
  EXPECT_EQ(a["command"], "psql -c CHECKPOINT");
  EXPECT_EQ(a["timeout_seconds"], 120);
  EXPECT_EQ(a["abort_on_failure"], false);
  EXPECT_EQ(a["all_pods"], false);

  json doc{{"name", "flush-all"},
           {"actions",
            {{{"namespace", "a"}, {"command", "sync"}, {"all_pods", true}},
             {{"namespace", "b"}, {"command", "sync"}}}}};
  json two = Json({"rule", "create", "-f", "-"}, doc.dump());
  EXPECT_EQ(two["name"], "flush-all");
  EXPECT_EQ(two["actions"].size(), 2u);
  EXPECT_EQ(two["actions"][0]["all_pods"], true);

  json updated = Json({"rule", "update", "freeze-db", "--namespace", "app2", "--command", "sync"});
  ASSERT_EQ(updated["actions"].size(), 1u);
  EXPECT_EQ(updated["actions"][0]["namespace"], "app2");
  EXPECT_EQ(Json({"rule", "get", "freeze-db"})["actions"][0]["command"], "sync");

  RunResult bad = Ctl({"rule", "create", "nocmd", "--namespace", "app1"});
  EXPECT_EQ(bad.exit_code, 2) << bad.Describe();
  EXPECT_NE(bad.err.find("actions[0].command"), std::string::npos) << bad.err;
  RunResult badkv =
      Ctl({"rule", "create", "x", "--namespace", "a", "--command", "c", "--selector", "novalue"});
  EXPECT_EQ(badkv.exit_code, 2);
  EXPECT_NE(badkv.err.find("KEY=VALUE"), std::string::npos);

  EXPECT_EQ(Json({"rule", "list"})["items"].size(), 2u);
  ASSERT_TRUE(Ctl({"rule", "delete", "flush-all"}).ok());
  EXPECT_EQ(Ctl({"rule", "get", "flush-all"}).exit_code, 4);
}

TEST_F(BunkerctlTest, ClusterCrudAndProbe) {
  LoginAs("admin", "admin-password");
  std::string kubeconfig = Kubeconfig("prod");
  json prod = Json({"cluster", "create", "prod", "--kubeconfig", kubeconfig});
  EXPECT_EQ(prod["name"], "prod");
  EXPECT_EQ(prod["data_mover"], "generic");
  EXPECT_EQ(prod["status"]["reachable"], true) << prod.dump();
  EXPECT_EQ(prod["status"]["version"], "v1.29.3");
  EXPECT_EQ(prod.dump().find("secret-token"), std::string::npos) << "kubeconfig leaked";

  auto text = ReadFile(Kubeconfig("dr"));
  ASSERT_TRUE(text.ok());
  json dr = Json({"cluster", "create", "dr", "--kubeconfig", "-", "--data-mover", "csi"}, *text);
  EXPECT_EQ(dr["data_mover"], "csi");
  EXPECT_EQ(dr["status"]["reachable"], true);

  EXPECT_EQ(Json({"cluster", "list"})["items"].size(), 2u);
  EXPECT_EQ(Json({"cluster", "update", "dr", "--data-mover", "generic"})["data_mover"], "generic");
  EXPECT_EQ(Json({"cluster", "get", "dr"})["data_mover"], "generic");

  // The API server goes away: a probe says so, with the reason.
  version_server_.Stop();
  json probed = Json({"cluster", "probe", "prod"});
  EXPECT_EQ(probed["status"]["reachable"], false) << probed.dump();
  EXPECT_TRUE(probed["status"]["reason"].is_string());

  RunResult bad = Ctl({"cluster", "create", "broken", "--kubeconfig", "-"}, "not: [a kubeconfig");
  EXPECT_EQ(bad.exit_code, 2) << bad.Describe();
  EXPECT_NE(bad.err.find("kubeconfig"), std::string::npos) << bad.err;
  EXPECT_EQ(Ctl({"cluster", "create", "x", "--kubeconfig", "/no/such/file"}).exit_code, 2);

  ASSERT_TRUE(Ctl({"cluster", "delete", "dr"}).ok());
  EXPECT_EQ(Ctl({"cluster", "probe", "dr"}).exit_code, 4);
}

TEST_F(BunkerctlTest, BackupAndRestoreLifecycle) {
  LoginAs("admin", "admin-password");
  ASSERT_TRUE(Ctl({"cluster", "create", "prod", "--kubeconfig", Kubeconfig("prod")}).ok());
  ASSERT_TRUE(Ctl({"cluster", "create", "dr", "--kubeconfig", Kubeconfig("dr")}).ok());
  ASSERT_TRUE(
      Ctl({"location", "create", "nfs1", "--type", "file", "--url", LocationUrl("nfs1")}).ok());
  ASSERT_TRUE(
      Ctl({"rule", "create", "freeze-db", "--namespace", "app1", "--command", "sync"}).ok());
  ASSERT_TRUE(Ctl({"policy", "create", "nightly", "--daily", "02:30", "--retain", "7"}).ok());
  json cluster = Json({"cluster", "get", "prod"});
  json location = Json({"location", "get", "nfs1"});

  json backup = Json({"backup", "create", "app1", "--cluster", "prod", "--location", "nfs1",
                      "--namespace", "app1", "--namespace", "app1-db", "--pre-rule", "freeze-db",
                      "--policy", "nightly", "--type", "incremental", "--selector", "tier=web"});
  EXPECT_EQ(backup["cluster_id"], cluster["id"]);
  EXPECT_EQ(backup["location_id"], location["id"]);
  EXPECT_EQ(backup["namespaces"], (json{"app1", "app1-db"}));
  EXPECT_EQ(backup["type"], "incremental");
  EXPECT_EQ(backup["label_selector"], "tier=web");
  EXPECT_EQ(backup["state"], "pending");
  EXPECT_TRUE(backup["pre_rule_id"].is_number_integer());
  EXPECT_TRUE(backup["post_rule_id"].is_null());

  RunResult missing_ref = Ctl(
      {"backup", "create", "b2", "--cluster", "nope", "--location", "nfs1", "--namespace", "x"});
  EXPECT_EQ(missing_ref.exit_code, 4) << missing_ref.Describe();
  EXPECT_NE(missing_ref.err.find("cluster \"nope\" not found"), std::string::npos);
  RunResult no_ns = Ctl({"backup", "create", "b2", "--cluster", "prod", "--location", "nfs1"});
  EXPECT_EQ(no_ns.exit_code, 2) << no_ns.Describe();
  EXPECT_NE(no_ns.err.find("namespaces"), std::string::npos);

  EXPECT_EQ(Json({"backup", "list", "--cluster", "prod"})["items"].size(), 1u);
  EXPECT_EQ(Json({"backup", "list", "--cluster", "dr"})["items"].size(), 0u);
  EXPECT_EQ(Json({"backup", "list", "--state", "pending"})["items"].size(), 1u);
  EXPECT_EQ(Json({"backup", "update", "app1", "--label", "keep=yes"})["labels"],
            (json{{"keep", "yes"}}));

  // describe: the object, its grants and its log; human-readable by default.
  RunResult describe = Ctl({"backup", "describe", "app1"});
  ASSERT_TRUE(describe.ok()) << describe.Describe();
  EXPECT_NE(describe.out.find("Name:"), std::string::npos) << describe.out;
  EXPECT_NE(describe.out.find("prod (id "), std::string::npos) << describe.out;
  EXPECT_NE(describe.out.find("Grants:"), std::string::npos);
  EXPECT_NE(describe.out.find("Logs:"), std::string::npos);
  EXPECT_NE(describe.out.find("created"), std::string::npos) << describe.out;
  json described = Json({"backup", "describe", "app1"});
  EXPECT_EQ(described["backup"]["name"], "app1");
  EXPECT_TRUE(described["grants"].is_array());
  ASSERT_FALSE(described["logs"].empty());
  EXPECT_TRUE(described["logs"][0]["message"].is_string());
  json logs = Json({"backup", "logs", "app1"});
  EXPECT_EQ(logs["items"], described["logs"]);
  RunResult log_table = Ctl({"backup", "logs", backup["id"].dump()});
  EXPECT_NE(log_table.out.find("info"), std::string::npos) << log_table.Describe();

  json restore =
      Json({"restore", "create", "r1", "--backup", "app1", "--cluster", "dr", "--map-namespace",
            "app1=app1-dr", "--map-storage-class", "fast=standard", "--replace-policy", "replace"});
  EXPECT_EQ(restore["backup_id"], backup["id"]);
  EXPECT_EQ(restore["namespace_mapping"], (json{{"app1", "app1-dr"}}));
  EXPECT_EQ(restore["storage_class_mapping"], (json{{"fast", "standard"}}));
  EXPECT_EQ(restore["replace_policy"], "replace");
  EXPECT_EQ(Json({"restore", "list", "--backup", "app1"})["items"].size(), 1u);
  EXPECT_EQ(Json({"restore", "get", "r1"})["name"], "r1");
  EXPECT_EQ(Json({"restore", "update", "r1", "--new-name", "r1-done"})["name"], "r1-done");
  RunResult immutable = Ctl({"restore", "update", "r1-done", "-f", "-"}, R"({"cluster_id": 1})");
  EXPECT_EQ(immutable.exit_code, 2) << immutable.Describe();
  EXPECT_NE(immutable.err.find("cluster_id"), std::string::npos);

  ASSERT_TRUE(Ctl({"restore", "delete", "r1-done"}).ok());
  ASSERT_TRUE(Ctl({"backup", "delete", "app1"}).ok());
  EXPECT_EQ(Ctl({"backup", "describe", "app1"}).exit_code, 4);
  EXPECT_EQ(Ctl({"restore", "get", "r1-done"}).exit_code, 4);
}

TEST_F(BunkerctlTest, UsersAndGroups) {
  LoginAs("admin", "admin-password");
  json alice = Json({"user", "create", "alice"}, "alice-password\n");
  EXPECT_EQ(alice["role"], "user");
  ASSERT_TRUE(WriteFile(dir_.path() / "bob.pw", "bob-password\n").ok());
  json bob = Json({"user", "add", "bob", "--password-file", (dir_.path() / "bob.pw").string()});
  EXPECT_EQ(Json({"user", "list"})["items"].size(), 3u);
  EXPECT_EQ(Json({"user", "update", "bob", "--role", "admin"})["role"], "admin");
  EXPECT_EQ(Json({"user", "get", "bob"})["role"], "admin");
  EXPECT_EQ(Ctl({"user", "create", "alice"}, "alice-password\n").exit_code, 5);
  RunResult short_pw = Ctl({"user", "create", "carol"}, "short\n");
  EXPECT_EQ(short_pw.exit_code, 2);
  EXPECT_NE(short_pw.err.find("password"), std::string::npos) << short_pw.err;

  json dba = Json({"group", "create", "dba", "--member", "alice"});
  EXPECT_EQ(dba["member_ids"], (json{alice["id"]}));
  json more = Json({"group", "add-member", "dba", "bob"});
  EXPECT_EQ(more["member_ids"].size(), 2u);
  EXPECT_EQ(Json({"group", "remove-member", "dba", "alice"})["member_ids"], (json{bob["id"]}));
  EXPECT_EQ(Json({"group", "update", "dba", "--new-name", "dbas"})["name"], "dbas");
  EXPECT_EQ(Json({"group", "list"})["items"].size(), 1u);
  EXPECT_EQ(Ctl({"group", "add-member", "dbas", "nobody"}).exit_code, 4);

  // A user logged in for itself sees neither the user list nor groups.
  LoginAs("alice", "alice-password", "alice");
  EXPECT_EQ(Json({"user", "get", alice["id"].dump()}, "", "alice")["name"], "alice");
  EXPECT_EQ(Json({"user", "get", "me"}, "", "alice")["id"], alice["id"]);
  ASSERT_TRUE(WriteFile(dir_.path() / "new.pw", "alice-new-password\n").ok());
  ASSERT_TRUE(Ctl({"user", "update", "me", "--password-file", (dir_.path() / "new.pw").string()},
                  "", "alice")
                  .ok());
  LoginAs("alice", "alice-new-password", "alice");
  EXPECT_EQ(Ctl({"group", "list"}, "", "alice").exit_code, 6);

  ASSERT_TRUE(Ctl({"group", "delete", "dbas"}).ok());
  ASSERT_TRUE(Ctl({"user", "delete", "alice"}).ok());
  EXPECT_EQ(Ctl({"user", "get", "alice"}).exit_code, 4);
  EXPECT_EQ(Ctl({"location", "list"}, "", "alice").exit_code, 3);  // its token went with it
}

TEST_F(BunkerctlTest, GrantsShareObjects) {
  LoginAs("admin", "admin-password");
  ASSERT_TRUE(Ctl({"user", "create", "owner"}, "owner-password\n").ok());
  ASSERT_TRUE(Ctl({"user", "create", "reader"}, "reader-password\n").ok());
  ASSERT_TRUE(Ctl({"user", "create", "other"}, "other-password\n").ok());
  ASSERT_TRUE(Ctl({"user", "create", "member"}, "member-password\n").ok());
  ASSERT_TRUE(Ctl({"group", "create", "ops", "--member", "member"}).ok());
  LoginAs("owner", "owner-password", "owner");
  LoginAs("reader", "reader-password", "reader");
  LoginAs("other", "other-password", "other");
  LoginAs("member", "member-password", "member");

  ASSERT_TRUE(
      Ctl({"location", "create", "shared", "--type", "file", "--url", LocationUrl("shared")}, "",
          "owner")
          .ok());
  ASSERT_TRUE(Ctl({"policy", "create", "p1", "--every", "30m", "--retain", "2"}, "", "owner").ok());

  json g1 = Json(
      {"grant", "create", "--resource", "location/shared", "--user", "reader", "--access", "read"},
      "", "owner");
  EXPECT_EQ(g1["access"], "READ");
  EXPECT_EQ(g1["grantee_type"], "user");
  json g2 = Json(
      {"grant", "add", "--resource", "schedule-policies/p1", "--group", "ops", "--access", "FULL"},
      "", "owner");
  EXPECT_EQ(g2["grantee_type"], "group");

  EXPECT_EQ(Json({"location", "get", "shared"}, "", "reader")["access"], "READ");
  EXPECT_EQ(Json({"location", "list"}, "", "reader")["items"].size(), 1u);
  EXPECT_EQ(Json({"location", "list"}, "", "other")["items"].size(), 0u);
  EXPECT_EQ(Ctl({"location", "get", "shared"}, "", "other").exit_code, 4);
  RunResult forbidden = Ctl({"location", "delete", "shared"}, "", "reader");
  EXPECT_EQ(forbidden.exit_code, 6) << forbidden.Describe();
  EXPECT_EQ(Json({"policy", "update", "p1", "--retain", "5"}, "", "member")["retain"], 5);

  json grants = Json({"grant", "list", "--resource", "location/shared"}, "", "owner");
  ASSERT_EQ(grants["items"].size(), 1u);
  EXPECT_EQ(grants["items"][0]["id"], g1["id"]);
  RunResult table = Ctl({"grant", "list", "--resource", "location/shared"}, "", "owner");
  EXPECT_NE(table.out.find("READ"), std::string::npos) << table.Describe();

  EXPECT_EQ(
      Ctl({"grant", "create", "--resource", "location/shared", "--access", "READ"}, "", "owner")
          .exit_code,
      2);  // neither --user nor --group
  EXPECT_EQ(Ctl({"grant", "create", "--resource", "tape/x", "--user", "reader", "--access", "READ"},
                "", "owner")
                .exit_code,
            2);
  EXPECT_EQ(Ctl({"grant", "delete", "--resource", "location/shared", "999"}, "", "owner").exit_code,
            4);
  ASSERT_TRUE(
      Ctl({"grant", "delete", "--resource", "location/shared", g1["id"].dump()}, "", "owner").ok());
  EXPECT_EQ(Ctl({"location", "get", "shared"}, "", "reader").exit_code, 4);
}

}  // namespace
}  // namespace bunker::testing
