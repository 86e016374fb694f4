#include "nodeagent/core/backend/nfs_backend.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <new>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nodeagent/core/util/failpoint.h"

namespace bunker::backend {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kTempPrefix = ".tmp-";
constexpr int kFileMode = 0600;
constexpr int kDirMode = 0700;
constexpr int kMaxConnections = 64;
// Larger than any object the repository writes; a server claiming more is
// refused rather than trusted with an allocation.
constexpr uint64_t kMaxObjectSize = uint64_t{16} << 30;
constexpr milliseconds kFirstBackoff{50};
constexpr milliseconds kMaxBackoff{2000};

// Same rules as the file backend: relative, no empty, "." or ".." component,
// no component that looks like a temporary file, no NUL.
Status ValidateName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') {
    return InvalidArgument("invalid object name \"" + std::string(name) + "\"");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) {
      end = name.size();
    }
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.starts_with(kTempPrefix) ||
        part.find('\0') != std::string_view::npos) {
      return InvalidArgument("invalid object name \"" + std::string(name) + "\"");
    }
    start = end + 1;
  }
  return Status::Ok();
}

// Unique among writers on every host with overwhelming probability.
std::string TempName() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(kTempPrefix) + buf;
}

Result<int> ParseInt(std::string_view text, int lo, int hi, std::string_view what) {
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    return InvalidArgument(std::string(what) + "=" + std::string(text) + ": expected a number " +
                           std::to_string(lo) + "…" + std::to_string(hi));
  }
  return v;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    if (end > start) {
      parts.emplace_back(path.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

std::string JoinPath(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    out += "/" + parts[i];
  }
  return out;
}

// `child` inside directory `dir` (an absolute path within the mount).
std::string ChildPath(const std::string& dir, std::string_view child) {
  return (dir == "/" ? std::string() : dir) + "/" + std::string(child);
}

// mkdir -p within the mount ("/a/b/c"); directories made by others meanwhile
// are fine.
Status MakeDirs(NfsConnection& conn, const std::string& dir) {
  if (dir.empty() || dir == "/") {
    return Status::Ok();
  }
  Status st = conn.Mkdir(dir, kDirMode);
  if (st.ok() || st.code() == Code::kAlreadyExists) {
    return Status::Ok();
  }
  if (st.code() != Code::kNotFound) {
    return st;
  }
  RETURN_IF_ERROR(MakeDirs(conn, dir.substr(0, dir.rfind('/'))));
  st = conn.Mkdir(dir, kDirMode);
  return st.code() == Code::kAlreadyExists ? Status::Ok() : st;
}

}  // namespace

Result<std::unique_ptr<Backend>> NfsBackend::Open(std::string_view url, bool create,
                                                  const NfsBackendOptions& options) {
  ASSIGN_OR_RETURN(LocationUrl loc, ParseLocationUrl(url));
  if (loc.scheme != "nfs") {
    return InvalidArgument("not an nfs:// URL: " + std::string(url));
  }
  const std::string host =
      loc.host.find(':') == std::string::npos ? loc.host : "[" + loc.host + "]";
  std::string describe =
      "nfs://" + host + (loc.port != 0 ? ":" + std::to_string(loc.port) : "") + loc.path;
  auto bad = [&](const std::string& why) {
    return InvalidArgument("repository URL \"" + describe + "\": " + why);
  };

  NfsBackendOptions opt = options;
  std::vector<std::string> libnfs_options;
  bool have_version = false;
  bool have_nfsport = false;
  size_t start = 0;
  const std::string& q = loc.query;
  while (start < q.size()) {
    size_t end = q.find('&', start);
    if (end == std::string::npos) {
      end = q.size();
    }
    const std::string item = q.substr(start, end - start);
    start = end + 1;
    if (item.empty()) {
      continue;
    }
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "version") {
      if (value != "3") {
        return bad("version=" + value + ": only NFSv3 is supported (version=3)");
      }
      have_version = true;
      libnfs_options.push_back(item);
    } else if (key == "connections") {
      ASSIGN_OR_RETURN(opt.connections, ParseInt(value, 1, kMaxConnections, key));
    } else if (key == "timeout") {
      ASSIGN_OR_RETURN(int seconds, ParseInt(value, 1, 3600, key));
      opt.rpc_timeout = std::chrono::seconds(seconds);
    } else if (key == "autoreconnect" || key == "dircache") {
      return bad(key +
                 "= is managed by bunker (reconnection is done per operation, and "
                 "directory caching would hide other writers' objects)");
    } else {
      if (key == "nfsport") {
        have_nfsport = true;
      }
      libnfs_options.push_back(item);  // nfsport, mountport, uid, gid, …: libnfs's
    }
  }
  if (!have_version) {
    libnfs_options.insert(libnfs_options.begin(), "version=3");
  }
  if (loc.port != 0 && !have_nfsport) {
    libnfs_options.push_back("nfsport=" + std::to_string(loc.port));
  }
  opt.connections = std::clamp(opt.connections, 1, kMaxConnections);

  const std::vector<std::string> parts = SplitPath(loc.path);
  for (const std::string& p : parts) {
    if (p == "." || p == "..") {
      return bad("the path may not contain \".\" or \"..\"");
    }
  }
  if (parts.empty()) {
    return bad("missing export path: nfs://host/export/path");
  }

  NfsMountSpec spec;
  spec.server = loc.host;
  for (const std::string& o : libnfs_options) {
    spec.libnfs_options += (spec.libnfs_options.empty() ? "" : "&") + o;
  }
  spec.rpc_timeout = opt.rpc_timeout;
  spec.io_size = std::max<uint64_t>(4096, opt.io_size);
  spec.io_depth = std::max(1, opt.io_depth);
  spec.describe = describe;

  // Mount the deepest directory of the path the server accepts. A server may
  // refuse a sub-directory mount, or answer "permission denied" for a
  // directory that does not exist yet (nfs-ganesha does): walk up.
  std::unique_ptr<NfsConnection> first;
  std::string root;
  Status first_error;
  for (size_t n = parts.size(); n >= 1 && first == nullptr; --n) {
    spec.export_path = JoinPath(parts, 0, n);
    ASSIGN_OR_RETURN(std::unique_ptr<NfsConnection> conn, NfsConnection::Start(spec));
    Status st = conn->Mount();
    if (st.ok()) {
      first = std::move(conn);
      root = JoinPath(parts, n, parts.size());
      break;
    }
    if (first_error.ok()) {
      first_error = st;
    }
    if (st.code() != Code::kPermissionDenied && st.code() != Code::kNotFound) {
      return st.Annotate(describe + ": open");  // unreachable server, bad options, …
    }
  }
  if (first == nullptr) {
    return first_error.Annotate(describe + ": open: the server let no directory of " + loc.path +
                                " be mounted");
  }

  if (!root.empty()) {
    Result<NfsAttr> attr = first->Stat(root);
    if (attr.ok() && !attr->is_dir) {
      return bad(root + " under export " + spec.export_path + " is not a directory");
    }
    if (!attr.ok() && attr.status().code() != Code::kNotFound) {
      return attr.status().Annotated(describe + ": open");
    }
    if (!attr.ok()) {
      if (!create) {
        return NotFound(describe + ": the repository directory " + loc.path +
                        " does not exist on NFS server " + loc.host);
      }
      RETURN_IF_ERROR_CTX(MakeDirs(*first, root), describe + ": create");
    }
  }

  std::unique_ptr<NfsBackend> backend(new NfsBackend(describe, root, opt));
  backend->connections_.push_back(std::move(first));
  for (int i = 1; i < opt.connections; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<NfsConnection> conn, NfsConnection::Start(spec));
    backend->connections_.push_back(std::move(conn));
  }
  return std::unique_ptr<Backend>(std::move(backend));
}

NfsBackend::~NfsBackend() = default;

uint64_t NfsBackend::MountCount() const {
  uint64_t n = 0;
  for (const auto& c : connections_) {
    n += c->mounts();
  }
  return n;
}

std::string NfsBackend::PathOf(std::string_view name) const {
  return root_ + "/" + std::string(name);
}

NfsConnection& NfsBackend::Pick() {
  const size_t n = connections_.size();
  const size_t start = static_cast<size_t>(next_.fetch_add(1, std::memory_order_relaxed) % n);
  size_t best = start;
  int best_load = connections_[start]->load();
  for (size_t i = 1; i < n && best_load > 0; ++i) {
    const size_t idx = (start + i) % n;
    const int load = connections_[idx]->load();
    if (load < best_load) {
      best = idx;
      best_load = load;
    }
  }
  return *connections_[best];
}

Status NfsBackend::WithRetry(std::string_view what, std::string_view name,
                             const std::function<Status(NfsConnection&)>& op) {
  const auto started = Clock::now();
  const auto deadline = started + options_.retry_window;
  milliseconds backoff = kFirstBackoff;
  for (int attempt = 1;; ++attempt) {
    Status st = op(Pick());
    if (st.ok()) {
      return st;
    }
    std::string context = describe_ + ": " + std::string(what);
    if (!name.empty()) {
      context += " " + std::string(name);
    }
    if (st.code() != Code::kUnavailable) {
      return st.Annotate(context);
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - started).count();
      char took[64];
      std::snprintf(took, sizeof(took), " (gave up after %d attempt%s in %.1f s)", attempt,
                    attempt == 1 ? "" : "s", static_cast<double>(elapsed) / 1000.0);
      return st.Annotate(context + took);
    }
    // The last attempt is made at the deadline.
    std::this_thread::sleep_for(
        std::min<Clock::duration>(backoff, deadline - now + milliseconds(1)));
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

Status NfsBackend::Put(std::string_view name, ByteSpan data) {
  RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  const std::string dir = path.substr(0, path.rfind('/'));
  // Temporary files of failed attempts that could not be removed then (the
  // connection was down); removed by the next attempt.
  std::vector<std::string> leftovers;
  return WithRetry("put", name, [&](NfsConnection& conn) -> Status {
    for (auto it = leftovers.begin(); it != leftovers.end();) {
      Status gone = conn.Unlink(*it);
      it = gone.ok() || gone.code() == Code::kNotFound ? leftovers.erase(it) : it + 1;
    }
    const std::string tmp = dir + "/" + TempName();
    Result<NfsFile> file = conn.Create(tmp, kFileMode);
    if (file.status().code() == Code::kNotFound) {
      RETURN_IF_ERROR(MakeDirs(conn, dir));
      file = conn.Create(tmp, kFileMode);
    }
    if (!file.ok()) {
      return file.status();
    }
    Status st = conn.Write(*file, 0, data);
    if (st.ok()) {
      st = conn.Fsync(*file);
    }
    conn.Close(*file);
    if (st.ok()) {
      st = Failpoint("nfs.put.before_rename");
    }
    if (st.ok()) {
      st = conn.Rename(tmp, path);
    }
    if (!st.ok()) {
      Status gone = conn.Unlink(tmp);
      if (!gone.ok() && gone.code() != Code::kNotFound) {
        leftovers.push_back(tmp);
      }
    }
    return st;
  });
}

Result<Bytes> NfsBackend::Get(std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  Bytes out;
  Status st = WithRetry("get", name, [&](NfsConnection& conn) -> Status {
    ASSIGN_OR_RETURN(NfsFile file, conn.OpenForRead(path));
    Result<NfsAttr> attr = conn.Fstat(file);
    if (!attr.ok()) {
      conn.Close(file);
      return attr.status();
    }
    if (attr->size > kMaxObjectSize) {
      conn.Close(file);
      return Corruption("the server reports a size of " + std::to_string(attr->size) +
                        " bytes, more than any object");
    }
    try {
      out.resize(attr->size);
    } catch (const std::bad_alloc&) {
      conn.Close(file);
      return IOError("out of memory for " + std::to_string(attr->size) + " bytes");
    }
    Result<uint64_t> n = conn.Read(file, 0, out);
    conn.Close(file);
    if (!n.ok()) {
      return n.status();
    }
    out.resize(*n);
    return Status::Ok();
  });
  if (!st.ok()) {
    return st;
  }
  return out;
}

Result<Bytes> NfsBackend::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  Bytes out;
  RETURN_IF_ERROR(GetRangeInto(name, offset, length, &out));
  return out;
}

Status NfsBackend::GetRangeInto(std::string_view name, uint64_t offset, uint64_t length,
                                Bytes* out) {
  RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  try {
    out->resize(length);
  } catch (const std::bad_alloc&) {
    return IOError(describe_ + ": get " + std::string(name) + ": out of memory for " +
                   std::to_string(length) + " bytes");
  }
  return WithRetry("get", name, [&](NfsConnection& conn) -> Status {
    ASSIGN_OR_RETURN(NfsFile file, conn.OpenForRead(path));
    Result<uint64_t> n = conn.Read(file, offset, *out);
    conn.Close(file);
    if (!n.ok()) {
      return n.status();
    }
    if (*n < length) {
      return Corruption("object is shorter than expected: wanted bytes " + std::to_string(offset) +
                        "+" + std::to_string(length) + ", object ends at " +
                        std::to_string(offset + *n));
    }
    return Status::Ok();
  });
}

Result<ObjectInfo> NfsBackend::Stat(std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  NfsAttr attr;
  RETURN_IF_ERROR(WithRetry("stat", name, [&](NfsConnection& conn) -> Status {
    ASSIGN_OR_RETURN(attr, conn.Stat(path));
    if (!attr.is_regular) {
      return NotFound(path + " is not a file");
    }
    return Status::Ok();
  }));
  return ObjectInfo{std::string(name), attr.size, attr.mtime_unix};
}

Status NfsBackend::Delete(std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  return WithRetry("delete", name, [&](NfsConnection& conn) -> Status {
    Status st = conn.Unlink(path);
    return st.code() == Code::kNotFound ? Status::Ok() : st;  // deleted already
  });
}

Status NfsBackend::List(std::string_view prefix,
                        const std::function<Status(const ObjectInfo&)>& visit) {
  // As in the file backend: "data/" walks data/, "" walks everything, and a
  // prefix that is not a directory filters the walk of its parent directory.
  std::string p(prefix);
  while (!p.empty() && p.back() == '/') {
    p.pop_back();
  }
  const std::string root = root_.empty() ? "/" : root_;
  if (p.empty()) {
    return Walk(root, "", "", visit);
  }
  RETURN_IF_ERROR(ValidateName(p));
  NfsAttr attr;
  Status st = WithRetry("list", prefix, [&](NfsConnection& conn) -> Status {
    ASSIGN_OR_RETURN(attr, conn.Stat(PathOf(p)));
    return Status::Ok();
  });
  if (st.ok() && attr.is_dir) {
    return Walk(PathOf(p), p, "", visit);
  }
  if (!st.ok() && st.code() != Code::kNotFound) {
    return st;
  }
  const size_t slash = p.rfind('/');
  const std::string parent = slash == std::string::npos ? "" : p.substr(0, slash);
  return Walk(parent.empty() ? root : PathOf(parent), parent, prefix, visit);
}

Result<uint64_t> NfsBackend::RemoveStaleTemporaries(int64_t older_than_unix) {
  uint64_t removed = 0;
  std::vector<std::string> dirs = {root_.empty() ? "/" : root_};
  while (!dirs.empty()) {
    const std::string dir = std::move(dirs.back());
    dirs.pop_back();
    std::vector<NfsDirEntry> entries;
    RETURN_IF_ERROR(WithRetry("clean", dir, [&](NfsConnection& conn) -> Status {
      ASSIGN_OR_RETURN(entries, conn.ReadDir(dir));
      return Status::Ok();
    }));
    for (NfsDirEntry& e : entries) {
      if (e.name == "." || e.name == ".." || e.name.find('/') != std::string::npos) continue;
      const std::string path = ChildPath(dir, e.name);
      if (!e.attr_known) {
        Result<NfsAttr> attr = NotFound("");
        RETURN_IF_ERROR(WithRetry("clean", path, [&](NfsConnection& conn) -> Status {
          attr = conn.Stat(path);
          return attr.ok() || attr.status().code() == Code::kNotFound ? Status::Ok()
                                                                      : attr.status();
        }));
        if (!attr.ok()) continue;
        e.attr = *attr;
      }
      if (e.attr.is_dir) {
        dirs.push_back(path);
      } else if (std::string_view(e.name).starts_with(kTempPrefix) &&
                 e.attr.mtime_unix < older_than_unix) {
        Status st =
            WithRetry("clean", path, [&](NfsConnection& conn) { return conn.Unlink(path); });
        if (st.ok()) ++removed;
      }
    }
  }
  return removed;
}

Status NfsBackend::Walk(const std::string& dir, const std::string& rel, std::string_view prefix,
                        const std::function<Status(const ObjectInfo&)>& visit) {
  std::vector<NfsDirEntry> entries;
  Status st = WithRetry("list", rel.empty() ? std::string_view("/") : std::string_view(rel),
                        [&](NfsConnection& conn) -> Status {
                          ASSIGN_OR_RETURN(entries, conn.ReadDir(dir));
                          return Status::Ok();
                        });
  if (!st.ok()) {
    // A sub-directory removed while listing has no objects left to visit; the
    // repository directory itself missing is an error, never an empty list.
    return st.code() == Code::kNotFound && !rel.empty() ? Status::Ok() : st;
  }
  std::sort(entries.begin(), entries.end(),
            [](const NfsDirEntry& a, const NfsDirEntry& b) { return a.name < b.name; });
  std::string last;
  for (NfsDirEntry& e : entries) {
    if (e.name == last || std::string_view(e.name).starts_with(kTempPrefix) ||
        e.name.find('/') != std::string::npos) {
      continue;  // a duplicate from READDIR, a temporary file, or nonsense
    }
    last = e.name;
    const std::string path = ChildPath(dir, e.name);
    const std::string name = rel.empty() ? e.name : rel + "/" + e.name;
    if (!e.attr_known) {
      Result<NfsAttr> attr = NotFound("");
      RETURN_IF_ERROR(WithRetry("list", name, [&](NfsConnection& conn) -> Status {
        attr = conn.Stat(path);
        return attr.ok() || attr.status().code() == Code::kNotFound ? Status::Ok() : attr.status();
      }));
      if (!attr.ok()) {
        continue;  // deleted while listing
      }
      e.attr = *attr;
    }
    if (e.attr.is_dir) {
      const std::string as_dir = name + "/";
      if (prefix.empty() || std::string_view(as_dir).starts_with(prefix)) {
        RETURN_IF_ERROR(Walk(path, name, "", visit));
      } else if (prefix.starts_with(as_dir)) {
        RETURN_IF_ERROR(Walk(path, name, prefix, visit));
      }
      continue;
    }
    if (!e.attr.is_regular || !std::string_view(name).starts_with(prefix)) {
      continue;
    }
    RETURN_IF_ERROR(visit(ObjectInfo{name, e.attr.size, e.attr.mtime_unix}));
  }
  return Status::Ok();
}

}  // namespace bunker::backend
