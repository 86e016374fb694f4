#include "nodeagent/agent/commands.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodeagent/agent/progress_printer.h"
#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/backend/fault_backend.h"
#include "nodeagent/core/backend/probe.h"
#include "nodeagent/core/io/block_io.h"
#include "nodeagent/core/mover/block_backup.h"
#include "nodeagent/core/mover/file_backup.h"
#include "nodeagent/core/mover/file_restore.h"
#include "nodeagent/core/mover/maintenance.h"
#include "nodeagent/core/repo/lease.h"
#include "nodeagent/core/repo/repository.h"

namespace bunker::agent {

using nlohmann::json;

namespace {

int ExitCodeFor(const Status& st) {
  switch (st.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
      return kExitUsage;
    case Code::kPermissionDenied:
      return kExitAuth;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kCorruption:
      return kExitDamaged;
    default:
      return kExitFailure;
  }
}

Status ReadFirstLine(const std::string& path, std::string* out, std::string_view what) {
  std::ifstream f(path);
  if (!f) return ErrnoStatus(std::string(what) + " " + path, errno);
  std::getline(f, *out);
  if (!out->empty() && out->back() == '\r') out->pop_back();
  if (out->empty()) return InvalidArgument(std::string(what) + " " + path + " is empty");
  return Status::Ok();
}

Result<std::string> Password(const GlobalOptions& g) {
  std::string pw;
  if (!g.password_file.empty()) {
    RETURN_IF_ERROR(ReadFirstLine(g.password_file, &pw, "password file"));
    return pw;
  }
  if (const char* env = std::getenv("BUNKER_PASSWORD"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  return InvalidArgument(
      "no repository password: give --password-file FILE or set BUNKER_PASSWORD");
}

Result<std::unique_ptr<backend::Backend>> OpenLocation(const GlobalOptions& g, bool create) {
  if (g.repo.empty()) {
    return InvalidArgument("no repository: give --repo URL or set BUNKER_REPOSITORY");
  }
  backend::BackendOptions opts;
  opts.s3_endpoint = g.s3_endpoint;
  opts.s3_region = g.s3_region;
  opts.s3_ca_file = g.s3_ca_file;
  opts.s3_addressing_style = g.s3_addressing == "path" ? backend::S3AddressingStyle::kPath
                             : g.s3_addressing == "virtual-hosted"
                                 ? backend::S3AddressingStyle::kVirtualHosted
                                 : backend::S3AddressingStyle::kAuto;
  opts.s3_unsigned_payload = g.s3_unsigned_payload;
  ASSIGN_OR_RETURN(std::unique_ptr<backend::Backend> b, backend::OpenBackend(g.repo, opts, create));
  // Tests only: inject storage faults (see fault_backend.h).
  if (const char* faults = std::getenv("BUNKER_FAULTS"); faults != nullptr && *faults != '\0') {
    return backend::FaultBackend::Wrap(std::move(b), faults);
  }
  return b;
}

Result<std::unique_ptr<repo::Repository>> OpenRepo(const GlobalOptions& g) {
  ASSIGN_OR_RETURN(std::string pw, Password(g));
  ASSIGN_OR_RETURN(std::unique_ptr<backend::Backend> b, OpenLocation(g, false));
  return repo::Repository::Open(std::move(b), pw);
}

void PrintJson(const json& j) { std::cout << j.dump(2) << std::endl; }

json SnapshotJson(const repo::ObjectId& id, const repo::Snapshot& s) {
  json j = {{"id", repo::ToHex(id)},
            {"short_id", repo::ShortHex(id)},
            {"volume_id", s.volume_id},
            {"mode", s.mode},
            {"kind", s.kind},
            {"time", s.time},
            {"host", s.host},
            {"tags", s.tags},
            {"parent", s.parent ? json(repo::ToHex(*s.parent)) : json(nullptr)},
            {"size", s.size}};
  const repo::SnapshotStats& st = s.stats;
  j["stats"] = {{"bytes_read", st.bytes_read},           {"bytes_new", st.bytes_new},
                {"bytes_reused", st.bytes_reused},       {"bytes_hole", st.bytes_hole},
                {"bytes_stored", st.bytes_stored},       {"blobs_new", st.blobs_new},
                {"blobs_reused", st.blobs_reused},       {"files_new", st.files_new},
                {"files_unchanged", st.files_unchanged}, {"duration_seconds", st.duration_seconds}};
  return j;
}

Result<std::map<std::string, std::string>> ParseTags(const std::vector<std::string>& tags) {
  std::map<std::string, std::string> out;
  for (const std::string& t : tags) {
    size_t eq = t.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return InvalidArgument("--tag \"" + t + "\": expected key=value");
    }
    out[t.substr(0, eq)] = t.substr(eq + 1);
  }
  return out;
}

Result<io::Engine> Engine(const GlobalOptions& g) { return io::ParseEngine(g.io_engine); }

}  // namespace

int Fail(const GlobalOptions& g, const Status& st) {
  int code = ExitCodeFor(st);
  if (st.code() == Code::kFailedPrecondition &&
      st.message().find("is locked") != std::string::npos) {
    code = kExitLocked;
  }
  if (g.json) {
    json j = {{"error", {{"code", std::string(CodeName(st.code()))}, {"message", st.message()}}}};
    std::cout << j.dump(2) << std::endl;
  }
  std::cerr << "bunker-agent: " << st.message() << std::endl;
  return code;
}

int CmdInit(const GlobalOptions& g, const InitArgs& a) {
  Result<std::string> pw = Password(g);
  if (!pw.ok()) return Fail(g, pw.status());
  Result<std::unique_ptr<backend::Backend>> b = OpenLocation(g, true);
  if (!b.ok()) return Fail(g, b.status());
  repo::InitOptions opts;
  opts.block_size = a.block_size;
  Status st = repo::Repository::Init(b->get(), *pw, opts);
  if (!st.ok()) return Fail(g, st);
  if (g.json) {
    PrintJson({{"repository", (*b)->Describe()}, {"created", true}});
  } else {
    std::cout << "created repository at " << (*b)->Describe() << "\n"
              << "Keep the password safe: without it the backups cannot be restored.\n";
  }
  return kExitOk;
}

int CmdProbe(const GlobalOptions& g) {
  Result<std::unique_ptr<backend::Backend>> b = OpenLocation(g, false);
  if (!b.ok()) return Fail(g, b.status());
  Status st = backend::ProbeBackend(b->get());
  if (!st.ok()) return Fail(g, st);
  if (g.json) {
    PrintJson({{"location", (*b)->Describe()}, {"ok", true}});
  } else {
    std::cout << "probe of " << (*b)->Describe()
              << ": write, read, list and delete of a probe object all work\n";
  }
  return kExitOk;
}

int CmdKeyAdd(const GlobalOptions& g, const KeyAddArgs& a) {
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  std::string pw;
  if (!a.new_password_file.empty()) {
    Status st = ReadFirstLine(a.new_password_file, &pw, "new password file");
    if (!st.ok()) return Fail(g, st);
  } else if (const char* env = std::getenv("BUNKER_NEW_PASSWORD")) {
    pw = env;
  } else {
    return Fail(g,
                InvalidArgument(
                    "no new password: give --new-password-file FILE or set BUNKER_NEW_PASSWORD"));
  }
  Result<repo::ObjectId> id = (*r)->AddKey(pw, a.label);
  if (!id.ok()) return Fail(g, id.status());
  if (g.json) {
    PrintJson({{"key_id", repo::ToHex(*id)}});
  } else {
    std::cout << "added key " << repo::ShortHex(*id) << "\n";
  }
  return kExitOk;
}

int CmdKeyList(const GlobalOptions& g) {
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  auto keys = (*r)->ListKeys();
  if (!keys.ok()) return Fail(g, keys.status());
  if (g.json) {
    json arr = json::array();
    for (const auto& k : *keys) {
      arr.push_back({{"id", repo::ToHex(k.id)},
                     {"created", k.created},
                     {"host", k.host},
                     {"user", k.user},
                     {"label", k.label},
                     {"current", k.current}});
    }
    PrintJson({{"keys", arr}});
    return kExitOk;
  }
  std::printf("%-3s %-14s %-26s %-16s %-12s %s\n", "", "ID", "CREATED", "HOST", "USER", "LABEL");
  for (const auto& k : *keys) {
    std::printf("%-3s %-14s %-26s %-16s %-12s %s\n", k.current ? "*" : "",
                repo::ShortHex(k.id).c_str(), k.created.c_str(), k.host.c_str(), k.user.c_str(),
                k.label.c_str());
  }
  return kExitOk;
}

int CmdKeyRemove(const GlobalOptions& g, const std::string& id) {
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  Status st = (*r)->RemoveKey(id);
  if (!st.ok()) return Fail(g, st);
  if (g.json) {
    PrintJson({{"removed", id}});
  } else {
    std::cout << "removed key " << id << "\n";
  }
  return kExitOk;
}

int CmdBackup(const GlobalOptions& g, const BackupArgs& a) {
  auto tags = ParseTags(a.tags);
  if (!tags.ok()) return Fail(g, tags.status());
  auto engine = Engine(g);
  if (!engine.ok()) return Fail(g, engine.status());
  if (a.full && !a.parent.empty()) {
    return Fail(g, InvalidArgument("--full and --parent exclude each other"));
  }
  struct stat st;
  if (::stat(a.volume.c_str(), &st) != 0) {
    return Fail(g, ErrnoStatus("volume " + a.volume, errno));
  }
  std::string mode = a.mode;
  if (mode.empty()) mode = S_ISDIR(st.st_mode) ? "file" : "block";
  if (mode != "block" && mode != "file") {
    return Fail(g, InvalidArgument("--mode must be block or file, not \"" + mode + "\""));
  }
  if (mode == "block" && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Fail(g, InvalidArgument("volume " + a.volume +
                                   " is neither a block device nor an image file (use --mode "
                                   "file for a directory)"));
  }
  if (mode == "file" && !S_ISDIR(st.st_mode)) {
    return Fail(g, InvalidArgument("volume " + a.volume + " is not a directory (file mode)"));
  }
  // A block backup's memory is faulted in while the key is derived (scrypt,
  // one core): its page faults are otherwise serial steps of their own.
  std::unique_ptr<mover::BlockBackupBuffers> buffers;
  if (mode == "block") buffers = std::make_unique<mover::BlockBackupBuffers>(a.workers);
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  repo::Repository* repo = r->get();
  std::optional<repo::ObjectId> parent;
  if (!a.parent.empty()) {
    auto p = repo->FindSnapshot(a.parent, "");
    if (!p.ok()) return Fail(g, p.status().Annotated("--parent"));
    parent = p->id;
  }
  auto lease = repo::Lease::Acquire(repo, false, "backup " + a.volume,
                                    repo::LeaseOptions::FromEnvironment());
  if (!lease.ok()) return Fail(g, lease.status());
  Status loaded = repo->LoadIndex();
  if (!loaded.ok()) return Fail(g, loaded.Annotated("load index"));

  mover::Progress progress;
  Result<mover::BackupResult> res = Status(Code::kInternal, "unset");
  {
    ProgressPrinter printer(&progress, "backup", g.json);
    if (mode == "block") {
      mover::BlockBackupOptions o;
      o.volume_path = a.volume;
      o.volume_id = a.volume_id;
      o.tags = *tags;
      o.full = a.full;
      o.parent = parent;
      o.read.engine = *engine;
      o.direct = a.direct == "on"    ? mover::BlockBackupOptions::Direct::kOn
                 : a.direct == "off" ? mover::BlockBackupOptions::Direct::kOff
                                     : mover::BlockBackupOptions::Direct::kAuto;
      o.workers = a.workers;
      o.verify_before_upload = a.verify_before_upload;
      o.progress = &progress;
      res = mover::BackupBlockVolume(repo, lease->get(), o, buffers.get());
    } else {
      mover::FileBackupOptions o;
      o.root = a.volume;
      o.volume_id = a.volume_id;
      o.tags = *tags;
      o.full = a.full;
      o.parent = parent;
      o.workers = a.workers;
      o.verify_before_upload = a.verify_before_upload;
      o.progress = &progress;
      res = mover::BackupFileTree(repo, lease->get(), o);
    }
  }
  if (!res.ok()) return Fail(g, res.status().Annotated("backup of " + a.volume));
  Status released = (*lease)->Release();
  const repo::Snapshot& s = res->snapshot;
  if (g.json) {
    json j = SnapshotJson(res->snapshot_id, s);
    j["io_engine"] = res->io_engine;
    PrintJson(j);
  } else {
    double secs = s.stats.duration_seconds;
    std::printf("snapshot %s saved (%s backup of %s, %s mode)\n",
                repo::ShortHex(res->snapshot_id).c_str(), s.kind.c_str(), s.volume_id.c_str(),
                s.mode.c_str());
    std::printf("  read %s in %.2f s (%s/s), new %s, reused %s, holes %s, stored %s\n",
                HumanBytes(s.stats.bytes_read).c_str(), secs,
                HumanBytes(secs > 0 ? static_cast<uint64_t>(s.stats.bytes_read / secs) : 0).c_str(),
                HumanBytes(s.stats.bytes_new).c_str(), HumanBytes(s.stats.bytes_reused).c_str(),
                HumanBytes(s.stats.bytes_hole).c_str(), HumanBytes(s.stats.bytes_stored).c_str());
  }
  if (!released.ok()) std::cerr << "bunker-agent: warning: " << released.message() << std::endl;
  return kExitOk;
}

// A target that does not exist yet is restored under a staging name beside it
// and renamed into place only once the restore has succeeded (and is on
// disk), so a restore that is killed leaves nothing that could be mistaken
// for a complete volume or tree: only ".<name>.bunker-restore-<pid>-<random>".
// (The random part keeps a retry whose pid repeats — small pids in a
// container — away from a killed run's leftover.)
constexpr std::string_view kStagingInfix = ".bunker-restore-";

std::filesystem::path StagingBase(const std::string& target) {
  std::filesystem::path t(target);
  while (t.has_relative_path() && t.filename().empty()) t = t.parent_path();  // "dir/" -> "dir"
  // The name is cut so that the dot, the infix, pid and random part fit NAME_MAX (255).
  return t.parent_path() /
         ("." + t.filename().string().substr(0, 200) + std::string(kStagingInfix));
}

std::string StagingPathFor(const std::string& target) {
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "%d-%08x", static_cast<int>(::getpid()), rd());
  return StagingBase(target).string() + suffix;
}

// Staging paths of earlier restores of `target` that were killed: reported,
// never deleted (they may still be wanted).
std::vector<std::string> LeftoverStaging(const std::string& target) {
  std::vector<std::string> out;
  const std::filesystem::path base = StagingBase(target);
  const std::string prefix = base.filename().string();
  const std::filesystem::path dir = base.has_parent_path() ? base.parent_path() : ".";
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with(prefix)) out.push_back(it->path().string());
  }
  return out;
}

// Moves the finished restore into place without replacing anything that
// appeared at `target` meanwhile, and makes the rename durable.
Status MoveIntoPlace(const std::string& staging, const std::string& target) {
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    if (err == EEXIST) {
      return AlreadyExists("target " + target +
                           " appeared while restoring; the restored data is left in " + staging);
    }
    if (err != EINVAL && err != ENOSYS) {
      return ErrnoStatus("rename " + staging + " to " + target, err);
    }
    // A file system without RENAME_NOREPLACE: check, then rename.
    struct stat st;
    if (::lstat(target.c_str(), &st) == 0) {
      return AlreadyExists("target " + target +
                           " appeared while restoring; the restored data is left in " + staging);
    }
    if (::rename(staging.c_str(), target.c_str()) != 0) {
      return ErrnoStatus("rename " + staging + " to " + target, errno);
    }
  }
  // The directory both names are in (the staging path's is normalised: a
  // target "tree/" has its parent in the staging path, not in "tree/").
  std::string dir = std::filesystem::path(staging).parent_path().string();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);  // best effort: the data itself is already synced
    ::close(fd);
  }
  return Status::Ok();
}

int CmdRestore(const GlobalOptions& g, const RestoreArgs& a) {
  if (a.target.empty()) return Fail(g, InvalidArgument("--target is required"));
  auto engine = Engine(g);
  if (!engine.ok()) return Fail(g, engine.status());
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  repo::Repository* repo = r->get();
  auto snap = repo->FindSnapshot(a.snapshot, a.volume_id);
  if (!snap.ok()) return Fail(g, snap.status());
  struct stat st;
  bool existed = ::lstat(a.target.c_str(), &st) == 0;
  if (existed && !a.overwrite) {
    return Fail(g, AlreadyExists("target " + a.target +
                                 " exists; pass --overwrite to replace its contents"));
  }
  if (!existed && snap->snapshot.mode == "block") {
    // So that NotFound below can only mean data missing from the repository.
    std::string parent = std::filesystem::path(a.target).parent_path().string();
    if (!parent.empty() && ::stat(parent.c_str(), &st) != 0) {
      return Fail(g, ErrnoStatus("directory of target " + a.target, errno));
    }
  }
  auto lease = repo::Lease::Acquire(repo, false, "restore to " + a.target,
                                    repo::LeaseOptions::FromEnvironment());
  if (!lease.ok()) return Fail(g, lease.status());
  Status loaded = repo->LoadIndex();
  if (!loaded.ok()) return Fail(g, loaded.Annotated("load index"));
  mover::Progress progress;
  mover::SpecialSkipped skipped;
  Result<mover::RestoreResult> res = Status(Code::kInternal, "unset");
  const std::string write_to = existed ? a.target : StagingPathFor(a.target);
  if (!existed) {
    if (::lstat(write_to.c_str(), &st) == 0) {  // never touch what this run did not create
      return Fail(g, AlreadyExists("staging path " + write_to + " exists; restore again"));
    }
    for (const std::string& left : LeftoverStaging(a.target)) {
      std::cerr << "bunker-agent: warning: " << left
                << " is left from an interrupted restore to the same target; delete it when it is "
                   "no longer needed"
                << std::endl;
    }
  }
  {
    ProgressPrinter printer(&progress, "restore", g.json);
    if (snap->snapshot.mode == "block") {
      mover::BlockRestoreOptions o;
      o.target = write_to;
      o.overwrite = existed && a.overwrite;  // a staging path is always new
      o.write.engine = *engine;
      o.workers = a.workers;
      o.progress = &progress;
      res = mover::RestoreBlockVolume(repo, snap->snapshot, o);
    } else {
      mover::FileRestoreOptions o;
      o.target = write_to;
      o.overwrite = existed && a.overwrite;  // a staging path is always new
      o.allow_special = a.allow_special;
      o.workers = a.workers;
      o.progress = &progress;
      res = mover::RestoreFileTree(repo, snap->snapshot, o, &skipped);
    }
  }
  if (!res.ok()) {
    Status st = res.status();
    // The snapshot exists, so an object that is not found is data missing
    // from the repository: "damaged or missing data", not "not found".
    if (st.code() == Code::kNotFound) st = Corruption("missing data: " + st.message());
    st.Annotate("restore of snapshot " + repo::ShortHex(snap->id));
    if (!existed) {
      // Leave nothing that could be mistaken for a complete restore. The
      // staging path is this restore's alone.
      std::error_code ec;
      if (snap->snapshot.mode == "block" ? ::unlink(write_to.c_str()) == 0
                                         : std::filesystem::remove_all(write_to, ec) > 0) {
        st.Annotate("removed the incomplete restore " + write_to);
      }
    }
    return Fail(g, st);
  }
  if (snap->snapshot.mode == "file") {
    // Block restores fdatasync their target; a tree is made durable with one
    // syncfs of its file system (cheaper than an fsync per file).
    int fd = ::open(write_to.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::syncfs(fd) != 0) {
      Status st = ErrnoStatus("sync the restored tree " + write_to, errno);
      if (fd >= 0) ::close(fd);
      return Fail(g, st.Annotated("restore of snapshot " + repo::ShortHex(snap->id)));
    }
    ::close(fd);
  }
  if (!existed) {
    Status moved = MoveIntoPlace(write_to, a.target);
    if (!moved.ok())
      return Fail(g, moved.Annotated("restore of snapshot " + repo::ShortHex(snap->id)));
  }
  (*lease)->Release().IgnoreError();
  if (g.json) {
    json j = {{"snapshot", SnapshotJson(snap->id, snap->snapshot)},
              {"target", a.target},
              {"bytes_written", res->bytes_written},
              {"bytes_hole", res->bytes_hole},
              {"blobs_fetched", res->blobs_fetched},
              {"io_engine", res->io_engine}};
    if (snap->snapshot.mode == "file") {
      j["special_skipped"] = {{"device_nodes", skipped.device_nodes},
                              {"setid_bits", skipped.setid_bits}};
    }
    PrintJson(j);
  } else {
    std::printf("restored snapshot %s (%s, %s) to %s: %s written, %s holes left sparse\n",
                repo::ShortHex(snap->id).c_str(), snap->snapshot.volume_id.c_str(),
                snap->snapshot.time.c_str(), a.target.c_str(),
                HumanBytes(res->bytes_written).c_str(), HumanBytes(res->bytes_hole).c_str());
    if (skipped.device_nodes > 0 || skipped.setid_bits > 0) {
      std::printf(
          "  held back: %llu device nodes not created, setuid/setgid bits dropped from %llu "
          "entries (--allow-special, as root, restores them)\n",
          static_cast<unsigned long long>(skipped.device_nodes),
          static_cast<unsigned long long>(skipped.setid_bits));
    }
  }
  return kExitOk;
}

int CmdSnapshots(const GlobalOptions& g, const std::string& volume_id) {
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  std::vector<repo::Repository::DamagedSnapshot> damaged;
  auto snaps = (*r)->ListSnapshots(&damaged);
  if (!snaps.ok()) return Fail(g, snaps.status());
  for (const auto& d : damaged) {
    std::cerr << "bunker-agent: warning: snapshot " << repo::ShortHex(d.id)
              << " is damaged and not listed (run check): " << d.status.message() << std::endl;
  }
  if (g.json) {
    json arr = json::array(), bad = json::array();
    for (const auto& s : *snaps) {
      if (!volume_id.empty() && s.snapshot.volume_id != volume_id) continue;
      arr.push_back(SnapshotJson(s.id, s.snapshot));
    }
    for (const auto& d : damaged) {
      bad.push_back({{"id", repo::ToHex(d.id)}, {"error", d.status.message()}});
    }
    PrintJson({{"snapshots", arr}, {"damaged", bad}});
    return kExitOk;
  }
  std::printf("%-14s %-25s %-6s %-12s %-12s %-12s %s\n", "ID", "TIME", "MODE", "KIND", "SIZE",
              "NEW", "VOLUME");
  for (const auto& s : *snaps) {
    if (!volume_id.empty() && s.snapshot.volume_id != volume_id) continue;
    const auto& sn = s.snapshot;
    std::printf("%-14s %-25s %-6s %-12s %-12s %-12s %s\n", repo::ShortHex(s.id).c_str(),
                sn.time.c_str(), sn.mode.c_str(), sn.kind.c_str(), HumanBytes(sn.size).c_str(),
                HumanBytes(sn.stats.bytes_new).c_str(), sn.volume_id.c_str());
  }
  return kExitOk;
}

int CmdCheck(const GlobalOptions& g, const CheckArgs& a) {
  mover::CheckOptions o;
  o.read_data = a.read_data || !a.read_data_subset.empty();
  if (!a.read_data_subset.empty()) {
    std::string s = a.read_data_subset;
    unsigned n = 0, t = 0;
    char extra = 0;
    if (std::sscanf(s.c_str(), "%u/%u%c", &n, &t, &extra) == 2) {
      if (t == 0 || t > 1u << 20 || n < 1 || n > t) {
        return Fail(g, InvalidArgument("--read-data-subset n/t wants 1 <= n <= t, like 3/7"));
      }
      o.read_data_slice = n;
      o.read_data_slices = t;
    } else {
      if (!s.empty() && s.back() == '%') s.pop_back();
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0' || v <= 0 || v > 100) {
        return Fail(g, InvalidArgument(
                           "--read-data-subset wants a percentage like 10% or a slice like 3/7"));
      }
      o.read_data_percent = v;
    }
  }
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  auto lease =
      repo::Lease::Acquire(r->get(), false, "check", repo::LeaseOptions::FromEnvironment());
  if (!lease.ok()) return Fail(g, lease.status());
  mover::Progress progress;
  o.progress = &progress;
  Result<mover::CheckReport> rep = Status(Code::kInternal, "unset");
  {
    ProgressPrinter printer(&progress, "check", g.json);
    rep = mover::Check(r->get(), o);
  }
  if (!rep.ok()) return Fail(g, rep.status());
  if (g.json) {
    json probs = json::array();
    for (const auto& p : rep->problems) {
      probs.push_back({{"kind", p.kind},
                       {"object", p.object},
                       {"detail", p.detail},
                       {"snapshots", p.snapshots}});
    }
    PrintJson({{"healthy", rep->healthy()},
               {"snapshots", rep->snapshots},
               {"index_files", rep->index_files},
               {"packs", rep->packs},
               {"blobs", rep->blobs},
               {"packs_read", rep->packs_read},
               {"bytes_read", rep->bytes_read},
               {"problems", probs}});
  } else {
    std::printf("checked %llu snapshots, %llu index files, %llu packs, %llu blobs",
                static_cast<unsigned long long>(rep->snapshots),
                static_cast<unsigned long long>(rep->index_files),
                static_cast<unsigned long long>(rep->packs),
                static_cast<unsigned long long>(rep->blobs));
    if (o.read_data) {
      std::printf("; read %llu packs (%s)", static_cast<unsigned long long>(rep->packs_read),
                  HumanBytes(rep->bytes_read).c_str());
    }
    std::printf("\n");
    for (const auto& p : rep->problems) {
      std::printf("%s: %s: %s\n", p.kind.c_str(), p.object.c_str(), p.detail.c_str());
      for (const auto& s : p.snapshots) std::printf("  affects snapshot %s\n", s.c_str());
    }
    std::printf(rep->healthy() ? "no errors\n" : "the repository is damaged\n");
  }
  if (!rep->healthy()) {
    std::cerr << "bunker-agent: check found damaged or missing objects" << std::endl;
    return kExitDamaged;
  }
  return kExitOk;
}

int CmdPrune(const GlobalOptions& g, const PruneArgs& a);

int CmdForget(const GlobalOptions& g, const ForgetArgs& a) {
  // A policy or a list (both at once: the parser's excludes() refuses it;
  // mover::Forget refuses --keep-last 0 for every volume: a script's empty
  // $KEEP is 0).
  if (a.keep_last < 0 && a.snapshots.empty()) {
    return Fail(g, InvalidArgument("give --keep-last N (keep the N newest snapshots per volume) "
                                   "or --snapshot ID (remove that one)"));
  }
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  auto lease =
      repo::Lease::Acquire(r->get(), true, "forget", repo::LeaseOptions::FromEnvironment());
  if (!lease.ok()) return Fail(g, lease.status());
  mover::ForgetOptions o;
  o.keep_last = a.keep_last;
  o.snapshots = a.snapshots;
  o.volume_id = a.volume_id;
  o.dry_run = a.dry_run;
  auto rep = mover::Forget(r->get(), lease->get(), o);
  if (!rep.ok()) return Fail(g, rep.status());
  if (g.json) {
    json kept = json::array(), removed = json::array();
    for (const auto& s : rep->kept) kept.push_back(SnapshotJson(s.id, s.snapshot));
    for (const auto& s : rep->removed) removed.push_back(SnapshotJson(s.id, s.snapshot));
    json removed_damaged = json::array();
    for (const auto& id : rep->removed_damaged) removed_damaged.push_back(repo::ToHex(id));
    PrintJson({{"kept", kept},
               {"removed", removed},
               {"removed_damaged", removed_damaged},
               {"dry_run", a.dry_run}});
  } else {
    for (const auto& s : rep->removed) {
      std::printf("%s snapshot %s %s %s\n", a.dry_run ? "would remove" : "removed",
                  repo::ShortHex(s.id).c_str(), s.snapshot.volume_id.c_str(),
                  s.snapshot.time.c_str());
    }
    for (const auto& id : rep->removed_damaged) {
      std::printf("%s damaged snapshot %s\n", a.dry_run ? "would remove" : "removed",
                  repo::ShortHex(id).c_str());
    }
    std::printf("kept %zu snapshots, %s %zu\n", rep->kept.size(),
                a.dry_run ? "would remove" : "removed",
                rep->removed.size() + rep->removed_damaged.size());
  }
  return kExitOk;
}

int CmdPrune(const GlobalOptions& g, const PruneArgs& a) {
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  auto lease = repo::Lease::Acquire(r->get(), true, "prune", repo::LeaseOptions::FromEnvironment());
  if (!lease.ok()) return Fail(g, lease.status());
  mover::PruneOptions o;
  o.dry_run = a.dry_run;
  auto rep = mover::Prune(r->get(), lease->get(), o);
  if (!rep.ok()) return Fail(g, rep.status());
  if (g.json) {
    PrintJson({{"dry_run", a.dry_run},
               {"packs_total", rep->packs_total},
               {"packs_deleted", rep->packs_deleted},
               {"packs_repacked", rep->packs_repacked},
               {"packs_unreferenced_deleted", rep->packs_unreferenced_deleted},
               {"packs_written", rep->packs_written},
               {"blobs_kept", rep->blobs_kept},
               {"blobs_removed", rep->blobs_removed},
               {"bytes_before", rep->bytes_before},
               {"bytes_after", rep->bytes_after},
               {"index_files_replaced", rep->index_files_replaced},
               {"temporaries_removed", rep->temporaries_removed}});
  } else {
    std::printf(
        "%s: %llu of %llu packs deleted, %llu repacked into %llu, %llu unreferenced "
        "deleted; blobs kept %llu, removed %llu\n",
        a.dry_run ? "prune (dry run)" : "prune",
        static_cast<unsigned long long>(rep->packs_deleted),
        static_cast<unsigned long long>(rep->packs_total),
        static_cast<unsigned long long>(rep->packs_repacked),
        static_cast<unsigned long long>(rep->packs_written),
        static_cast<unsigned long long>(rep->packs_unreferenced_deleted),
        static_cast<unsigned long long>(rep->blobs_kept),
        static_cast<unsigned long long>(rep->blobs_removed));
  }
  return kExitOk;
}

int CmdStats(const GlobalOptions& g) {
  auto r = OpenRepo(g);
  if (!r.ok()) return Fail(g, r.status());
  auto st = mover::Stats(r->get());
  if (!st.ok()) return Fail(g, st.status());
  double ratio = st->stored_bytes ? static_cast<double>(st->logical_bytes) / st->stored_bytes : 0;
  if (g.json) {
    PrintJson({{"snapshots", st->snapshots},
               {"volumes", st->volumes},
               {"packs", st->packs},
               {"blobs", st->blobs},
               {"stored_bytes", st->stored_bytes},
               {"unique_raw_bytes", st->unique_raw_bytes},
               {"logical_bytes", st->logical_bytes},
               {"space_saving_ratio", ratio}});
  } else {
    std::printf("snapshots %llu (%llu volumes), packs %llu, blobs %llu\n",
                static_cast<unsigned long long>(st->snapshots),
                static_cast<unsigned long long>(st->volumes),
                static_cast<unsigned long long>(st->packs),
                static_cast<unsigned long long>(st->blobs));
    std::printf("logical %s, unique %s, stored %s (%.2fx smaller than the volumes)\n",
                HumanBytes(st->logical_bytes).c_str(), HumanBytes(st->unique_raw_bytes).c_str(),
                HumanBytes(st->stored_bytes).c_str(), ratio);
  }
  return kExitOk;
}

}  // namespace bunker::agent
