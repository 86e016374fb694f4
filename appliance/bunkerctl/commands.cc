#include "appliance/bunkerctl/commands.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "appliance/bunkerctl/document.h"

namespace bunker::bunkerctl {
namespace {

using json = nlohmann::json;

const Resource& Res(const std::string& noun) {
  const Resource* r = FindResource(noun);
  if (r == nullptr) {
    std::abort();  // a noun missing from AllResources() is a programming error
  }
  return *r;
}

// Reads a secret for `flag`, printing why it failed.
int ReadSecretFlag(const std::string& path, bool trim, const std::string& flag, std::string* out) {
  Result<std::string> s = ReadSecret(path, trim);
  if (!s.ok()) {
    return Session::Fail(flag + ": " + s.status().message(), kExitUsage);
  }
  *out = std::move(s).value();
  return kExitOk;
}

// KEY=VALUE flags into an object.
int KeyValues(const std::vector<std::string>& items, const std::string& flag, json* out) {
  *out = json::object();
  for (const std::string& item : items) {
    Result<std::pair<std::string, std::string>> kv = SplitKeyValue(item, flag);
    if (!kv.ok()) {
      return Session::Fail(kv.status().message(), kExitUsage);
    }
    (*out)[kv->first] = kv->second;
  }
  return kExitOk;
}

// Sets body[field] to the id of `ref` (a name or id of `noun`) when given.
int ResolveInto(Session& s, const std::string& noun, const std::string& ref,
                const std::string& field, json* body) {
  if (ref.empty()) {
    return kExitOk;
  }
  int64_t id = 0;
  if (int rc = s.Resolve(Res(noun), ref, &id); rc != kExitOk) {
    return rc;
  }
  (*body)[field] = id;
  return kExitOk;
}

// "30m", "2h", "1d" or plain minutes → minutes; 0 when unreadable.
int64_t ParseMinutes(const std::string& text) {
  if (text.empty()) {
    return 0;
  }
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'm':
      digits.pop_back();
      break;
    case 'h':
      unit = 60;
      digits.pop_back();
      break;
    case 'd':
      unit = 24 * 60;
      digits.pop_back();
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return std::stoll(digits) * unit;
}

std::string Capitalized(std::string s) {
  std::replace(s.begin(), s.end(), '_', ' ');
  if (!s.empty()) {
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  }
  return s;
}

std::string Scalar(const json& v) {
  if (v.is_null()) {
    return "-";
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// What one noun adds to the generic create/update/list verbs.
struct NounSpec {
  std::string noun;
  std::string help;
  std::string create_footer;
  std::string update_footer;
  std::string list_footer;
  // Adds the noun's flags to its create (true) or update (false) verb.
  std::function<void(CLI::App*, bool create)> add_flags = [](CLI::App*, bool) {};
  // Sets body fields from those flags; returns an exit code.
  std::function<int(Session&, json* body, bool create)> fill = [](Session&, json*, bool) {
    return kExitOk;
  };
  std::function<void(CLI::App*)> add_list_flags = [](CLI::App*) {};
  // Appends "&k=v" filters from the list flags.
  std::function<int(Session&, std::string* query)> list_query = [](Session&, std::string*) {
    return kExitOk;
  };
  // Runs after a successful create (e.g. adds group members); may replace
  // the printed object.
  std::function<int(Session&, json* created)> after_create;
};

// State of the generic verbs of one noun (bound to their flags).
struct Generic {
  const Resource* res = nullptr;
  std::string name;
  std::string ref;
  std::vector<std::string> refs;
  std::string file;
  std::string new_name;
  int64_t limit = 0;
  int64_t page_size = 1000;
  std::string name_filter;
};

int LoadBody(const std::string& file, json* body) {
  *body = json::object();
  if (file.empty()) {
    return kExitOk;
  }
  Result<json> doc = ReadDocument(file);
  if (!doc.ok()) {
    return Session::Fail(doc.status().message(), kExitUsage);
  }
  if (!doc->is_object()) {
    return Session::Fail(file + ": the document must be an object (a mapping)", kExitUsage);
  }
  *body = std::move(doc).value();
  return kExitOk;
}

int RunCreate(Session& s, const Generic& g, const NounSpec& spec) {
  json body;
  if (int rc = LoadBody(g.file, &body); rc != kExitOk) {
    return rc;
  }
  if (!g.name.empty()) {
    body["name"] = g.name;
  }
  if (!body.contains("name")) {
    return Session::Fail(
        "a name is required: bunkerctl " + spec.noun + " create NAME … (or -f FILE)", kExitUsage);
  }
  if (int rc = spec.fill(s, &body, true); rc != kExitOk) {
    return rc;
  }
  json created;
  if (int rc = s.Call("POST", "/api/v1/" + g.res->collection, body, &created); rc != kExitOk) {
    return rc;
  }
  if (spec.after_create) {
    if (int rc = spec.after_create(s, &created); rc != kExitOk) {
      return rc;
    }
  }
  s.Print(created, g.res->columns);
  return kExitOk;
}

int RunUpdate(Session& s, const Generic& g, const NounSpec& spec) {
  int64_t id = 0;
  if (int rc = s.Resolve(*g.res, g.ref, &id); rc != kExitOk) {
    return rc;
  }
  json body;
  if (int rc = LoadBody(g.file, &body); rc != kExitOk) {
    return rc;
  }
  if (!g.new_name.empty()) {
    body["name"] = g.new_name;
  }
  if (int rc = spec.fill(s, &body, false); rc != kExitOk) {
    return rc;
  }
  if (body.empty()) {
    return Session::Fail(
        "nothing to update: give the fields to change as flags or with -f FILE "
        "(see bunkerctl " +
            spec.noun + " update --help)",
        kExitUsage);
  }
  json updated;
  if (int rc = s.Call("PATCH", "/api/v1/" + g.res->collection + "/" + std::to_string(id), body,
                      &updated);
      rc != kExitOk) {
    return rc;
  }
  s.Print(updated, g.res->columns);
  return kExitOk;
}

int RunGet(Session& s, const Resource& res, const std::string& ref) {
  int64_t id = 0;
  if (int rc = s.Resolve(res, ref, &id); rc != kExitOk) {
    return rc;
  }
  json object;
  if (int rc = s.Call("GET", "/api/v1/" + res.collection + "/" + std::to_string(id), &object);
      rc != kExitOk) {
    return rc;
  }
  s.Print(object, res.columns);
  return kExitOk;
}

int RunList(Session& s, const Generic& g, const NounSpec& spec) {
  std::string query;
  if (!g.name_filter.empty()) {
    query += "&name=" + QueryEscape(g.name_filter);
  }
  if (int rc = spec.list_query(s, &query); rc != kExitOk) {
    return rc;
  }
  json items;
  if (int rc = s.ListAll(g.res->collection, query.empty() ? "" : query.substr(1), g.limit, &items,
                         g.page_size);
      rc != kExitOk) {
    return rc;
  }
  s.Print(json{{"items", items}}, g.res->columns);
  return kExitOk;
}

int RunDelete(Session& s, const Resource& res, const std::vector<std::string>& refs) {
  for (const std::string& ref : refs) {
    int64_t id = 0;
    if (int rc = s.Resolve(res, ref, &id); rc != kExitOk) {
      return rc;
    }
    json ignored;
    if (int rc = s.Call("DELETE", "/api/v1/" + res.collection + "/" + std::to_string(id), &ignored);
        rc != kExitOk) {
      return rc;
    }
    if (s.format() == OutputFormat::kTable) {
      std::cout << res.label << " \"" << ref << "\" deleted\n";
    }
  }
  return kExitOk;
}

// Registers `noun` with create (alias add), list, get, update and delete;
// returns the noun's subcommand for extra verbs.
CLI::App* AddNoun(CLI::App& app, Action* selected, const NounSpec& spec) {
  auto g = std::make_shared<Generic>();
  g->res = &Res(spec.noun);
  const std::string& label = g->res->label;
  CLI::App* noun = app.add_subcommand(spec.noun, spec.help);
  noun->require_subcommand(1);

  CLI::App* create = noun->add_subcommand("create", "Create a " + label + " (alias: add)");
  create->alias("add");
  create->add_option("name", g->name, "Name: 1-63 of a-z 0-9 . _ -");
  create->add_option("-f,--filename", g->file,
                     "Create from a JSON or YAML document with the API's fields (- for stdin); "
                     "NAME and flags override the document's fields");
  spec.add_flags(create, true);
  create->footer(spec.create_footer);
  create->callback([=] { *selected = [=](Session& s) { return RunCreate(s, *g, spec); }; });

  CLI::App* list = noun->add_subcommand("list", "List the " + label + "s you can see");
  list->add_option("--limit", g->limit, "Show at most N (default: all; pages are followed)");
  list->add_option("--page-size", g->page_size, "Items asked for per request (1-1000)")
      ->capture_default_str();
  list->add_option("--name", g->name_filter, "Only the one with this name");
  spec.add_list_flags(list);
  list->footer(spec.list_footer);
  list->callback([=] { *selected = [=](Session& s) { return RunList(s, *g, spec); }; });

  CLI::App* get = noun->add_subcommand("get", "Show one " + label);
  get->add_option(spec.noun, g->ref, "Name or id")->required();
  get->callback([=] { *selected = [=](Session& s) { return RunGet(s, *g->res, g->ref); }; });

  CLI::App* update = noun->add_subcommand("update", "Change a " + label + " (merge-patch)");
  update->add_option(spec.noun, g->ref, "Name or id")->required();
  update->add_option("-f,--filename", g->file,
                     "JSON or YAML document with the fields to change (- for stdin)");
  update->add_option("--new-name", g->new_name, "Rename it");
  spec.add_flags(update, false);
  update->footer(spec.update_footer);
  update->callback([=] { *selected = [=](Session& s) { return RunUpdate(s, *g, spec); }; });

  CLI::App* del = noun->add_subcommand("delete", "Delete " + label + "s");
  del->add_option(spec.noun, g->refs, "Names or ids")->required();
  del->callback([=] { *selected = [=](Session& s) { return RunDelete(s, *g->res, g->refs); }; });
  return noun;
}

// --- login ---

void AddLogin(CLI::App& app, Action* selected) {
  struct State {
    std::string username;
    std::string password_file = "-";
  };
  auto st = std::make_shared<State>();
  CLI::App* login = app.add_subcommand("login", "Log in and save the token in the config file");
  login->add_option("--username,-u", st->username, "User name")->required();
  login->add_option("--password-file", st->password_file, "File with the password; - for stdin")
      ->capture_default_str();
  login->footer(
      "Examples:\n"
      "  bunkerctl login --server https://bunker.corp:8443 --ca-file ca.pem -u admin "
      "--password-file pw.txt\n"
      "  echo \"$PASSWORD\" | bunkerctl login -u alice\n");
  login->callback([=] {
    *selected = [=](Session& s) {
      if (s.config().server.empty()) {
        return Session::Fail("--server https://HOST:PORT is required for the first login",
                             kExitUsage);
      }
      std::string password;
      if (int rc = ReadSecretFlag(st->password_file, true, "--password-file", &password);
          rc != kExitOk) {
        return rc;
      }
      s.config().token.clear();
      json reply;
      int rc = s.Call(
          "POST", "/api/v1/login",
          json{{"username", st->username}, {"password", password}, {"description", "bunkerctl"}},
          &reply);
      if (rc != kExitOk) {
        return rc;
      }
      if (!reply.is_object() || !reply.contains("token") || !reply["token"].is_string()) {
        return Session::Fail("login: the reply has no token", kExitFailure);
      }
      s.config().token = reply["token"].get<std::string>();
      if (Status st2 = SaveCliConfig(s.config_path(), s.config()); !st2.ok()) {
        return Session::Fail(st2.message(), kExitFailure);
      }
      std::cerr << "logged in to " << s.config().server << " as " << st->username
                << "; token saved in " << s.config_path() << "\n";
      return kExitOk;
    };
  });
}

// --- clusters ---

void AddCluster(CLI::App& app, Action* selected) {
  struct State {
    std::string kubeconfig_file;
    std::string data_mover;
    std::string context;
    std::string probe_ref;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "cluster";
  spec.help = "Kubernetes clusters backups are taken from and restored to";
  spec.create_footer =
      "Registers a cluster from a kubeconfig (API URL, CA, token or client certificate) and "
      "probes\n"
      "GET /version. The kubeconfig is read from a file or stdin, stored encrypted, never shown.\n"
      "Examples:\n"
      "  bunkerctl cluster create prod --kubeconfig ~/.kube/config\n"
      "  bunkerctl cluster create dr --kubeconfig dr.yaml --context dr-admin --data-mover csi\n"
      "  kubectl config view --raw --minify | bunkerctl cluster create edge --kubeconfig -\n";
  spec.update_footer =
      "Examples:\n"
      "  bunkerctl cluster update prod --kubeconfig new-token.yaml   # probes again\n"
      "  bunkerctl cluster update prod --data-mover generic\n";
  spec.add_flags = [st](CLI::App* c, bool) {
    c->add_option("--kubeconfig", st->kubeconfig_file, "Kubeconfig file; - reads stdin");
    c->add_option("--data-mover", st->data_mover,
                  "csi (snapshot, then read the snapshot) or generic (read live volumes)")
        ->check(CLI::IsMember({"csi", "generic"}));
    c->add_option("--context", st->context, "Kubeconfig context (default: its current-context)");
  };
  spec.fill = [st](Session&, json* body, bool) {
    if (!st->kubeconfig_file.empty()) {
      std::string text;
      if (int rc = ReadSecretFlag(st->kubeconfig_file, false, "--kubeconfig", &text);
          rc != kExitOk) {
        return rc;
      }
      (*body)["kubeconfig"] = text;
    }
    if (!st->data_mover.empty()) {
      (*body)["data_mover"] = st->data_mover;
    }
    if (!st->context.empty()) {
      (*body)["context"] = st->context;
    }
    return kExitOk;
  };
  CLI::App* noun = AddNoun(app, selected, spec);
  CLI::App* probe = noun->add_subcommand("probe", "Check now whether the cluster is reachable");
  probe->add_option("cluster", st->probe_ref, "Name or id")->required();
  probe->callback([=] {
    *selected = [=](Session& s) {
      const Resource& res = Res("cluster");
      int64_t id = 0;
      if (int rc = s.Resolve(res, st->probe_ref, &id); rc != kExitOk) {
        return rc;
      }
      json status;
      if (int rc = s.Call("POST", "/api/v1/clusters/" + std::to_string(id) + "/probe",
                          json::object(), &status);
          rc != kExitOk) {
        return rc;
      }
      s.Print(status, res.columns);
      return kExitOk;
    };
  });
}

// --- backup locations ---

void AddLocation(CLI::App& app, Action* selected) {
  struct State {
    std::string type, url, endpoint, region, addressing_style, key_id, secret_key_file,
        repo_password_file;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "location";
  spec.help = "Backup locations: file://, NFS or S3 storage holding one repository";
  spec.create_footer =
      "Creating a location probes it (write, read, list, delete a probe object) and fails with\n"
      "the probe's error. Secrets are read from files (- for stdin) and are write-only.\n"
      "Examples:\n"
      "  bunkerctl location create nfs1 --type nfs --url nfs://nas.corp/export/bunker "
      "--repository-password-file repo.pw\n"
      "  bunkerctl location create minio --type s3 --url s3://backups/prod --endpoint "
      "https://minio.corp:9000 \\\n"
      "      --access-key-id AKIA… --secret-access-key-file s3.key --repository-password-file "
      "repo.pw\n"
      "  bunkerctl location create local --type file --url file:///srv/bunker\n";
  spec.update_footer =
      "Only the name changes after creation.\n"
      "Example:\n"
      "  bunkerctl location update nfs1 --new-name nas-primary\n";
  spec.add_flags = [st](CLI::App* c, bool create) {
    if (!create) {
      return;
    }
    c->add_option("--type", st->type, "file, nfs or s3")
        ->check(CLI::IsMember({"file", "nfs", "s3"}));
    c->add_option("--url", st->url, "file:///dir, nfs://host/export/path, s3://bucket/prefix");
    c->add_option("--endpoint", st->endpoint, "S3 endpoint, https://host:port");
    c->add_option("--region", st->region, "S3 region");
    c->add_option("--addressing-style", st->addressing_style,
                  "S3 addressing: auto, path or virtual-hosted");
    c->add_option("--access-key-id", st->key_id, "S3 access key id");
    c->add_option("--secret-access-key-file", st->secret_key_file,
                  "File with the S3 secret key (- for stdin)");
    c->add_option("--repository-password-file", st->repo_password_file,
                  "File with the repository password (- for stdin)");
  };
  spec.fill = [st](Session&, json* body, bool create) {
    if (!create) {
      return kExitOk;
    }
    for (auto [value, field] :
         {std::pair{&st->type, "type"}, std::pair{&st->url, "url"},
          std::pair{&st->endpoint, "endpoint"}, std::pair{&st->region, "region"},
          std::pair{&st->addressing_style, "addressing_style"},
          std::pair{&st->key_id, "access_key_id"}}) {
      if (!value->empty()) {
        (*body)[field] = *value;
      }
    }
    for (auto [file, field, flag] :
         {std::tuple{&st->secret_key_file, "secret_access_key", "--secret-access-key-file"},
          std::tuple{&st->repo_password_file, "repository_password",
                     "--repository-password-file"}}) {
      if (file->empty()) {
        continue;
      }
      std::string secret;
      if (int rc = ReadSecretFlag(*file, true, flag, &secret); rc != kExitOk) {
        return rc;
      }
      (*body)[field] = secret;
    }
    return kExitOk;
  };
  AddNoun(app, selected, spec);
}

// --- schedule policies ---

void AddPolicy(CLI::App& app, Action* selected) {
  struct State {
    std::string every, daily, weekly, at;
    int64_t monthly = 0;
    int64_t retain = -1;
    int64_t incrementals = -1;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "policy";
  spec.help = "Schedule policies: when backups run, how many are kept, fulls vs incrementals";
  spec.create_footer =
      "Give one schedule: --every, --daily, --weekly DAYS --at, or --monthly DAY --at.\n"
      "Examples:\n"
      "  bunkerctl policy create nightly --daily 02:30 --retain 7 --incrementals 6\n"
      "  bunkerctl policy create hourly --every 1h --retain 24\n"
      "  bunkerctl policy create weekend --weekly sat,sun --at 04:00 --retain 8\n"
      "  bunkerctl policy create month-end --monthly 28 --at 23:00 --retain 12\n";
  spec.update_footer =
      "A new schedule replaces the old one; other fields are kept.\n"
      "Examples:\n"
      "  bunkerctl policy update nightly --retain 14\n"
      "  bunkerctl policy update nightly --daily 01:00\n";
  spec.add_flags = [st](CLI::App* c, bool) {
    c->add_option("--every", st->every, "Run every N minutes: 45, 30m, 2h or 1d");
    c->add_option("--daily", st->daily, "Run daily at HH:MM");
    c->add_option("--weekly", st->weekly, "Run weekly on DAYS (mon,tue,…,sun) at --at HH:MM");
    c->add_option("--monthly", st->monthly, "Run monthly on day D (1-31) at --at HH:MM");
    c->add_option("--at", st->at, "HH:MM for --weekly and --monthly");
    c->add_option("--retain", st->retain, "How many backups to keep (rolling)");
    c->add_option("--incrementals", st->incrementals,
                  "Incremental backups between two full backups");
  };
  spec.fill = [st](Session&, json* body, bool create) {
    int kinds = int{!st->every.empty()} + int{!st->daily.empty()} + int{!st->weekly.empty()} +
                int{st->monthly != 0};
    if (kinds > 1) {
      return Session::Fail("give only one of --every, --daily, --weekly, --monthly", kExitUsage);
    }
    if (!st->at.empty() && st->weekly.empty() && st->monthly == 0) {
      return Session::Fail("--at goes with --weekly or --monthly (use --daily HH:MM for daily)",
                           kExitUsage);
    }
    if (!st->every.empty()) {
      int64_t minutes = ParseMinutes(st->every);
      if (minutes <= 0) {
        return Session::Fail("--every \"" + st->every + "\": expected N minutes, Nm, Nh or Nd",
                             kExitUsage);
      }
      (*body)["schedule"] = json{{"kind", "interval"}, {"every_minutes", minutes}};
    } else if (!st->daily.empty()) {
      (*body)["schedule"] = json{{"kind", "daily"}, {"at", st->daily}};
    } else if (!st->weekly.empty() || st->monthly != 0) {
      if (st->at.empty()) {
        return Session::Fail("--weekly and --monthly need --at HH:MM", kExitUsage);
      }
      if (!st->weekly.empty()) {
        json days = json::array();
        std::string rest = st->weekly;
        while (!rest.empty()) {
          size_t comma = rest.find(',');
          days.push_back(rest.substr(0, comma));
          rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
        }
        (*body)["schedule"] = json{{"kind", "weekly"}, {"days", days}, {"at", st->at}};
      } else {
        (*body)["schedule"] = json{{"kind", "monthly"}, {"day", st->monthly}, {"at", st->at}};
      }
    } else if (create && !body->contains("schedule")) {
      return Session::Fail(
          "a schedule is required: --every N, --daily HH:MM, --weekly DAYS --at HH:MM or "
          "--monthly DAY --at HH:MM",
          kExitUsage);
    }
    if (st->retain >= 0) {
      (*body)["retain"] = st->retain;
    }
    if (st->incrementals >= 0) {
      (*body)["incrementals_between_fulls"] = st->incrementals;
    }
    return kExitOk;
  };
  AddNoun(app, selected, spec);
}

// --- rules ---

void AddRule(CLI::App& app, Action* selected) {
  struct State {
    std::string ns, container, command;
    std::vector<std::string> selector;
    bool all_pods = false;
    int64_t timeout = 0;
    bool abort = false;
    bool no_abort = false;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "rule";
  spec.help = "Rules: commands run in pods before or after a backup (freeze/flush databases)";
  spec.create_footer =
      "The flags describe one action; several actions go in a document (-f) with\n"
      "{\"name\": …, \"actions\": [{\"namespace\", \"pod_selector\", \"container\", \"command\",\n"
      "\"all_pods\", \"timeout_seconds\", \"abort_on_failure\"}, …]}.\n"
      "Examples:\n"
      "  bunkerctl rule create freeze-db --namespace app1 --selector app=postgres --container db "
      "\\\n"
      "      --command 'psql -c CHECKPOINT' --timeout 120\n"
      "  bunkerctl rule create flush-all -f flush.yaml\n";
  spec.update_footer =
      "Action flags replace all actions with that one action.\n"
      "Example:\n"
      "  bunkerctl rule update freeze-db --namespace app1 --command 'sync' --all-pods\n";
  spec.add_flags = [st](CLI::App* c, bool) {
    c->add_option("--namespace", st->ns, "Namespace of the pods");
    c->add_option("--selector", st->selector, "Pod label KEY=VALUE (repeat for several)");
    c->add_option("--container", st->container, "Container to run in (default: the first)");
    c->add_option("--command", st->command, "Command line run in the container");
    c->add_flag("--all-pods", st->all_pods, "Run in every matching pod (default: one)");
    c->add_option("--timeout", st->timeout, "Seconds before the command is failed (default 60)");
    c->add_flag("--abort-on-failure", st->abort, "A failure aborts the backup (the default)");
    c->add_flag("--continue-on-failure", st->no_abort, "A failure is logged; the backup goes on");
  };
  spec.fill = [st](Session&, json* body, bool) {
    bool any = !st->ns.empty() || !st->command.empty() || !st->container.empty() ||
               !st->selector.empty() || st->all_pods || st->timeout != 0 || st->abort ||
               st->no_abort;
    if (!any) {
      return kExitOk;
    }
    if (st->abort && st->no_abort) {
      return Session::Fail("give only one of --abort-on-failure, --continue-on-failure",
                           kExitUsage);
    }
    json action = json::object();
    if (!st->ns.empty()) {
      action["namespace"] = st->ns;
    }
    if (!st->selector.empty()) {
      json sel;
      if (int rc = KeyValues(st->selector, "--selector", &sel); rc != kExitOk) {
        return rc;
      }
      action["pod_selector"] = sel;
    }
    if (!st->container.empty()) {
      action["container"] = st->container;
    }
    if (!st->command.empty()) {
      action["command"] = st->command;
    }
    action["all_pods"] = st->all_pods;
    if (st->timeout != 0) {
      action["timeout_seconds"] = st->timeout;
    }
    action["abort_on_failure"] = !st->no_abort;
    (*body)["actions"] = json::array({action});
    return kExitOk;
  };
  AddNoun(app, selected, spec);
}

// --- backups ---

// `bunkerctl backup describe`: the backup, who it is shared with, its log.
int DescribeBackup(Session& s, const std::string& ref) {
  const Resource& res = Res("backup");
  int64_t id = 0;
  if (int rc = s.Resolve(res, ref, &id); rc != kExitOk) {
    return rc;
  }
  const std::string base = "/api/v1/backups/" + std::to_string(id);
  json backup, grants, logs;
  if (int rc = s.Call("GET", base, &backup); rc != kExitOk) {
    return rc;
  }
  if (int rc = s.Call("GET", base + "/grants", &grants); rc != kExitOk) {
    return rc;
  }
  if (int rc = s.Call("GET", base + "/logs", &logs); rc != kExitOk) {
    return rc;
  }
  json doc{{"backup", backup},
           {"grants", grants.value("items", json::array())},
           {"logs", logs.value("items", json::array())}};
  if (s.format() != OutputFormat::kTable) {
    s.Print(doc, {});
    return kExitOk;
  }
  // Names of the referenced objects, when visible ("-" otherwise).
  auto name_of = [&](const std::string& collection, const json& ref_id) -> std::string {
    if (!ref_id.is_number_integer()) {
      return "-";
    }
    json object;
    std::string path = "/api/v1/" + collection + "/" + ref_id.dump();
    s.set_quiet(true);
    int rc = s.Call("GET", path, &object);
    s.set_quiet(false);
    if (rc != kExitOk || !object.is_object() || !object.contains("name")) {
      return "id " + ref_id.dump();
    }
    return object["name"].get<std::string>() + " (id " + ref_id.dump() + ")";
  };
  std::vector<std::pair<std::string, std::string>> lines;
  for (auto [field, collection] :
       {std::pair{"cluster_id", "clusters"}, std::pair{"location_id", "backup-locations"},
        std::pair{"pre_rule_id", "rules"}, std::pair{"post_rule_id", "rules"},
        std::pair{"schedule_policy_id", "schedule-policies"}}) {
    if (backup.contains(field)) {
      backup[field] = name_of(collection, backup[field]);
    }
  }
  Humanize(&backup);
  // The interesting fields first, in this order; the rest alphabetically.
  json ordered = json::array();
  for (const char* k :
       {"name", "id", "state", "reason", "type", "cluster_id", "location_id", "namespaces",
        "label_selector", "pre_rule_id", "post_rule_id", "schedule_policy_id", "bytes_total",
        "bytes_new", "started_at", "finished_at"}) {
    if (backup.contains(k)) {
      ordered.push_back(json::array({k, backup[k]}));
      backup.erase(k);
    }
  }
  for (const auto& [k, v] : backup.items()) {
    ordered.push_back(json::array({k, v}));
  }
  size_t width = 0;
  for (const json& kv : ordered) {
    const std::string k = kv[0].get<std::string>();
    const json& v = kv[1];
    std::string key = k;
    if (key.size() > 3 && key.compare(key.size() - 3, 3, "_id") == 0) {
      key.resize(key.size() - 3);
    }
    std::string value = Scalar(v);
    if (v.is_array()) {
      value.clear();
      for (const json& item : v) {
        value += (value.empty() ? "" : ", ") + Scalar(item);
      }
      value = value.empty() ? "-" : value;
    }
    lines.emplace_back(Capitalized(key), value);
    width = std::max(width, lines.back().first.size());
  }
  for (const auto& [k, v] : lines) {
    std::cout << k << ":" << std::string(width - k.size() + 2, ' ') << v << "\n";
  }
  std::cout << "\nGrants:\n";
  if (doc["grants"].empty()) {
    std::cout << "  (none: only the owner and admins)\n";
  }
  for (const json& gr : doc["grants"]) {
    std::cout << "  " << Scalar(gr.value("id", json())) << "  "
              << Scalar(gr.value("grantee_type", json())) << " "
              << Scalar(gr.value("grantee_id", json())) << "  "
              << Scalar(gr.value("access", json())) << "\n";
  }
  std::cout << "\nLogs:\n";
  if (doc["logs"].empty()) {
    std::cout << "  (none)\n";
  }
  for (const json& line : doc["logs"]) {
    std::cout << "  " << Scalar(line.value("time", json())) << "  "
              << Scalar(line.value("level", json())) << "  "
              << Scalar(line.value("message", json())) << "\n";
  }
  return kExitOk;
}

void AddBackup(CLI::App& app, Action* selected) {
  struct State {
    std::string cluster, location, selector, pre_rule, post_rule, policy, type, state;
    std::vector<std::string> namespaces, labels;
    std::string ref;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "backup";
  spec.help = "Backups: point-in-time copies of namespaces of a cluster (resources + volumes)";
  spec.create_footer =
      "Cluster, location, rules and policy are given by name or id.\n"
      "Examples:\n"
      "  bunkerctl backup create app1 --cluster prod --location nfs1 --namespace app1 "
      "--pre-rule freeze-db\n"
      "  bunkerctl backup create web-nightly --cluster prod --location minio --namespace web \\\n"
      "      --namespace web-db --selector tier=frontend --policy nightly --type incremental\n";
  spec.update_footer =
      "Only the name and labels change after creation.\n"
      "Example:\n"
      "  bunkerctl backup update app1 --label keep=forever\n";
  spec.list_footer =
      "Examples:\n"
      "  bunkerctl backup list --cluster prod --state failed\n"
      "  bunkerctl backup list --limit 20 -o json\n";
  spec.add_flags = [st](CLI::App* c, bool create) {
    if (create) {
      c->add_option("--cluster", st->cluster, "Cluster to back up (name or id)");
      c->add_option("--location", st->location, "Backup location to write to (name or id)");
      c->add_option("--namespace", st->namespaces, "Namespace to back up (repeat for several)");
      c->add_option("--selector", st->selector, "Only resources matching this label selector");
      c->add_option("--pre-rule", st->pre_rule, "Rule run before the backup (name or id)");
      c->add_option("--post-rule", st->post_rule, "Rule run after the backup (name or id)");
      c->add_option("--policy", st->policy, "Schedule policy (name or id)");
      c->add_option("--type", st->type, "full or incremental (default full)")
          ->check(CLI::IsMember({"full", "incremental"}));
    }
    c->add_option("--label", st->labels, "Label KEY=VALUE (repeat for several)");
  };
  spec.fill = [st](Session& s, json* body, bool create) {
    if (!st->labels.empty()) {
      json labels;
      if (int rc = KeyValues(st->labels, "--label", &labels); rc != kExitOk) {
        return rc;
      }
      (*body)["labels"] = labels;
    }
    if (!create) {
      return kExitOk;
    }
    for (auto [ref, noun, field] : {std::tuple{&st->cluster, "cluster", "cluster_id"},
                                    std::tuple{&st->location, "location", "location_id"},
                                    std::tuple{&st->pre_rule, "rule", "pre_rule_id"},
                                    std::tuple{&st->post_rule, "rule", "post_rule_id"},
                                    std::tuple{&st->policy, "policy", "schedule_policy_id"}}) {
      if (int rc = ResolveInto(s, noun, *ref, field, body); rc != kExitOk) {
        return rc;
      }
    }
    if (!st->namespaces.empty()) {
      (*body)["namespaces"] = st->namespaces;
    }
    if (!st->selector.empty()) {
      (*body)["label_selector"] = st->selector;
    }
    if (!st->type.empty()) {
      (*body)["type"] = st->type;
    }
    return kExitOk;
  };
  spec.add_list_flags = [st](CLI::App* c) {
    c->add_option("--cluster", st->cluster, "Only backups of this cluster");
    c->add_option("--location", st->location, "Only backups in this location");
    c->add_option("--state", st->state, "Only backups in this state (pending, running, …)");
  };
  spec.list_query = [st](Session& s, std::string* query) {
    json ids = json::object();
    if (int rc = ResolveInto(s, "cluster", st->cluster, "cluster_id", &ids); rc != kExitOk) {
      return rc;
    }
    if (int rc = ResolveInto(s, "location", st->location, "location_id", &ids); rc != kExitOk) {
      return rc;
    }
    for (const auto& [k, v] : ids.items()) {
      *query += "&" + k + "=" + v.dump();
    }
    if (!st->state.empty()) {
      *query += "&state=" + QueryEscape(st->state);
    }
    return kExitOk;
  };
  CLI::App* noun = AddNoun(app, selected, spec);

  CLI::App* describe =
      noun->add_subcommand("describe", "Show a backup with its grants and its log");
  describe->add_option("backup", st->ref, "Name or id")->required();
  describe->callback([=] { *selected = [=](Session& s) { return DescribeBackup(s, st->ref); }; });

  CLI::App* logs = noun->add_subcommand("logs", "Show a backup's log");
  logs->add_option("backup", st->ref, "Name or id")->required();
  logs->callback([=] {
    *selected = [=](Session& s) {
      int64_t id = 0;
      if (int rc = s.Resolve(Res("backup"), st->ref, &id); rc != kExitOk) {
        return rc;
      }
      json reply;
      if (int rc = s.Call("GET", "/api/v1/backups/" + std::to_string(id) + "/logs", &reply);
          rc != kExitOk) {
        return rc;
      }
      if (s.format() != OutputFormat::kTable) {
        s.Print(reply, {});
        return kExitOk;
      }
      for (const json& line : reply.value("items", json::array())) {
        std::cout << Scalar(line.value("time", json())) << "  "
                  << Scalar(line.value("level", json())) << "  "
                  << Scalar(line.value("message", json())) << "\n";
      }
      return kExitOk;
    };
  });
}

// --- restores ---

void AddRestore(CLI::App& app, Action* selected) {
  struct State {
    std::string backup, cluster, replace_policy, state;
    std::vector<std::string> namespaces, map_ns, map_sc, map_project, labels;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "restore";
  spec.help = "Restores: recreate a backup's resources and volumes on a cluster";
  spec.create_footer =
      "Default restore: the backup's namespaces, same names. Custom: pick namespaces, map them.\n"
      "Examples:\n"
      "  bunkerctl restore create r1 --backup app1 --cluster dr --map-namespace app1=app1-dr "
      "--map-storage-class fast=standard\n"
      "  bunkerctl restore create r2 --backup app1 --cluster prod --namespace app1 "
      "--replace-policy replace\n";
  spec.update_footer =
      "Only the name and labels change after creation.\n"
      "Example:\n"
      "  bunkerctl restore update r1 --label ticket=INC-42\n";
  spec.add_flags = [st](CLI::App* c, bool create) {
    if (create) {
      c->add_option("--backup", st->backup, "Backup to restore from (name or id)");
      c->add_option("--cluster", st->cluster, "Cluster to restore to (name or id)");
      c->add_option("--namespace", st->namespaces,
                    "Restore only this namespace of the backup (repeat for several)");
      c->add_option("--map-namespace", st->map_ns, "FROM=TO: restore namespace FROM as TO");
      c->add_option("--map-storage-class", st->map_sc,
                    "FROM=TO: volumes of storage class FROM get class TO");
      c->add_option("--map-project", st->map_project, "FROM=TO: Rancher project mapping");
      c->add_option("--replace-policy", st->replace_policy,
                    "Objects that already exist: retain (default) or replace")
          ->check(CLI::IsMember({"retain", "replace"}));
    }
    c->add_option("--label", st->labels, "Label KEY=VALUE (repeat for several)");
  };
  spec.fill = [st](Session& s, json* body, bool create) {
    if (!st->labels.empty()) {
      json labels;
      if (int rc = KeyValues(st->labels, "--label", &labels); rc != kExitOk) {
        return rc;
      }
      (*body)["labels"] = labels;
    }
    if (!create) {
      return kExitOk;
    }
    if (int rc = ResolveInto(s, "backup", st->backup, "backup_id", body); rc != kExitOk) {
      return rc;
    }
    if (int rc = ResolveInto(s, "cluster", st->cluster, "cluster_id", body); rc != kExitOk) {
      return rc;
    }
    if (!st->namespaces.empty()) {
      (*body)["namespaces"] = st->namespaces;
    }
    for (auto [items, field, flag] :
         {std::tuple{&st->map_ns, "namespace_mapping", "--map-namespace"},
          std::tuple{&st->map_sc, "storage_class_mapping", "--map-storage-class"},
          std::tuple{&st->map_project, "project_mapping", "--map-project"}}) {
      if (items->empty()) {
        continue;
      }
      json mapping;
      if (int rc = KeyValues(*items, flag, &mapping); rc != kExitOk) {
        return rc;
      }
      (*body)[field] = mapping;
    }
    if (!st->replace_policy.empty()) {
      (*body)["replace_policy"] = st->replace_policy;
    }
    return kExitOk;
  };
  spec.add_list_flags = [st](CLI::App* c) {
    c->add_option("--backup", st->backup, "Only restores of this backup");
    c->add_option("--cluster", st->cluster, "Only restores to this cluster");
    c->add_option("--state", st->state, "Only restores in this state");
  };
  spec.list_query = [st](Session& s, std::string* query) {
    json ids = json::object();
    if (int rc = ResolveInto(s, "backup", st->backup, "backup_id", &ids); rc != kExitOk) {
      return rc;
    }
    if (int rc = ResolveInto(s, "cluster", st->cluster, "cluster_id", &ids); rc != kExitOk) {
      return rc;
    }
    for (const auto& [k, v] : ids.items()) {
      *query += "&" + k + "=" + v.dump();
    }
    if (!st->state.empty()) {
      *query += "&state=" + QueryEscape(st->state);
    }
    return kExitOk;
  };
  AddNoun(app, selected, spec);
}

// --- users and groups ---

void AddUser(CLI::App& app, Action* selected) {
  struct State {
    std::string role;
    std::string password_file;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "user";
  spec.help = "Users (admins manage all; a user sees and updates itself)";
  spec.create_footer =
      "The password is read from --password-file, else from stdin.\n"
      "Examples:\n"
      "  bunkerctl user create alice --password-file alice.pw\n"
      "  printf '%s\\n' \"$PW\" | bunkerctl user create ops --role admin\n";
  spec.update_footer =
      "Examples:\n"
      "  bunkerctl user update alice --role admin\n"
      "  bunkerctl user update me --password-file new.pw   # your own password\n";
  spec.add_flags = [st](CLI::App* c, bool) {
    c->add_option("--role", st->role, "admin or user (default user)")
        ->check(CLI::IsMember({"admin", "user"}));
    c->add_option("--password-file", st->password_file, "File with the password; - for stdin");
  };
  spec.fill = [st](Session&, json* body, bool create) {
    if (!st->role.empty()) {
      (*body)["role"] = st->role;
    }
    std::string file = st->password_file;
    if (file.empty() && create && !body->contains("password")) {
      file = "-";
    }
    if (!file.empty()) {
      std::string password;
      if (int rc = ReadSecretFlag(file, true, "--password-file", &password); rc != kExitOk) {
        return rc;
      }
      (*body)["password"] = password;
    }
    return kExitOk;
  };
  AddNoun(app, selected, spec);
}

// Adds (or removes) users to a group by name or id.
int ChangeMembers(Session& s, const std::string& group_ref, const std::vector<std::string>& users,
                  bool add, json* group) {
  int64_t gid = 0;
  if (int rc = s.Resolve(Res("group"), group_ref, &gid); rc != kExitOk) {
    return rc;
  }
  const std::string base = "/api/v1/groups/" + std::to_string(gid) + "/members";
  for (const std::string& user : users) {
    int64_t uid = 0;
    if (int rc = s.Resolve(Res("user"), user, &uid); rc != kExitOk) {
      return rc;
    }
    json reply;
    int rc = add ? s.Call("POST", base, json{{"user_id", uid}}, &reply)
                 : s.Call("DELETE", base + "/" + std::to_string(uid), &reply);
    if (rc != kExitOk) {
      return rc;
    }
  }
  return s.Call("GET", "/api/v1/groups/" + std::to_string(gid), group);
}

void AddGroup(CLI::App& app, Action* selected) {
  struct State {
    std::vector<std::string> members;
    std::string group;
    std::vector<std::string> users;
  };
  auto st = std::make_shared<State>();
  NounSpec spec;
  spec.noun = "group";
  spec.help = "Groups of users, to grant access to many at once (admin)";
  spec.create_footer =
      "Examples:\n"
      "  bunkerctl group create dba --member alice --member bob\n"
      "  bunkerctl grant create --resource location/nfs1 --group dba --access READ\n";
  spec.add_flags = [st](CLI::App* c, bool create) {
    if (create) {
      c->add_option("--member", st->members, "User (name or id) to add (repeat for several)");
    }
  };
  spec.after_create = [st](Session& s, json* created) {
    if (st->members.empty()) {
      return kExitOk;
    }
    return ChangeMembers(s, created->value("id", json(0)).dump(), st->members, true, created);
  };
  CLI::App* noun = AddNoun(app, selected, spec);
  for (bool add : {true, false}) {
    CLI::App* c = noun->add_subcommand(add ? "add-member" : "remove-member",
                                       add ? "Add users to a group" : "Remove users from a group");
    c->add_option("group", st->group, "Group name or id")->required();
    c->add_option("users", st->users, "User names or ids")->required();
    c->callback([=] {
      *selected = [=](Session& s) {
        json group;
        if (int rc = ChangeMembers(s, st->group, st->users, add, &group); rc != kExitOk) {
          return rc;
        }
        s.Print(group, Res("group").columns);
        return kExitOk;
      };
    });
  }
}

// --- grants ---

// "location/nfs1" → the resource and the object's id.
int ResolveGrantTarget(Session& s, const std::string& target, const Resource** res, int64_t* id) {
  size_t slash = target.find('/');
  if (slash == std::string::npos) {
    return Session::Fail("--resource \"" + target + "\": expected KIND/NAME, e.g. location/nfs1",
                         kExitUsage);
  }
  std::string kind = target.substr(0, slash);
  *res = nullptr;
  for (const Resource& r : AllResources()) {
    if (r.ownable && (r.noun == kind || r.collection == kind || r.collection == kind + "s" ||
                      (r.noun == "location" && kind == "backup-location") ||
                      (r.noun == "policy" && kind == "schedule-policy"))) {
      *res = &r;
    }
  }
  if (*res == nullptr) {
    return Session::Fail("--resource \"" + target +
                             "\": KIND must be cluster, location, policy, rule, backup or restore",
                         kExitUsage);
  }
  return s.Resolve(**res, target.substr(slash + 1), id);
}

const std::vector<std::string> kGrantColumns = {"id", "grantee_type", "grantee_id", "access",
                                                "created_at"};

void AddGrant(CLI::App& app, Action* selected) {
  struct State {
    std::string resource, user, group, access;
    std::vector<std::string> ids;
  };
  auto st = std::make_shared<State>();
  CLI::App* grant =
      app.add_subcommand("grant", "Share objects you own: READ (view, restore from) or FULL");
  grant->require_subcommand(1);
  grant->footer(
      "KIND/NAME names the object: cluster/prod, location/nfs1, policy/nightly, rule/freeze-db,\n"
      "backup/app1, restore/r1 (a name or an id).\n"
      "Examples:\n"
      "  bunkerctl grant create --resource location/nfs1 --user alice --access READ\n"
      "  bunkerctl grant create --resource backup/app1 --group dba --access FULL\n"
      "  bunkerctl grant list --resource location/nfs1\n"
      "  bunkerctl grant delete --resource location/nfs1 3\n");
  auto target = [st](CLI::App* c) {
    c->add_option("--resource,-r", st->resource, "KIND/NAME of the object")->required();
  };
  CLI::App* create = grant->add_subcommand("create", "Grant a user or a group access (alias: add)");
  create->alias("add");
  target(create);
  create->add_option("--user", st->user, "User (name or id)");
  create->add_option("--group", st->group, "Group (name or id)");
  create->add_option("--access", st->access, "READ or FULL")
      ->required()
      ->transform(CLI::IsMember({"READ", "FULL"}, CLI::ignore_case));
  create->callback([=] {
    *selected = [=](Session& s) {
      if (st->user.empty() == st->group.empty()) {
        return Session::Fail("give exactly one of --user or --group", kExitUsage);
      }
      const Resource* res = nullptr;
      int64_t id = 0;
      if (int rc = ResolveGrantTarget(s, st->resource, &res, &id); rc != kExitOk) {
        return rc;
      }
      json body{{"access", st->access}};
      const bool to_user = !st->user.empty();
      const std::string& grantee = to_user ? st->user : st->group;
      // Only admins may list users and groups: others name the grantee and
      // bunkerd resolves it.
      s.set_quiet(true);
      int64_t grantee_id = 0;
      int rc = s.Resolve(Res(to_user ? "user" : "group"), grantee, &grantee_id);
      s.set_quiet(false);
      if (rc == kExitOk) {
        body[to_user ? "user_id" : "group_id"] = grantee_id;
      } else if (rc == kExitForbidden) {
        body["grantee_type"] = to_user ? "user" : "group";
        body["grantee"] = grantee;
      } else {
        return rc == kExitNotFound ? Session::Fail(std::string(to_user ? "user" : "group") + " \"" +
                                                       grantee + "\" not found",
                                                   kExitNotFound)
                                   : s.Resolve(Res(to_user ? "user" : "group"), grantee,
                                               &grantee_id);  // again, to print why
      }
      json created;
      if (int rc =
              s.Call("POST", "/api/v1/" + res->collection + "/" + std::to_string(id) + "/grants",
                     body, &created);
          rc != kExitOk) {
        return rc;
      }
      s.Print(created, kGrantColumns);
      return kExitOk;
    };
  });
  CLI::App* list = grant->add_subcommand("list", "List an object's grants");
  target(list);
  list->callback([=] {
    *selected = [=](Session& s) {
      const Resource* res = nullptr;
      int64_t id = 0;
      if (int rc = ResolveGrantTarget(s, st->resource, &res, &id); rc != kExitOk) {
        return rc;
      }
      json items;
      if (int rc = s.ListAll(res->collection + "/" + std::to_string(id) + "/grants", "", 0, &items);
          rc != kExitOk) {
        return rc;
      }
      s.Print(json{{"items", items}}, kGrantColumns);
      return kExitOk;
    };
  });
  CLI::App* del = grant->add_subcommand("delete", "Revoke grants by id (see grant list)");
  target(del);
  del->add_option("grant", st->ids, "Grant ids")->required();
  del->callback([=] {
    *selected = [=](Session& s) {
      const Resource* res = nullptr;
      int64_t id = 0;
      if (int rc = ResolveGrantTarget(s, st->resource, &res, &id); rc != kExitOk) {
        return rc;
      }
      for (const std::string& gid : st->ids) {
        if (gid.empty() || gid.find_first_not_of("0123456789") != std::string::npos) {
          return Session::Fail("grant id \"" + gid + "\" is not a number (see grant list)",
                               kExitUsage);
        }
        json ignored;
        if (int rc =
                s.Call("DELETE",
                       "/api/v1/" + res->collection + "/" + std::to_string(id) + "/grants/" + gid,
                       &ignored);
            rc != kExitOk) {
          return rc;
        }
        if (s.format() == OutputFormat::kTable) {
          std::cout << "grant " << gid << " on " << st->resource << " deleted\n";
        }
      }
      return kExitOk;
    };
  });
}

}  // namespace

void AddCommands(CLI::App& app, Action* selected) {
  AddLogin(app, selected);
  AddCluster(app, selected);
  AddLocation(app, selected);
  AddPolicy(app, selected);
  AddRule(app, selected);
  AddBackup(app, selected);
  AddRestore(app, selected);
  AddUser(app, selected);
  AddGroup(app, selected);
  AddGrant(app, selected);
}

}  // namespace bunker::bunkerctl
