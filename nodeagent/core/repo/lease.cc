#include "nodeagent/core/repo/lease.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/util/failpoint.h"

namespace bunker::repo {

using nlohmann::json;

namespace {

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Describe(const LeaseInfo& l) {
  return std::string(l.exclusive ? "exclusive"
                     : l.commit  ? "commit"
                                 : "shared") +
         " lease " + l.name + " held by " + l.operation + " (host " + l.host + ", pid " +
         std::to_string(l.pid) + ", expires in " + std::to_string(l.expires - NowUnix()) + " s)";
}

}  // namespace

Lease::Lease(Repository* repo, LeaseInfo info, const LeaseOptions& options)
    : repo_(repo), info_(std::move(info)), options_(options) {}

Lease::~Lease() { Release().IgnoreError(); }

Status Lease::Write() {
  int64_t start = SteadyMs();
  info_.expires = NowUnix() + options_.ttl.count();
  json j = {
      {"holder", info_.holder},       {"host", info_.host},     {"pid", info_.pid},
      {"boot_id", info_.boot_id},     {"pid_ns", info_.pid_ns}, {"operation", info_.operation},
      {"exclusive", info_.exclusive}, {"nonce", nonce_},        {"created", info_.created},
      {"expires", info_.expires}};
  if (info_.commit) j["commit"] = true;
  BlobCodec codec(repo_->key());
  Bytes sealed;
  RETURN_IF_ERROR(codec.Seal(kAadLease, AsBytes(j.dump()), &sealed));
  RETURN_IF_ERROR(Failpoint("lease.before_put"));
  RETURN_IF_ERROR(repo_->backend()->Put(info_.name, sealed).Annotate("write lease " + info_.name));
  // Valid until the expiry we wrote, measured from before the write started,
  // less a margin so the commit check fails before anyone else may take over.
  int64_t margin_ms = std::min<int64_t>(options_.ttl.count() * 1000 / 10, 30000);
  valid_until_ms_ = start + options_.ttl.count() * 1000 - margin_ms;
  return Status::Ok();
}

Result<std::vector<LeaseInfo>> Lease::ListAll(Repository* repo,
                                              std::vector<std::string>* unreadable) {
  std::vector<std::string> names;
  RETURN_IF_ERROR(repo->backend()->List("locks/", [&](const backend::ObjectInfo& info) {
    names.push_back(info.name);
    return Status::Ok();
  }));
  BlobCodec codec(repo->key());
  std::vector<LeaseInfo> out;
  for (const std::string& name : names) {
    Result<Bytes> raw = repo->backend()->Get(name);
    if (!raw.ok()) {
      if (raw.status().code() == Code::kNotFound) continue;  // released meanwhile
      return raw.status();
    }
    Bytes plain;
    json j;
    if (codec.Open(kAadLease, *raw, name, &plain).ok()) {
      j = json::parse(plain.begin(), plain.end(), nullptr, false);
    }
    if (j.is_discarded() || !j.is_object()) {
      if (unreadable) unreadable->push_back(name);
      continue;
    }
    // Fields of the wrong type make the lease unreadable, never an exception;
    // integers must be integers (a float is not cast) within ±2^62.
    LeaseInfo l;
    l.name = name;
    auto str = [&](const char* k, std::string* v) {
      auto it = j.find(k);
      if (it == j.end()) return true;
      if (!it->is_string()) return false;
      *v = it->get<std::string>();
      return true;
    };
    auto num = [&](const char* k, int64_t* v) {
      auto it = j.find(k);
      if (it == j.end()) return true;
      if (!it->is_number_integer()) return false;
      if (it->is_number_unsigned()) {
        uint64_t u = it->get<uint64_t>();
        if (u > (uint64_t{1} << 62)) return false;
        *v = static_cast<int64_t>(u);
      } else {
        *v = it->get<int64_t>();
      }
      return *v >= -(int64_t{1} << 62) && *v <= (int64_t{1} << 62);
    };
    bool good = str("holder", &l.holder) && str("host", &l.host) && str("boot_id", &l.boot_id) &&
                str("pid_ns", &l.pid_ns) && str("operation", &l.operation) && num("pid", &l.pid) &&
                num("created", &l.created) && num("expires", &l.expires);
    auto ex = j.find("exclusive");
    l.exclusive = true;
    if (ex != j.end()) {
      if (ex->is_boolean()) {
        l.exclusive = ex->get<bool>();
      } else {
        good = false;
      }
    }
    if (auto c = j.find("commit"); c != j.end()) {
      if (c->is_boolean()) {
        l.commit = c->get<bool>();
      } else {
        good = false;
      }
    }
    if (!good) {
      if (unreadable) unreadable->push_back(name);
      continue;
    }
    out.push_back(std::move(l));
  }
  return out;
}

bool Lease::IsStale(const LeaseInfo& l, std::chrono::seconds skew) {
  static const LeaseInfo self = LocalIdentity();
  if (l.pid > 0 && l.pid <= std::numeric_limits<pid_t>::max() && !l.boot_id.empty() &&
      l.host == self.host && l.boot_id == self.boot_id && l.pid_ns == self.pid_ns) {
    // A process of this boot and pid namespace: stale exactly when it is gone.
    return ::kill(static_cast<pid_t>(l.pid), 0) != 0 && errno == ESRCH;
  }
  return l.expires + skew.count() < NowUnix();
}

LeaseInfo Lease::LocalIdentity() {
  LeaseInfo l;
  l.host = HostName();
  l.pid = ::getpid();
  if (std::FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char buf[64] = {};
    if (std::fgets(buf, sizeof(buf), f) != nullptr) {
      l.boot_id = buf;
      while (!l.boot_id.empty() && (l.boot_id.back() == '\n' || l.boot_id.back() == ' ')) {
        l.boot_id.pop_back();
      }
    }
    std::fclose(f);
  }
  char ns[128] = {};
  ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
  if (n > 0) l.pid_ns.assign(ns, static_cast<size_t>(n));
  return l;
}

Result<std::unique_ptr<Lease>> Lease::Acquire(Repository* repo, bool exclusive,
                                              const std::string& operation,
                                              const LeaseOptions& options) {
  // A taker that finds a conflicting lease in its first listing refuses. One
  // that finds it only after writing its own met a contest (another taker
  // wrote in the same window): both withdraw and come back after a random
  // pause, so that almost always the first back wins and the other then
  // refuses at its first listing. After three contests it refuses too.
  return Take(repo, exclusive, false, operation, options, 3, std::nullopt);
}

Result<std::unique_ptr<Lease>> Lease::AcquireCommit(Repository* repo, const std::string& operation,
                                                    const LeaseOptions& options,
                                                    std::chrono::milliseconds max_wait) {
  LeaseOptions o = options;
  o.ttl = std::min(o.ttl, std::chrono::seconds(60));
  o.refresh = std::min(o.refresh, std::chrono::seconds(15));
  if (o.refresh >= o.ttl) o.refresh = std::max(std::chrono::seconds(1), o.ttl / 2);
  return Take(repo, false, true, operation, o, 0, std::chrono::steady_clock::now() + max_wait);
}

Result<std::unique_ptr<Lease>> Lease::Take(
    Repository* repo, bool exclusive, bool commit, const std::string& operation,
    const LeaseOptions& options, int attempts,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  auto conflicts = [&](const std::vector<LeaseInfo>& leases, const std::string& own,
                       std::string* who) {
    for (const LeaseInfo& l : leases) {
      if (l.name == own || IsStale(l, options.skew)) continue;
      if (exclusive || l.exclusive || (commit && l.commit)) {
        *who = Describe(l);
        return true;
      }
    }
    return false;
  };
  auto random_ms = [](int lo, int span) -> Result<std::chrono::milliseconds> {
    Bytes r(2);
    RETURN_IF_ERROR(crypto::RandomBytes(r));
    return std::chrono::milliseconds(lo + (r[0] | (r[1] << 8)) % span);
  };
  auto past_deadline = [&] { return !deadline || std::chrono::steady_clock::now() >= *deadline; };
  const auto settle =
      options.settle.count() >= 0 ? options.settle : repo->backend()->ListSettleTime();
  const auto started = std::chrono::steady_clock::now();
  auto waited_s = [&] {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
            .count());
  };
  // Between listings while waiting: 50-250 ms at first, growing to 2-2.2 s,
  // so that many waiters do not keep a remote store busy with listings.
  int wait_ms = 50;
  bool waited = false;  // logged once at info level
  bool warned = false;  // and once more, as a warning, when it lasts
  for (int attempt = 1;; ++attempt) {
    std::vector<std::string> unreadable;
    ASSIGN_OR_RETURN(std::vector<LeaseInfo> before, ListAll(repo, &unreadable));
    std::string who;
    if (conflicts(before, "", &who)) {
      if (past_deadline()) {
        return FailedPrecondition("repository " + repo->backend()->Describe() + " is locked: " +
                                  who + (waited ? " (waited " + waited_s() + " s)" : ""));
      }
      if (!waited) spdlog::info("waiting for {}", who);
      waited = true;
      if (!warned && std::chrono::steady_clock::now() - started >= std::chrono::seconds(5)) {
        spdlog::warn("still waiting for {} ({} s so far)", who, waited_s());
        warned = true;
      }
      ASSIGN_OR_RETURN(std::chrono::milliseconds jitter, random_ms(0, 200));
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms) + jitter);
      wait_ms = std::min(2000, wait_ms * 3 / 2);
      --attempt;  // waiting is not a contest
      continue;
    }
    LeaseInfo info;
    Bytes rnd(16);
    RETURN_IF_ERROR(crypto::RandomBytes(rnd));
    info.name = "locks/" + HexEncode(rnd);
    LeaseInfo self = LocalIdentity();
    info.host = self.host;
    info.boot_id = self.boot_id;
    info.pid_ns = self.pid_ns;
    info.pid = self.pid;
    info.holder = info.host + ":" + std::to_string(info.pid);
    info.operation = operation;
    info.exclusive = exclusive;
    info.commit = commit;
    info.created = NowUnix();
    std::unique_ptr<Lease> lease(new Lease(repo, std::move(info), options));
    Bytes nonce(16);
    RETURN_IF_ERROR(crypto::RandomBytes(nonce));
    lease->nonce_ = HexEncode(nonce);
    RETURN_IF_ERROR(lease->Write());
    std::this_thread::sleep_for(settle);
    Result<std::vector<LeaseInfo>> after = ListAll(repo, nullptr);
    if (!after.ok()) {
      lease->Release().IgnoreError();
      return after.status();
    }
    if (conflicts(*after, lease->info_.name, &who)) {
      lease->Release().IgnoreError();
      if (attempts > 0 ? attempt == attempts : past_deadline()) {
        return FailedPrecondition("repository " + repo->backend()->Describe() +
                                  " is locked: " + who);
      }
      // Commits are short: their contests retry sooner.
      ASSIGN_OR_RETURN(std::chrono::milliseconds jitter,
                       random_ms(commit ? 20 : 50, commit ? 200 : 1000));
      auto pause = settle + jitter;
      spdlog::info("lease contested by {}; trying again in {} ms", who,
                   std::chrono::duration_cast<std::chrono::milliseconds>(pause).count());
      std::this_thread::sleep_for(pause);
      continue;
    }
    // Leases judged stale (expired past the skew allowance, or of a dead
    // process of this boot and pid namespace) are taken over: removed.
    for (const LeaseInfo& l : *after) {
      if (l.name != lease->info_.name && IsStale(l, options.skew)) {
        spdlog::info("removing stale {}", Describe(l));
        repo->backend()->Delete(l.name).IgnoreError();
      }
    }
    lease->refresher_ = std::thread([l = lease.get()] { l->RefreshLoop(); });
    if (waited) spdlog::info("took {} after waiting {} s", lease->info_.name, waited_s());
    return lease;
  }
}

void Lease::RefreshLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, options_.refresh, [this] { return stop_; });
    if (stop_) break;
    if (SteadyMs() >= valid_until_ms_.load()) {
      // Too late: others may already treat the lease as stale and have
      // taken over. Writing it again would only hide that.
      lost_ = true;
      spdlog::warn("lease {} lapsed before it could be refreshed; not renewing it", info_.name);
      break;
    }
    lock.unlock();
    Status st = Write();
    if (!st.ok()) {
      spdlog::warn("could not refresh {}: {}", info_.name, st.ToString());
    }
    lock.lock();
  }
}

Status Lease::CheckValid() const {
  if (released_) return Aborted("lease " + info_.name + " was released");
  if (lost_ || SteadyMs() >= valid_until_ms_.load()) {
    return Aborted("lease lost: " + info_.name +
                   " expired before it could be refreshed (another process may have taken "
                   "over); stopping before the commit point");
  }
  return Status::Ok();
}

LeaseOptions LeaseOptions::FromEnvironment() {
  LeaseOptions o;
  const char* env = std::getenv("BUNKER_TEST_LEASE_TIMING");
  if (env == nullptr || *env == '\0') return o;
  long v[3] = {0, 0, 0};
  char extra = 0;
  if (std::sscanf(env, "%ld,%ld,%ld%c", &v[0], &v[1], &v[2], &extra) != 3 || v[0] < 1 || v[1] < 1 ||
      v[1] >= v[0] || v[2] < 0 || v[0] > 86400 || v[2] > 86400) {
    spdlog::warn(
        "ignoring BUNKER_TEST_LEASE_TIMING=\"{}\" (want ttl,refresh,skew seconds, "
        "refresh < ttl)",
        env);
    return o;
  }
  o.ttl = std::chrono::seconds(v[0]);
  o.refresh = std::chrono::seconds(v[1]);
  o.skew = std::chrono::seconds(v[2]);
  return o;
}

Status Lease::Release() {
  {
    std::lock_guard lock(mu_);
    if (released_) return Status::Ok();
    released_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  return repo_->backend()->Delete(info_.name);
}

}  // namespace bunker::repo
