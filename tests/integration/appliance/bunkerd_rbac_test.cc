// The ownership model over real HTTPS to a real bunkerd: the RBAC matrix
// {owner, READ grantee (direct), READ grantee (via a group), FULL grantee,
// other user, admin} × {list, get, update, delete, restore-from} on backup
// locations and on backups, every cell asserted. "restore-from" is creating
// a restore (openapi.json: READ on the backup and on its location, FULL on
// the target cluster; each actor restores to a cluster of their own).

#include <functional>
#include <map>

#include "tests/integration/appliance/bunkerd_fixture.h"

namespace bunker::testing {
namespace {

using json = nlohmann::json;

class BunkerdRbacTest : public BunkerdFixture {
 protected:
  struct Actor {
    std::string name;
    std::string token;
    int64_t id = 0;
    int64_t cluster_id = 0;  // a cluster the actor owns (restore target)
  };

  void SetUp() override {
    BunkerdFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    for (const char* name : {"owner", "reader", "member", "full", "other"}) {
      Actor a{name, "", 0, 0};
      a.token = AddUser(name, &a.id);
      ASSERT_FALSE(a.token.empty());
      actors_[name] = a;
    }
    actors_["admin"] = Actor{"admin", admin_, 1, 0};
    ApiReply group =
        Curl("POST", "/api/v1/groups", admin_, json{{"name", "ops"}, {"members", {"member"}}});
    ASSERT_EQ(group.status, 201) << group.raw;
    ops_ = group.body["id"];
    for (auto& [name, a] : actors_) {
      ApiReply c = Curl("POST", "/api/v1/clusters", a.token,
                        json{{"name", "c-" + name}, {"kubeconfig", Kubeconfig()}});
      ASSERT_EQ(c.status, 201) << c.raw;
      a.cluster_id = c.body["id"];
    }
  }

  // A kubeconfig whose server refuses connections: registered, unreachable.
  static std::string Kubeconfig() {
    return "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
           "clusters:\n- name: x\n  cluster:\n    server: https://127.0.0.1:1\n"
           "contexts:\n- name: x\n  context:\n    cluster: x\n    user: x\n"
           "users:\n- name: x\n  user:\n    token: not-a-real-token\n";
  }

  void Grant(const std::string& path, json grantee, const std::string& access) {
    grantee["access"] = access;
    ApiReply r = Curl("POST", path + "/grants", actors_["owner"].token, grantee);
    ASSERT_EQ(r.status, 201) << path << " " << r.raw;
  }
  json User(const std::string& name) { return json{{"user_id", actors_[name].id}}; }
  json Ops() { return json{{"group_id", ops_}}; }

  // Grants the matrix's subjects their access to `path`: reader READ, the
  // group "ops" (member) READ, full FULL.
  void MatrixGrants(const std::string& path) {
    Grant(path, User("reader"), "READ");
    Grant(path, Ops(), "READ");
    Grant(path, User("full"), "FULL");
  }

  // A file:// location owned by "owner".
  int64_t AddLocation(const std::string& name) {
    auto dir = dir_.MakeSubdir("loc-" + name);
    EXPECT_TRUE(dir.ok());
    ApiReply r = Curl("POST", "/api/v1/backup-locations", actors_["owner"].token,
                      json{{"name", name}, {"type", "file"}, {"url", "file://" + dir->string()}});
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.status == 201 ? r.body["id"].get<int64_t>() : 0;
  }

  int64_t AddBackup(const std::string& name, int64_t location_id) {
    ApiReply r = Curl("POST", "/api/v1/backups", actors_["owner"].token,
                      json{{"name", name},
                           {"cluster_id", actors_["owner"].cluster_id},
                           {"location_id", location_id},
                           {"namespaces", {"shop"}}});
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.status == 201 ? r.body["id"].get<int64_t>() : 0;
  }

  int Restore(const Actor& a, int64_t backup_id) {
    static int n = 0;
    ApiReply r = Curl("POST", "/api/v1/restores", a.token,
                      json{{"name", "r-" + a.name + "-" + std::to_string(++n)},
                           {"backup_id", backup_id},
                           {"cluster_id", a.cluster_id}});
    if (r.status >= 400) {
      EXPECT_TRUE(r.body.contains("code") && r.body.contains("message")) << r.raw;
    }
    return r.status;
  }

  struct Expect {
    size_t listed;
    int get;
    int update;
    int del;
    int restore;
  };

  // Asserts list/get/update/restore-from for every actor, then delete: the
  // refused deletes on `path`, the allowed ones on a fresh copy per actor
  // made by `fresh` (one object can be deleted only once).
  void RunMatrix(const std::string& base, int64_t id, const std::string& list_query,
                 const std::map<std::string, Expect>& want,
                 const std::function<int64_t(const std::string&)>& restore_backup,
                 const std::function<int64_t(const std::string&)>& fresh) {
    std::string path = base + "/" + std::to_string(id);
    for (const auto& [name, e] : want) {
      SCOPED_TRACE(base + " as " + name);
      const Actor& a = actors_[name];
      ApiReply list = Curl("GET", base + list_query, a.token);
      ASSERT_EQ(list.status, 200) << list.raw;
      EXPECT_EQ(list.body["items"].size(), e.listed) << "list";
      ApiReply get = Curl("GET", path, a.token);
      EXPECT_EQ(get.status, e.get) << "get " << get.raw;
      ApiReply update = Curl("PATCH", path, a.token, json{{"name", "renamed-by-" + name}});
      EXPECT_EQ(update.status, e.update) << "update " << update.raw;
      if (e.update == 200) {
        EXPECT_EQ(update.body["name"], "renamed-by-" + name);
      }
      EXPECT_EQ(Restore(a, restore_backup(name)), e.restore) << "restore-from";
    }
    for (const auto& [name, e] : want) {
      SCOPED_TRACE(base + " delete as " + name);
      const Actor& a = actors_[name];
      if (e.del == 204) {
        int64_t copy = fresh(name);
        ASSERT_NE(copy, 0);
        std::string copy_path = base + "/" + std::to_string(copy);
        EXPECT_EQ(Curl("DELETE", copy_path, a.token).status, 204);
        EXPECT_EQ(Curl("GET", copy_path, actors_["owner"].token).status, 404);
      } else {
        EXPECT_EQ(Curl("DELETE", path, a.token).status, e.del);
        EXPECT_EQ(Curl("GET", path, actors_["owner"].token).status, 200) << "still there";
      }
    }
  }

  std::map<std::string, Actor> actors_;
  int64_t ops_ = 0;
};

TEST_F(BunkerdRbacTest, BackupLocationMatrix) {
  int64_t loc = AddLocation("loc-matrix");
  ASSERT_NE(loc, 0);
  std::string path = "/api/v1/backup-locations/" + std::to_string(loc);
  ASSERT_NO_FATAL_FAILURE(MatrixGrants(path));
  // A backup stored in the location that every actor may READ, so only the
  // access to the location decides restore-from.
  int64_t backup = AddBackup("in-loc-matrix", loc);
  ASSERT_NE(backup, 0);
  std::string bpath = "/api/v1/backups/" + std::to_string(backup);
  for (const char* who : {"reader", "full", "other"}) {
    ASSERT_NO_FATAL_FAILURE(Grant(bpath, User(who), "READ"));
  }
  ASSERT_NO_FATAL_FAILURE(Grant(bpath, Ops(), "READ"));

  std::map<std::string, Expect> want = {
      {"owner", {1, 200, 200, 204, 201}},  {"reader", {1, 200, 403, 403, 201}},
      {"member", {1, 200, 403, 403, 201}}, {"full", {1, 200, 200, 204, 201}},
      {"other", {0, 404, 404, 404, 403}},  {"admin", {1, 200, 200, 204, 201}},
  };
  int copies = 0;
  RunMatrix(
      "/api/v1/backup-locations", loc, "?type=file&limit=1000", want,
      [&](const std::string&) { return backup; },
      [&](const std::string&) {
        int64_t id = AddLocation("loc-copy-" + std::to_string(++copies));
        MatrixGrants("/api/v1/backup-locations/" + std::to_string(id));
        return id;
      });
}

TEST_F(BunkerdRbacTest, BackupMatrix) {
  // The location every actor may READ, so only the access to the backup
  // decides restore-from.
  int64_t loc = AddLocation("loc-open");
  ASSERT_NE(loc, 0);
  std::string lpath = "/api/v1/backup-locations/" + std::to_string(loc);
  for (const char* who : {"reader", "full", "other"}) {
    ASSERT_NO_FATAL_FAILURE(Grant(lpath, User(who), "READ"));
  }
  ASSERT_NO_FATAL_FAILURE(Grant(lpath, Ops(), "READ"));
  int64_t backup = AddBackup("b-matrix", loc);
  ASSERT_NE(backup, 0);
  ASSERT_NO_FATAL_FAILURE(MatrixGrants("/api/v1/backups/" + std::to_string(backup)));

  std::map<std::string, Expect> want = {
      {"owner", {1, 200, 200, 204, 201}},  {"reader", {1, 200, 403, 403, 201}},
      {"member", {1, 200, 403, 403, 201}}, {"full", {1, 200, 200, 204, 201}},
      {"other", {0, 404, 404, 404, 400}},  {"admin", {1, 200, 200, 204, 201}},
  };
  int copies = 0;
  RunMatrix(
      "/api/v1/backups", backup, "?state=pending&location_id=" + std::to_string(loc), want,
      [&](const std::string&) { return backup; },
      [&](const std::string&) {
        int64_t id = AddBackup("b-copy-" + std::to_string(++copies), loc);
        MatrixGrants("/api/v1/backups/" + std::to_string(id));
        return id;
      });
}

}  // namespace
}  // namespace bunker::testing
