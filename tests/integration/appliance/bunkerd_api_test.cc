// The REST API's resources over real HTTPS to a real bunkerd: schedule
// policies, rules, backups and restores (records, references, merge-patch,
// logs, metrics), user and group updates, and bad input on every new
// resource (malformed JSON, wrong types, unknown and missing fields,
// oversized bodies, invalid names and values → 4xx naming the field, nothing
// stored).

#include "tests/integration/appliance/bunkerd_fixture.h"

namespace bunker::testing {
namespace {

using json = nlohmann::json;

class BunkerdApiTest : public BunkerdFixture {
 protected:
  void SetUp() override {
    BunkerdFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    auto dir = dir_.MakeSubdir("loc");
    ASSERT_TRUE(dir.ok());
    ApiReply loc =
        Curl("POST", "/api/v1/backup-locations", admin_,
             json{{"name", "nas"}, {"type", "file"}, {"url", "file://" + dir->string()}});
    ASSERT_EQ(loc.status, 201) << loc.raw;
    location_ = loc.body["id"];
    ApiReply cluster = Curl("POST", "/api/v1/clusters", admin_,
                            json{{"name", "prod"}, {"kubeconfig", Kubeconfig()}});
    ASSERT_EQ(cluster.status, 201) << cluster.raw;
    cluster_ = cluster.body["id"];
  }

  static std::string Kubeconfig() {
    return "current-context: x\nclusters:\n- name: x\n  cluster:\n    server: "
           "https://127.0.0.1:1\ncontexts:\n- name: x\n  context:\n    cluster: x\n";
  }

  json Policy(const std::string& name, json schedule) {
    return json{{"name", name}, {"schedule", schedule}, {"retain", 7}};
  }
  json Rule(const std::string& name) {
    return json{{"name", name},
                {"actions",
                 {{{"namespace", "shop"},
                   {"pod_selector", {{"app", "db"}}},
                   {"container", "postgres"},
                   {"command", "psql -c 'CHECKPOINT'"},
                   {"all_pods", false},
                   {"timeout_seconds", 30},
                   {"abort_on_failure", true}}}}};
  }
  json Backup(const std::string& name) {
    return json{{"name", name},
                {"cluster_id", cluster_},
                {"location_id", location_},
                {"namespaces", {"shop"}}};
  }

  int64_t location_ = 0;
  int64_t cluster_ = 0;
};

TEST_F(BunkerdApiTest, PoliciesRulesBackupsAndRestores) {
  for (const json& schedule :
       {json{{"kind", "interval"}, {"every_minutes", 30}}, json{{"kind", "daily"}, {"at", "02:30"}},
        json{{"kind", "weekly"}, {"days", {"mon", "fri"}}, {"at", "23:59"}},
        json{{"kind", "monthly"}, {"day", 31}, {"at", "00:00"}}}) {
    std::string kind = schedule["kind"];
    ApiReply r = Curl("POST", "/api/v1/schedule-policies", admin_, Policy("p-" + kind, schedule));
    ASSERT_EQ(r.status, 201) << r.raw;
    EXPECT_EQ(r.body["schedule"], schedule);
    EXPECT_EQ(r.body["retain"], 7);
    EXPECT_EQ(r.body["incrementals_between_fulls"], 0);
  }
  ApiReply policies = Curl("GET", "/api/v1/schedule-policies?name=p-daily", admin_);
  ASSERT_EQ(policies.body["items"].size(), 1u) << policies.raw;
  int64_t policy = policies.body["items"][0]["id"];
  std::string ppath = "/api/v1/schedule-policies/" + std::to_string(policy);
  // Merge-patch: only what is named changes.
  ApiReply patched = Curl("PATCH", ppath, admin_, json{{"retain", 3}});
  ASSERT_EQ(patched.status, 200) << patched.raw;
  EXPECT_EQ(patched.body["retain"], 3);
  EXPECT_EQ(patched.body["schedule"]["at"], "02:30");
  EXPECT_EQ(Curl("PATCH", ppath, admin_, json{{"schedule", {{"at", "24:00"}}}}).status, 400);
  EXPECT_EQ(Curl("GET", ppath, admin_).body["schedule"]["at"], "02:30");

  ApiReply rule = Curl("POST", "/api/v1/rules", admin_, Rule("freeze"));
  ASSERT_EQ(rule.status, 201) << rule.raw;
  EXPECT_EQ(rule.body["actions"][0]["pod_selector"]["app"], "db");
  int64_t rule_id = rule.body["id"];
  ApiReply minimal =
      Curl("POST", "/api/v1/rules", admin_,
           json{{"name", "min"}, {"actions", {{{"namespace", "shop"}, {"command", "sync"}}}}});
  ASSERT_EQ(minimal.status, 201) << minimal.raw;
  EXPECT_EQ(minimal.body["actions"][0]["timeout_seconds"], 60);
  EXPECT_EQ(minimal.body["actions"][0]["abort_on_failure"], true);
  EXPECT_TRUE(minimal.body["actions"][0]["container"].is_null());

  json b = Backup("nightly");
  b["pre_rule_id"] = rule_id;
  b["schedule_policy_id"] = policy;
  b["type"] = "incremental";
  b["label_selector"] = "app=shop";
  ApiReply backup = Curl("POST", "/api/v1/backups", admin_, b);
  ASSERT_EQ(backup.status, 201) << backup.raw;
  EXPECT_EQ(backup.body["state"], "pending");
  EXPECT_EQ(backup.body["bytes_total"], 0);
  EXPECT_TRUE(backup.body["started_at"].is_null());
  EXPECT_EQ(backup.body["pre_rule_id"], rule_id);
  EXPECT_TRUE(backup.body["post_rule_id"].is_null());
  int64_t backup_id = backup.body["id"];
  std::string bpath = "/api/v1/backups/" + std::to_string(backup_id);
  ApiReply logs = Curl("GET", bpath + "/logs", admin_);
  ASSERT_EQ(logs.status, 200) << logs.raw;
  ASSERT_GE(logs.body["items"].size(), 1u);
  EXPECT_NE(logs.body["items"][0]["message"].get<std::string>().find("created"), std::string::npos);
  EXPECT_EQ(logs.body["items"][0]["level"], "info");
  EXPECT_TRUE(logs.body["items"][0]["time"].is_string());

  // PATCH: name and labels only.
  ApiReply relabel = Curl("PATCH", bpath, admin_, json{{"labels", {{"tier", "gold"}}}});
  ASSERT_EQ(relabel.status, 200) << relabel.raw;
  EXPECT_EQ(relabel.body["labels"]["tier"], "gold");
  ApiReply immutable = Curl("PATCH", bpath, admin_, json{{"cluster_id", cluster_}});
  EXPECT_EQ(immutable.status, 400);
  EXPECT_EQ(immutable.body["details"]["fields"]["cluster_id"], "cannot be changed");

  EXPECT_EQ(Curl("GET", "/api/v1/backups?state=pending", admin_).body["items"].size(), 1u);
  EXPECT_EQ(Curl("GET", "/api/v1/backups?state=failed", admin_).body["items"].size(), 0u);
  EXPECT_EQ(Curl("GET", "/api/v1/backups?cluster_id=" + std::to_string(cluster_), admin_)
                .body["items"]
                .size(),
            1u);
  std::string metrics = Curl("GET", "/metrics").raw;
  EXPECT_NE(metrics.find("bunker_backups{state=\"pending\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("bunker_backups{state=\"failed\"} 0"), std::string::npos);
  EXPECT_NE(metrics.find("bunker_backup_moved_bytes 0"), std::string::npos);
  EXPECT_NE(metrics.find("bunker_backup_logical_bytes 0"), std::string::npos);

  ApiReply not_backed_up = Curl("POST", "/api/v1/restores", admin_,
                                json{{"name", "x"},
                                     {"backup_id", backup_id},
                                     {"cluster_id", cluster_},
                                     {"namespaces", {"shop", "hr"}},
                                     {"namespace_mapping", {{"payroll", "p2"}}}});
  EXPECT_EQ(not_backed_up.status, 400) << not_backed_up.raw;
  EXPECT_TRUE(not_backed_up.body["details"]["fields"].contains("namespaces"));
  EXPECT_TRUE(not_backed_up.body["details"]["fields"].contains("namespace_mapping.payroll"));
  ApiReply restore = Curl("POST", "/api/v1/restores", admin_,
                          json{{"name", "back"},
                               {"backup_id", backup_id},
                               {"cluster_id", cluster_},
                               {"namespace_mapping", {{"shop", "shop-copy"}}},
                               {"replace_policy", "replace"}});
  ASSERT_EQ(restore.status, 201) << restore.raw;
  EXPECT_EQ(restore.body["state"], "pending");
  EXPECT_TRUE(restore.body["namespaces"].is_null());
  EXPECT_EQ(restore.body["namespace_mapping"]["shop"], "shop-copy");

  // References: in-use objects cannot go; a deleted rule leaves null.
  EXPECT_EQ(Curl("DELETE", "/api/v1/clusters/" + std::to_string(cluster_), admin_).status, 409);
  EXPECT_EQ(Curl("DELETE", "/api/v1/backup-locations/" + std::to_string(location_), admin_).status,
            409);
  EXPECT_EQ(Curl("DELETE", bpath, admin_).status, 409);  // a restore refers to it
  EXPECT_EQ(Curl("DELETE", "/api/v1/rules/" + std::to_string(rule_id), admin_).status, 204);
  EXPECT_TRUE(Curl("GET", bpath, admin_).body["pre_rule_id"].is_null());
  ApiReply restores =
      Curl("GET", "/api/v1/restores?backup_id=" + std::to_string(backup_id), admin_);
  ASSERT_EQ(restores.body["items"].size(), 1u);
  EXPECT_EQ(
      Curl("DELETE",
           "/api/v1/restores/" + std::to_string(restores.body["items"][0]["id"].get<int>()), admin_)
          .status,
      204);
  EXPECT_EQ(Curl("DELETE", bpath, admin_).status, 204);
  EXPECT_EQ(Curl("GET", bpath + "/logs", admin_).status, 404);
}

TEST_F(BunkerdApiTest, BadInputNamesTheFieldAndStoresNothing) {
  struct Case {
    std::string resource;
    std::string body;
    int status;
    std::string field;  // expected in details.fields and the message; "" for none
  };
  auto with = [](json base, const std::string& key, json value) {
    base[key] = value;
    return base.dump();
  };
  auto without = [](json base, const std::string& key) {
    base.erase(key);
    return base.dump();
  };
  json policy = Policy("p", json{{"kind", "daily"}, {"at", "01:00"}});
  json rule = Rule("r");
  json backup = Backup("b");
  json restore{{"name", "r"}, {"backup_id", 999}, {"cluster_id", cluster_}};
  json cluster{{"name", "c"}, {"kubeconfig", Kubeconfig()}};
  auto action = [&](const std::string& key, json value) {
    json r = rule;
    if (value.is_null()) {
      r["actions"][0].erase(key);
    } else {
      r["actions"][0][key] = value;
    }
    return r.dump();
  };
  std::vector<Case> cases;
  for (const auto& [resource, good] :
       std::vector<std::pair<std::string, json>>{{"clusters", cluster},
                                                 {"schedule-policies", policy},
                                                 {"rules", rule},
                                                 {"backups", backup},
                                                 {"restores", restore}}) {
    cases.push_back({resource, "{\"name\":", 400, ""});
    cases.push_back({resource, "[1]", 400, ""});
    cases.push_back({resource, std::string(2 << 20, ' '), 413, ""});
    cases.push_back({resource, with(good, "colour", "red"), 400, "colour"});
    cases.push_back({resource, with(good, "name", 5), 400, "name"});
    cases.push_back({resource, with(good, "name", "Bad Name"), 400, "name"});
    cases.push_back({resource, with(good, "name", std::string(64, 'a')), 400, "name"});
    cases.push_back({resource, without(good, "name"), 400, "name"});
  }
  std::vector<Case> specific = {
      {"clusters", without(cluster, "kubeconfig"), 400, "kubeconfig"},
      {"clusters", with(cluster, "kubeconfig", 7), 400, "kubeconfig"},
      {"schedule-policies", without(policy, "schedule"), 400, "schedule"},
      {"schedule-policies", without(policy, "retain"), 400, "retain"},
      {"schedule-policies", with(policy, "retain", 0), 400, "retain"},
      {"schedule-policies", with(policy, "retain", "5"), 400, "retain"},
      {"schedule-policies", with(policy, "retain", 1.5), 400, "retain"},
      {"schedule-policies", with(policy, "incrementals_between_fulls", -1), 400,
       "incrementals_between_fulls"},
      {"schedule-policies", with(policy, "schedule", "daily"), 400, "schedule"},
      {"schedule-policies", with(policy, "schedule", {{"kind", "hourly"}}), 400, "schedule.kind"},
      {"schedule-policies", with(policy, "schedule", {{"kind", "daily"}, {"at", "25:00"}}), 400,
       "schedule.at"},
      {"schedule-policies", with(policy, "schedule", {{"kind", "daily"}, {"at", "1:00"}}), 400,
       "schedule.at"},
      {"schedule-policies",
       with(policy, "schedule", {{"kind", "weekly"}, {"days", {"mon", "mon"}}, {"at", "01:00"}}),
       400, "schedule.days"},
      {"schedule-policies",
       with(policy, "schedule", {{"kind", "weekly"}, {"days", {"funday"}}, {"at", "01:00"}}), 400,
       "schedule.days"},
      {"schedule-policies",
       with(policy, "schedule", {{"kind", "monthly"}, {"day", 32}, {"at", "01:00"}}), 400,
       "schedule.day"},
      {"schedule-policies", with(policy, "schedule", {{"kind", "interval"}, {"every_minutes", 0}}),
       400, "schedule.every_minutes"},
      {"schedule-policies",
       with(policy, "schedule", {{"kind", "interval"}, {"every_minutes", 5}, {"at", "01:00"}}), 400,
       "schedule.at"},
      {"rules", with(rule, "actions", json::array()), 400, "actions"},
      {"rules", without(rule, "actions"), 400, "actions"},
      {"rules", action("command", nullptr), 400, "actions[0].command"},
      {"rules", action("namespace", "Bad_NS"), 400, "actions[0].namespace"},
      {"rules", action("timeout_seconds", 0), 400, "actions[0].timeout_seconds"},
      {"rules", action("pod_selector", {{"app", 5}}), 400, "actions[0].pod_selector.app"},
      {"rules", action("all_pods", "yes"), 400, "actions[0].all_pods"},
      {"rules", action("colour", "red"), 400, "actions[0].colour"},
      {"backups", without(backup, "cluster_id"), 400, "cluster_id"},
      {"backups", with(backup, "cluster_id", "1"), 400, "cluster_id"},
      {"backups", with(backup, "cluster_id", 999), 400, "cluster_id"},
      {"backups", with(backup, "location_id", 999), 400, "location_id"},
      {"backups", with(backup, "pre_rule_id", 999), 400, "pre_rule_id"},
      {"backups", with(backup, "schedule_policy_id", 999), 400, "schedule_policy_id"},
      {"backups", with(backup, "namespaces", json::array()), 400, "namespaces"},
      {"backups", with(backup, "namespaces", {"Shop"}), 400, "namespaces"},
      {"backups", without(backup, "namespaces"), 400, "namespaces"},
      {"backups", with(backup, "type", "diff"), 400, "type"},
      {"backups", with(backup, "labels", {{"a", 1}}), 400, "labels.a"},
      {"restores", restore.dump(), 400, "backup_id"},
      {"restores", with(restore, "replace_policy", "merge"), 400, "replace_policy"},
      {"restores", with(restore, "namespace_mapping", {{"a", "B C"}}), 400, "namespace_mapping.a"},
      {"restores", without(restore, "cluster_id"), 400, "cluster_id"},
  };
  cases.insert(cases.end(), specific.begin(), specific.end());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.resource + " " + c.body.substr(0, 200));
    ApiReply r = Curl("POST", "/api/v1/" + c.resource, admin_, c.body);
    EXPECT_EQ(r.status, c.status) << r.raw;
    EXPECT_TRUE(r.body.is_object() && r.body.contains("code") && r.body.contains("message"))
        << r.raw;
    if (!c.field.empty()) {
      EXPECT_TRUE(r.body["details"]["fields"].contains(c.field)) << r.raw;
      EXPECT_NE(r.body["message"].get<std::string>().find(c.field), std::string::npos) << r.raw;
    }
  }
  EXPECT_EQ(Curl("GET", "/api/v1/clusters", admin_).body["items"].size(), 1u);  // "prod"
  for (const char* resource : {"schedule-policies", "rules", "backups", "restores"}) {
    EXPECT_TRUE(Curl("GET", std::string("/api/v1/") + resource, admin_).body["items"].empty())
        << resource;
  }
  // PATCH bodies are checked the same way, and change nothing when refused.
  std::string cpath = "/api/v1/clusters/" + std::to_string(cluster_);
  EXPECT_EQ(Curl("PATCH", cpath, admin_, std::string("{")).status, 400);
  EXPECT_EQ(Curl("PATCH", cpath, admin_, json{{"data_mover", "tape"}}).status, 400);
  EXPECT_EQ(Curl("PATCH", cpath, admin_, json{{"owner", 5}}).status, 400);
  EXPECT_EQ(Curl("GET", cpath, admin_).body["data_mover"], "generic");
  EXPECT_EQ(Curl("GET", "/api/v1/clusters?limit=0", admin_).status, 400);
  EXPECT_EQ(Curl("PUT", cpath, admin_, json::object()).status, 405);
}

TEST_F(BunkerdApiTest, UsersAndGroupsAreUpdatedAndDeleted) {
  int64_t bob_id = 0;
  std::string bob = AddUser("bob", &bob_id);
  std::string bpath = "/api/v1/users/" + std::to_string(bob_id);
  // Own password: yes; own role: admins only; other users: invisible.
  EXPECT_EQ(Curl("PATCH", "/api/v1/users/me", bob, json{{"password", "bob-new-password"}}).status,
            200);
  EXPECT_FALSE(Login("bob", "bob-new-password").empty());
  EXPECT_EQ(Curl("PATCH", "/api/v1/users/me", bob, json{{"role", "admin"}}).status, 403);
  EXPECT_EQ(Curl("PATCH", "/api/v1/users/1", bob, json{{"password", "xxxxxxxxxx"}}).status, 404);
  EXPECT_EQ(Curl("PATCH", bpath, admin_, json{{"password", "short"}}).status, 400);
  EXPECT_EQ(Curl("DELETE", "/api/v1/users/1", bob).status, 403);
  // The last admin can neither be demoted nor deleted.
  EXPECT_EQ(Curl("PATCH", "/api/v1/users/1", admin_, json{{"role", "user"}}).status, 409);
  EXPECT_EQ(Curl("DELETE", "/api/v1/users/1", admin_).status, 409);
  ApiReply promoted = Curl("PATCH", bpath, admin_, json{{"role", "admin"}});
  ASSERT_EQ(promoted.status, 200) << promoted.raw;
  EXPECT_EQ(promoted.body["role"], "admin");
  EXPECT_EQ(Curl("PATCH", bpath, admin_, json{{"role", "user"}}).status, 200);

  ApiReply group = Curl("POST", "/api/v1/groups", admin_, json{{"name", "ops"}});
  ASSERT_EQ(group.status, 201) << group.raw;
  std::string gpath = "/api/v1/groups/" + std::to_string(group.body["id"].get<int>());
  ApiReply added = Curl("POST", gpath + "/members", admin_, json{{"user_id", bob_id}});
  ASSERT_EQ(added.status, 200) << added.raw;
  EXPECT_EQ(added.body["member_ids"], json::array({bob_id}));
  EXPECT_EQ(Curl("POST", gpath + "/members", admin_, json{{"user_id", 999}}).status, 400);
  EXPECT_EQ(Curl("POST", gpath + "/members", bob, json{{"user_id", bob_id}}).status, 403);
  ApiReply renamed = Curl("PATCH", gpath, admin_, json{{"name", "sre"}});
  ASSERT_EQ(renamed.status, 200) << renamed.raw;
  EXPECT_EQ(Curl("GET", "/api/v1/groups?name=sre", admin_).body["items"].size(), 1u);
  // A grant to the group reaches bob, and goes with the group.
  std::string lpath = "/api/v1/backup-locations/" + std::to_string(location_);
  ASSERT_EQ(Curl("POST", lpath + "/grants", admin_,
                 json{{"group_id", group.body["id"]}, {"access", "READ"}})
                .status,
            201);
  EXPECT_EQ(Curl("GET", lpath, bob).status, 200);
  EXPECT_EQ(Curl("DELETE", gpath + "/members/" + std::to_string(bob_id), admin_).status, 204);
  EXPECT_EQ(Curl("GET", lpath, bob).status, 404);
  EXPECT_EQ(Curl("DELETE", gpath + "/members/" + std::to_string(bob_id), admin_).status, 404);
  EXPECT_EQ(Curl("DELETE", gpath, admin_).status, 204);
  EXPECT_EQ(Curl("GET", gpath, admin_).status, 404);
  EXPECT_TRUE(Curl("GET", lpath + "/grants", admin_).body["items"].empty());

  // A user who owns objects stays until they are gone; then their tokens die.
  auto dir = dir_.MakeSubdir("bobs");
  ASSERT_TRUE(dir.ok());
  ApiReply owned =
      Curl("POST", "/api/v1/backup-locations", bob,
           json{{"name", "bobs"}, {"type", "file"}, {"url", "file://" + dir->string()}});
  ASSERT_EQ(owned.status, 201) << owned.raw;
  EXPECT_EQ(Curl("DELETE", bpath, admin_).status, 409);
  EXPECT_EQ(
      Curl("DELETE", "/api/v1/backup-locations/" + std::to_string(owned.body["id"].get<int>()), bob)
          .status,
      204);
  EXPECT_EQ(Curl("DELETE", bpath, admin_).status, 204);
  EXPECT_EQ(Curl("GET", "/api/v1/users/me", bob).status, 401);
  EXPECT_EQ(Curl("GET", bpath, admin_).status, 404);
}

// One log line per request naming method, path, status and user; with
// --log-target journal those lines leave stderr (for the journal), and no
// secret ever reaches the log.
TEST_F(BunkerdApiTest, RequestLinesNameTheUserAndGoToTheChosenTarget) {
  std::string bob = AddUser("bob");
  ASSERT_EQ(Curl("GET", "/api/v1/users/me", bob).status, 200);
  EXPECT_EQ(server_.Stop(), "exit 0");
  auto log = ReadFile(dir_.path() / "bunkerd.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("GET /api/v1/users/me 200"), std::string::npos) << *log;
  EXPECT_NE(log->find("user=bob"), std::string::npos) << *log;
  for (const char* secret : {"bob-password", "admin-password", "bkr_"}) {
    EXPECT_EQ(log->find(secret), std::string::npos) << secret;
  }

  ASSERT_TRUE(WriteFile(dir_.path() / "bunkerd.log", "").ok());
  ASSERT_NO_FATAL_FAILURE(StartServer({"--log-target", "journal"}));
  ASSERT_EQ(Curl("GET", "/api/v1/users/me", bob).status, 200);
  EXPECT_EQ(server_.Stop(), "exit 0");
  log = ReadFile(dir_.path() / "bunkerd.log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->find("GET /api/v1/users/me"), std::string::npos) << *log;
}

TEST_F(BunkerdApiTest, UnknownLogTargetIsAUsageError) {
  auto run = RunCommand({Bunkerd(), "serve", "--data-dir", data_, "--listen", "127.0.0.1:0",
                         "--log-target", "syslog"});
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 2) << run->Describe();
  EXPECT_NE(run->err.find("log_target"), std::string::npos) << run->Describe();
}

}  // namespace
}  // namespace bunker::testing
