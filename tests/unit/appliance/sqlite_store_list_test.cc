// Store::List*Page against the algorithm the API used before it (load the
// whole table, keep what auth::EffectiveAccess shows the caller, filter, then
// page), on a store filled at random with a fixed seed: several kinds,
// owners, users in groups (one in more groups than the store gives their own
// UNION arm), grants to users and groups, deleted objects and grants on
// objects that do not exist.

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "appliance/auth/access.h"
#include "appliance/store/store.h"
#include "tests/harness/temp_dir.h"

namespace bunker::store {
namespace {

using auth::Access;
using auth::Principal;

// What one list request answers: ids, the caller's access to each, and
// next_after (0 for null).
struct Answer {
  std::vector<int64_t> ids;
  std::vector<int> access;
  int64_t next_after = 0;
  bool operator==(const Answer&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Answer& a) {
  os << "ids [";
  for (size_t i = 0; i < a.ids.size(); ++i) {
    os << (i ? " " : "") << a.ids[i] << "/" << a.access[i];
  }
  return os << "] next_after " << a.next_after;
}

// A kind under test: the generic kinds, or backup locations (nullopt).
using AnyKind = std::optional<Kind>;

std::string KindLabel(AnyKind kind) {
  return kind ? std::string(KindName(*kind)) : std::string(kKindLocation);
}

// A listed record, reduced to what both algorithms must agree on.
struct Row {
  int64_t id = 0;
  std::string name;
  int64_t owner_id = 0;
  std::string type;   // locations
  std::string state;  // backups, restores
  std::map<std::string, int64_t, std::less<>> refs;
  std::string payload;  // spec/config, to check the right columns were read
};

class SqliteStoreListTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kSeed = 20261126;

  void SetUp() override {
    auto dir = testing::TempDir::Create("store-list-test");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(dir).value();
    auto store = OpenSqliteStore((dir_.path() / "bunker.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    ASSERT_NO_FATAL_FAILURE(Fill());
  }

  template <typename T>
  T Ok(Result<T> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : T{};
  }

  // ~500 objects over every kind, 14 users, 20 groups, ~400 grants.
  void Fill() {
    std::mt19937 rng(kSeed);
    auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
    auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };

    users_.push_back(Ok(store_->CreateUser({0, "admin", "admin", "h", 1})));
    for (int i = 0; i < 12; ++i) {
      users_.push_back(Ok(store_->CreateUser({0, "user" + std::to_string(i), "user", "h", 1})));
    }
    nobody_ = Ok(store_->CreateUser({0, "nobody", "user", "h", 1}));  // owns and is granted nothing
    joiner_ = Ok(store_->CreateUser({0, "joiner", "user", "h", 1}));  // in 18 groups
    for (int i = 0; i < 20; ++i) {
      std::vector<int64_t> members;
      for (size_t u = 1; u < users_.size(); ++u) {
        if (chance(15)) {
          members.push_back(users_[u]);
        }
      }
      if (i < 18) {
        members.push_back(joiner_);
      }
      groups_.push_back(Ok(store_->CreateGroup({0, "group" + std::to_string(i), members, 1})));
    }

    auto owner = [&] { return chance(10) ? users_[0] : users_[1 + rng() % (users_.size() - 1)]; };
    const std::vector<std::string> types = {"file", "nfs", "s3"};
    const std::vector<std::string> states = {"pending", "running", "succeeded", "failed"};
    int serial = 0;
    auto name = [&](std::string_view prefix) {
      return std::string(prefix) + std::to_string(serial++);
    };
    for (int i = 0; i < 60; ++i) {
      std::string t = pick(types);
      ids_[std::nullopt].push_back(Ok(store_->CreateLocation({0,
                                                              name("loc"),
                                                              t,
                                                              t + "://x/" + std::to_string(i),
                                                              "{\"n\":" + std::to_string(i) + "}",
                                                              {},
                                                              owner(),
                                                              1})));
    }
    auto create = [&](Kind kind, int count) {
      for (int i = 0; i < count; ++i) {
        ObjectRecord o;
        o.name = name(KindName(kind));
        o.owner_id = owner();
        o.spec_json = "{\"i\":" + std::to_string(i) + "}";
        if (KindHasState(kind)) {
          o.state = pick(states);
        }
        if (kind == Kind::kBackup) {
          o.refs["cluster_id"] = pick(ids_[Kind::kCluster]);
          o.refs["location_id"] = pick(ids_[std::nullopt]);
          if (chance(50)) {
            o.refs["pre_rule_id"] = pick(ids_[Kind::kRule]);
          }
          if (chance(50)) {
            o.refs["schedule_policy_id"] = pick(ids_[Kind::kSchedulePolicy]);
          }
        } else if (kind == Kind::kRestore) {
          o.refs["backup_id"] = pick(ids_[Kind::kBackup]);
          o.refs["cluster_id"] = pick(ids_[Kind::kCluster]);
        }
        ids_[kind].push_back(Ok(store_->CreateObject(kind, o)));
      }
    };
    create(Kind::kCluster, 40);
    create(Kind::kRule, 30);
    create(Kind::kSchedulePolicy, 90);
    create(Kind::kBackup, 150);
    create(Kind::kRestore, 60);
    // Gaps in the ids: delete some policies and restores (with their grants,
    // granted first).
    const std::vector<AnyKind> kinds = Kinds();
    for (int i = 0; i < 420; ++i) {
      AnyKind kind = pick(kinds);
      GrantRecord g;
      g.object_kind = KindLabel(kind);
      // A few grants on objects that do not exist.
      g.object_id = chance(3) ? 100000 + i : pick(ids_[kind]);
      g.grantee_kind = chance(50) ? "user" : "group";
      g.grantee_id = g.grantee_kind == "user" ? pick(users_) : pick(groups_);
      g.access = chance(50) ? "READ" : "FULL";
      g.created_at = 1;
      (void)store_->CreateGrant(g);  // AlreadyExists for a repeated grantee: fine
    }
    for (Kind kind : {Kind::kSchedulePolicy, Kind::kRestore}) {
      std::vector<int64_t>& ids = ids_[kind];
      for (size_t i = 3; i < ids.size(); i += 7) {
        ASSERT_TRUE(store_->DeleteObject(kind, ids[i]).ok());
      }
    }
  }

  static std::vector<AnyKind> Kinds() {
    return {std::nullopt,          Kind::kCluster, Kind::kRule,
            Kind::kSchedulePolicy, Kind::kBackup,  Kind::kRestore};
  }

  // Admin, every user, the joiner and the one who sees nothing.
  std::vector<Principal> Principals() {
    std::vector<Principal> out;
    std::vector<int64_t> ids = users_;
    ids.push_back(nobody_);
    ids.push_back(joiner_);
    for (int64_t id : ids) {
      UserRecord u = Ok(store_->GetUser(id));
      Principal p;
      p.user_id = id;
      p.name = u.name;
      auth::ParseRole(u.role, &p.role);
      p.group_ids = Ok(store_->GroupsOfUser(id));
      out.push_back(p);
    }
    return out;
  }

  static Viewer ViewerOf(const Principal& p) {
    return Viewer{p.role == auth::Role::kAdmin, p.user_id, p.group_ids};
  }

  std::vector<Row> AllRows(AnyKind kind) {
    std::vector<Row> rows;
    if (!kind) {
      for (const LocationRecord& l : Ok(store_->ListLocations())) {
        rows.push_back({l.id, l.name, l.owner_id, l.type, "", {}, l.config_json});
      }
    } else {
      for (const ObjectRecord& o : Ok(store_->ListObjects(*kind))) {
        rows.push_back({o.id, o.name, o.owner_id, "", o.state, o.refs, o.spec_json});
      }
    }
    return rows;
  }

  // The old algorithm: every record, one grant query each, filters, then
  // ?limit/?after paging as the API's Page() did it.
  Answer Reference(AnyKind kind, const Principal& p, const ListQuery& q,
                   std::vector<Row>* page_rows = nullptr) {
    std::vector<std::pair<Row, Access>> visible;
    for (Row& r : AllRows(kind)) {
      Access a =
          auth::EffectiveAccess(p, r.owner_id, Ok(store_->ListGrants(KindLabel(kind), r.id)));
      bool match = a != Access::kNone && (!q.name || *q.name == r.name) &&
                   (!q.type || *q.type == r.type) && (!q.state || *q.state == r.state);
      for (const auto& [column, id] : q.refs) {
        auto it = r.refs.find(column);
        match = match && (it == r.refs.end() ? 0 : it->second) == id;
      }
      if (match) {
        visible.emplace_back(std::move(r), a);
      }
    }
    Answer out;
    for (auto& [r, a] : visible) {
      if (r.id <= q.after) {
        continue;
      }
      if (static_cast<int64_t>(out.ids.size()) == q.limit) {
        out.next_after = out.ids.back();
        break;
      }
      out.ids.push_back(r.id);
      out.access.push_back(static_cast<int>(a));
      if (page_rows) {
        page_rows->push_back(r);
      }
    }
    return out;
  }

  Answer Sql(AnyKind kind, const Principal& p, const ListQuery& q,
             std::vector<Row>* page_rows = nullptr) {
    Answer out;
    auto take = [&](const auto& page) {
      EXPECT_EQ(page.items.size(), page.access.size());
      for (size_t i = 0; i < page.items.size(); ++i) {
        out.ids.push_back(page.items[i].id);
        out.access.push_back(static_cast<int>(page.access[i]));
      }
      if (page.more) {
        EXPECT_FALSE(page.items.empty());
        out.next_after = page.items.empty() ? -1 : page.items.back().id;
      }
    };
    if (!kind) {
      ListPage<LocationRecord> page = Ok(store_->ListLocationsPage(ViewerOf(p), q));
      take(page);
      if (page_rows) {
        for (const LocationRecord& l : page.items) {
          page_rows->push_back({l.id, l.name, l.owner_id, l.type, "", {}, l.config_json});
        }
      }
    } else {
      ListPage<ObjectRecord> page = Ok(store_->ListObjectsPage(*kind, ViewerOf(p), q));
      take(page);
      if (page_rows) {
        for (const ObjectRecord& o : page.items) {
          page_rows->push_back({o.id, o.name, o.owner_id, "", o.state, o.refs, o.spec_json});
        }
      }
    }
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::vector<int64_t> users_;  // users_[0] is the admin
  std::vector<int64_t> groups_;
  int64_t nobody_ = 0;
  int64_t joiner_ = 0;
  std::map<AnyKind, std::vector<int64_t>> ids_;  // as created (some deleted since)
};

TEST_F(SqliteStoreListTest, PagesEqualTheLoadAllAlgorithm) {
  std::mt19937 rng(kSeed + 1);
  int compared = 0;
  int nonempty = 0;
  for (AnyKind kind : Kinds()) {
    std::vector<Row> all = AllRows(kind);
    ASSERT_GT(all.size(), 20u);
    for (const Principal& p : Principals()) {
      std::vector<ListQuery> queries;
      for (int64_t limit : {1, 2, 7, 100, 1000}) {
        for (int64_t after :
             {int64_t{0}, all[all.size() / 3].id, all[all.size() / 2].id + 1, all.back().id}) {
          ListQuery q;
          q.limit = limit;
          q.after = after;
          queries.push_back(q);
        }
      }
      // Filters: an existing name (visible to this caller or not), a missing
      // one, and the kind's own filters, alone and combined.
      for (int i = 0; i < 4; ++i) {
        ListQuery q;
        q.limit = 1 + rng() % 10;
        q.name = all[rng() % all.size()].name;
        queries.push_back(q);
      }
      ListQuery missing;
      missing.name = "no-such-name";
      queries.push_back(missing);
      if (!kind) {
        for (const char* type : {"file", "nfs", "s3", "azure"}) {
          ListQuery q;
          q.limit = 3;
          q.type = type;
          queries.push_back(q);
          q.after = all[all.size() / 2].id;
          q.limit = 1000;
          queries.push_back(q);
        }
      } else {
        if (KindHasState(*kind)) {
          for (const char* state : {"running", "failed", "deleting"}) {
            ListQuery q;
            q.limit = 5;
            q.state = state;
            queries.push_back(q);
          }
        }
        for (std::string_view ref : KindRefs(*kind)) {
          for (int64_t id : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{99999}}) {
            ListQuery q;
            q.limit = 4;
            q.refs[std::string(ref)] = id;
            queries.push_back(q);
            if (KindHasState(*kind)) {
              q.state = "succeeded";
              q.limit = 1000;
              queries.push_back(q);
            }
          }
        }
      }
      for (const ListQuery& q : queries) {
        std::vector<Row> want_rows;
        std::vector<Row> got_rows;
        Answer want = Reference(kind, p, q, &want_rows);
        Answer got = Sql(kind, p, q, &got_rows);
        ASSERT_EQ(got, want) << KindLabel(kind) << " as " << p.name << " limit " << q.limit
                             << " after " << q.after << " name " << q.name.value_or("-");
        ASSERT_EQ(got_rows.size(), want_rows.size());
        for (size_t i = 0; i < got_rows.size(); ++i) {
          EXPECT_EQ(got_rows[i].name, want_rows[i].name);
          EXPECT_EQ(got_rows[i].owner_id, want_rows[i].owner_id);
          EXPECT_EQ(got_rows[i].type, want_rows[i].type);
          EXPECT_EQ(got_rows[i].state, want_rows[i].state);
          EXPECT_EQ(got_rows[i].refs, want_rows[i].refs);
          EXPECT_EQ(got_rows[i].payload, want_rows[i].payload);
        }
        ++compared;
        nonempty += want.ids.empty() ? 0 : 1;
      }
    }
  }
  // The comparisons were not vacuous.
  EXPECT_GT(compared, 1000);
  EXPECT_GT(nonempty, compared / 3);
}

TEST_F(SqliteStoreListTest, AccessLevelsCoverEveryCase) {
  // The data set exercises owner, FULL and READ for users who are not admins
  // (so the equivalence above checks the access column, not just ids).
  std::set<int> seen;
  for (const Principal& p : Principals()) {
    if (p.role == auth::Role::kAdmin) {
      continue;
    }
    for (AnyKind kind : Kinds()) {
      ListQuery q;
      q.limit = 1000;
      Answer a = Sql(kind, p, q);
      seen.insert(a.access.begin(), a.access.end());
    }
  }
  EXPECT_EQ(seen, (std::set<int>{1, 2, 3}));
}

TEST_F(SqliteStoreListTest, WalkingNextAfterVisitsEveryVisibleObjectOnce) {
  for (AnyKind kind : Kinds()) {
    for (const Principal& p : Principals()) {
      ListQuery everything;
      everything.limit = 1000000;
      Answer want = Reference(kind, p, everything);
      for (int64_t limit : {1, 7, 1000}) {
        std::vector<int64_t> visited;
        ListQuery q;
        q.limit = limit;
        for (int pages = 0;; ++pages) {
          ASSERT_LT(pages, 1000) << "the walk does not end";
          Answer page = Sql(kind, p, q);
          ASSERT_LE(static_cast<int64_t>(page.ids.size()), limit);
          visited.insert(visited.end(), page.ids.begin(), page.ids.end());
          if (page.next_after == 0) {
            break;
          }
          ASSERT_EQ(static_cast<int64_t>(page.ids.size()), limit);
          q.after = page.next_after;
        }
        EXPECT_TRUE(std::is_sorted(visited.begin(), visited.end()));
        EXPECT_EQ(std::set<int64_t>(visited.begin(), visited.end()).size(), visited.size());
        EXPECT_EQ(visited, want.ids) << KindLabel(kind) << " as " << p.name << " limit " << limit;
      }
    }
  }
}

TEST_F(SqliteStoreListTest, UserAndGroupPagesEqualTheLoadAllAlgorithm) {
  std::vector<UserRecord> users = Ok(store_->ListUsers());
  std::vector<GroupRecord> groups = Ok(store_->ListGroups());
  auto check = [](const auto& all, const auto& page, const ListQuery& q) {
    std::vector<int64_t> want;
    int64_t next = 0;
    for (const auto& r : all) {
      if (r.id <= q.after || (q.name && *q.name != r.name)) {
        continue;
      }
      if (static_cast<int64_t>(want.size()) == q.limit) {
        next = want.back();
        break;
      }
      want.push_back(r.id);
    }
    std::vector<int64_t> got;
    for (const auto& r : page.items) {
      got.push_back(r.id);
    }
    EXPECT_EQ(got, want) << "limit " << q.limit << " after " << q.after;
    EXPECT_EQ(page.more ? got.back() : 0, next);
    EXPECT_TRUE(page.access.empty());
  };
  for (int64_t limit : {1, 3, 1000}) {
    for (int64_t after : {0, 2, 5, 100}) {
      ListQuery q;
      q.limit = limit;
      q.after = after;
      check(users, Ok(store_->ListUsersPage(q)), q);
      ListPage<GroupRecord> page = Ok(store_->ListGroupsPage(q));
      check(groups, page, q);
      for (const GroupRecord& g : page.items) {
        auto it = std::find_if(groups.begin(), groups.end(),
                               [&](const GroupRecord& r) { return r.id == g.id; });
        ASSERT_NE(it, groups.end());
        EXPECT_EQ(g.member_ids, it->member_ids);
        EXPECT_EQ(g.name, it->name);
      }
      for (const char* name : {"joiner", "group3", "missing"}) {
        q.name = name;
        check(users, Ok(store_->ListUsersPage(q)), q);
        check(groups, Ok(store_->ListGroupsPage(q)), q);
        q.name.reset();
      }
    }
  }
}

TEST_F(SqliteStoreListTest, UnknownFiltersAndBadLimitsAreInvalidArgument) {
  Viewer admin{true, users_[0], {}};
  ListQuery q;
  q.refs["owner_id"] = 1;  // not a reference column: never reaches SQL
  EXPECT_EQ(store_->ListObjectsPage(Kind::kBackup, admin, q).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(store_->ListLocationsPage(admin, q).status().code(), Code::kInvalidArgument);
  for (int64_t limit : {int64_t{0}, int64_t{-1}, INT64_MAX}) {
    ListQuery bad;
    bad.limit = limit;
    EXPECT_EQ(store_->ListObjectsPage(Kind::kRule, admin, bad).status().code(),
              Code::kInvalidArgument);
    EXPECT_EQ(store_->ListLocationsPage(admin, bad).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(store_->ListUsersPage(bad).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(store_->ListGroupsPage(bad).status().code(), Code::kInvalidArgument);
  }
  ListQuery state;
  state.state = "running";
  EXPECT_EQ(store_->ListObjectsPage(Kind::kCluster, admin, state).status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace bunker::store
