#include "nodeagent/core/backend/nfs_connection.h"

// clang-format off
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw-nfs.h>  // NF3REG, NF3DIR (needs libnfs.h first)
// clang-format on
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "nodeagent/core/util/log.h"

namespace bunker::backend {

namespace {

using Clock = std::chrono::steady_clock;

// How long poll() sleeps at most: libnfs handles RPC timeouts only inside
// nfs_service, so it is called at least this often.
constexpr int kPollIntervalMs = 100;
// A call with no answer this long after its RPC timeout means libnfs lost it;
// the connection is torn down so that its caller is not left waiting.
constexpr auto kWatchdogMargin = std::chrono::seconds(5);
// When the server reports no rtmax/wtmax (0), the NFSv3 minimum every server
// supports comfortably.
constexpr uint64_t kFallbackIoSize = 64 * 1024;

// libnfs passes the error text as `data` when err < 0.
std::string CallMessage(int err, void* data) {
  if (err < 0 && data != nullptr) {
    return static_cast<const char*>(data);
  }
  return std::strerror(err < 0 ? -err : err);
}

NfsAttr AttrFromStat(const nfs_stat_64& st) {
  NfsAttr a;
  a.size = st.nfs_size;
  a.mtime_unix = static_cast<int64_t>(st.nfs_mtime);
  a.is_dir = S_ISDIR(st.nfs_mode);
  a.is_regular = S_ISREG(st.nfs_mode);
  return a;
}

void IgnoreCallback(int, nfs_context*, void*, void*) {}

}  // namespace

bool IsNfsConnectionError(int err) {
  switch (err < 0 ? -err : err) {
    case EINTR:         // libnfs: RPC timed out, or cancelled by a teardown
    case EFAULT:        // libnfs: RPC-level failure (socket error, bad reply)
    case ECONNREFUSED:  //
    case ECONNRESET:    //
    case ECONNABORTED:  //
    case EPIPE:         //
    case ENOTCONN:      // this file: no connection / torn down
    case ETIMEDOUT:     //
    case EHOSTUNREACH:  //
    case ENETUNREACH:   //
      return true;
    default:
      return false;
  }
}

namespace {

// Retryable without a new connection: the handle of a file replaced meanwhile
// (NFS3ERR_STALE), or a server asking to try again (NFS3ERR_JUKEBOX).
bool IsNfsTransientError(int err) {
  const int e = err < 0 ? -err : err;
  return e == ESTALE || e == EAGAIN;
}

}  // namespace

Status NfsErrorStatus(const NfsMountSpec& spec, std::string_view what, int err,
                      std::string_view message) {
  const int e = err < 0 ? -err : err;
  std::string text = std::string(what) + ": " + std::string(message);
  switch (e) {
    case ENOENT:
      return NotFound(std::move(text));
    case EACCES:
    case EPERM:
      return PermissionDenied(text + " (NFS server " + spec.server + " denied access to export " +
                              spec.export_path +
                              "; check the export's client rules, its Access_Type and root "
                              "squashing, and the ownership of the repository directory)");
    case EEXIST:
      return AlreadyExists(std::move(text));
    default:
      break;
  }
  if (IsNfsConnectionError(e)) {
    return Unavailable(text + " (no working connection to NFS server " + spec.server + ", export " +
                       spec.export_path + ")");
  }
  if (IsNfsTransientError(e)) {
    return Unavailable(text + " (NFS server " + spec.server + ", export " + spec.export_path + ")");
  }
  return IOError(std::move(text));
}

// ---------------------------------------------------------------------------
// IoLoop: the I/O thread and everything only it touches.

class NfsConnection::IoLoop {
 public:
  // Called with the libnfs result: err < 0 is -errno with the message in
  // `data`; otherwise `data` is the call's result (see libnfs.h).
  using CallDone = std::function<void(int err, void* data)>;
  using CallStart = std::function<int(nfs_context* ctx, nfs_cb cb, void* private_data)>;

  struct Task {
    std::function<void()> start;         // on the I/O thread, once mounted
    std::function<void(Status)> cancel;  // when it will never start
    // False for operations on an open file: they must not wait for (or cause)
    // a new mount, since a file of an older mount is stale anyway.
    bool needs_mount = true;
  };

  IoLoop(const NfsMountSpec& spec, std::atomic<uint64_t>* mounts) : spec_(spec), mounts_(mounts) {}

  ~IoLoop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    Wake();
    if (thread_.joinable()) {
      thread_.join();
    }
    if (closer_ != nullptr) {
      nfs_destroy_context(closer_);
    }
    if (event_fd_ >= 0) {
      ::close(event_fd_);
    }
  }

  Status Start() {
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) {
      return ErrnoStatus("eventfd for the NFS I/O thread", errno);
    }
    closer_ = nfs_init_context();
    if (closer_ == nullptr) {
      return Internal("nfs_init_context failed (out of memory?)");
    }
    thread_ = std::thread([this] { Loop(); });
    return Status::Ok();
  }

  // Any thread.
  void Submit(Task task) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) {
        lock.unlock();
        task.cancel(Aborted(spec_.describe + ": the NFS connection is closed"));
        return;
      }
      queue_.push_back(std::move(task));
    }
    Wake();
  }

  // ---- I/O thread only below.

  // Queues one libnfs call on the mounted context. `done` runs exactly once on
  // the I/O thread: with the reply, an error, a timeout, or when the context is
  // torn down. When the connection is not usable, it runs before Issue returns.
  void Issue(const CallStart& start, CallDone done) {
    if (state_ != State::kReady || ctx_ == nullptr || tearing_down_) {
      done(-ENOTCONN, const_cast<char*>(not_connected_.c_str()));
      return;
    }
    IssueRaw(start, std::move(done));
  }

  // True if `file` was opened on the current mount.
  bool IsCurrent(const NfsFile& file) const {
    return file.fh != nullptr && file.generation == generation_ && state_ == State::kReady;
  }
  Status StaleHandle() const {
    return Unavailable(spec_.describe + ": the NFS connection was reset while the file was open (" +
                       not_connected_ + ")");
  }
  void AddHandle(::nfsfh* fh) { handles_.insert(fh); }
  void CloseHandle(const NfsFile& file) {
    if (!IsCurrent(file)) {
      return;  // released by the teardown of its mount
    }
    handles_.erase(file.fh);
    nfs_close_async(ctx_, file.fh, IgnoreCallback, nullptr);
  }

  nfs_context* ctx() const { return ctx_; }
  uint64_t generation() const { return generation_; }
  uint64_t read_size() const { return IoSize(read_max_); }
  uint64_t write_size() const { return IoSize(write_max_); }

 private:
  enum class State {
    kIdle,      // no context; the next task mounts
    kMounting,  // MOUNT in flight; tasks wait
    kReady,     // mounted; tasks start at once
    kBroken,    // torn down at the next loop turn; tasks wait
  };

  struct Call {
    IoLoop* loop = nullptr;
    CallDone done;
    Clock::time_point issued;
  };

  uint64_t IoSize(uint64_t server_max) const {
    uint64_t size = server_max == 0 ? kFallbackIoSize : server_max;
    return std::max<uint64_t>(4096, std::min<uint64_t>(size, spec_.io_size));
  }

  void Wake() {
    const uint64_t one = 1;
    ssize_t n = ::write(event_fd_, &one, sizeof(one));
    (void)n;  // EAGAIN: the counter is already non-zero, the loop wakes anyway
  }

  void IssueRaw(const CallStart& start, CallDone done) {
    auto call = std::make_unique<Call>();
    call->loop = this;
    call->done = std::move(done);
    call->issued = Clock::now();
    Call* raw = call.get();
    calls_.emplace(raw, std::move(call));
    if (start(ctx_, &IoLoop::OnCallDone, raw) != 0) {
      // libnfs did not queue it and will not call back.
      auto node = calls_.extract(raw);
      const char* err = nfs_get_error(ctx_);
      std::string message =
          std::string("could not queue the NFS request: ") + (err != nullptr ? err : "unknown");
      node.mapped()->done(-EIO, message.data());
    }
  }

  static void OnCallDone(int err, nfs_context* /*ctx*/, void* data, void* private_data) {
    Call* call = static_cast<Call*>(private_data);
    IoLoop* self = call->loop;
    auto node = self->calls_.extract(call);
    if (node.empty()) {
      return;  // already completed by a teardown sweep
    }
    CallDone done = std::move(node.mapped()->done);
    if (err < 0 && self->tearing_down_) {
      // Cancelled by the teardown: report why the connection went away.
      done(-ENOTCONN, const_cast<char*>(self->not_connected_.c_str()));
      return;
    }
    if (err < 0 && IsNfsConnectionError(err)) {
      self->RequestReset(Unavailable(CallMessage(err, data)));
    }
    done(err, data);
  }

  // Marks the context for teardown at the next loop turn (never inside a
  // libnfs callback, which runs inside nfs_service on that context).
  void RequestReset(Status reason) {
    if (tearing_down_ || state_ == State::kIdle) {
      return;
    }
    if (!reset_requested_) {
      reset_requested_ = true;
      lost_mount_ = state_ == State::kReady;
      reset_reason_ = std::move(reason);
      not_connected_ = "connection lost: " + reset_reason_.message();
    }
    state_ = State::kBroken;
  }

  void Teardown() {
    reset_requested_ = false;
    if (ctx_ == nullptr) {
      state_ = State::kIdle;
      return;
    }
    if (lost_mount_) {
      // A failed MOUNT is reported to its callers; a lost session is news.
      spdlog::warn("{}: NFS connection to {} lost, will reconnect: {}", spec_.describe,
                   spec_.server, reset_reason_.message());
      lost_mount_ = false;
    }
    tearing_down_ = true;
    state_ = State::kBroken;
    std::vector<::nfsfh*> handles(handles_.begin(), handles_.end());
    handles_.clear();
    // Cancels every call in flight; their callbacks run now (OnCallDone).
    nfs_destroy_context(ctx_);
    ctx_ = nullptr;
    // Whatever libnfs did not call back is completed here.
    while (!calls_.empty()) {
      auto node = calls_.extract(calls_.begin());
      node.mapped()->done(-ENOTCONN, const_cast<char*>(not_connected_.c_str()));
    }
    // Handles are freed only now: a cancelled READ/WRITE may still have used
    // them during the destruction above. NFSv3 close is local to libnfs, so a
    // context that was never connected can free them.
    for (::nfsfh* fh : handles) {
      nfs_close_async(closer_, fh, IgnoreCallback, nullptr);
    }
    ++generation_;
    tearing_down_ = false;
    state_ = State::kIdle;
  }

  void BeginMount() {
    ctx_ = nfs_init_context();
    if (ctx_ == nullptr) {
      FailWaiting(Internal("nfs_init_context failed (out of memory?)"));
      return;
    }
    // Options from the URL (ports, uid/gid, …) are applied by libnfs's own
    // parser; reconnection and caching stay under our control.
    // (Only the options are taken from this parse; an IPv6 server, which
    // libnfs's URL parser does not take, is replaced by a placeholder.)
    const std::string server =
        spec_.server.find(':') == std::string::npos ? spec_.server : "ipv6-server";
    std::string url = "nfs://" + server + spec_.export_path +
                      (spec_.libnfs_options.empty() ? std::string() : "?" + spec_.libnfs_options);
    nfs_url* parsed = nfs_parse_url_dir(ctx_, url.c_str());
    if (parsed == nullptr) {
      const char* err = nfs_get_error(ctx_);
      Status st = InvalidArgument(spec_.describe + ": libnfs rejected the URL options: " +
                                  (err != nullptr ? err : "unknown error"));
      nfs_destroy_context(ctx_);
      ctx_ = nullptr;
      FailWaiting(st);
      return;
    }
    nfs_destroy_url(parsed);
    nfs_set_autoreconnect(ctx_, 0);
    nfs_set_dircache(ctx_, 0);
    const auto seconds =
        std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(spec_.rpc_timeout).count());
    nfs_set_timeout(ctx_, static_cast<int>(seconds * 1000));
    state_ = State::kMounting;
    not_connected_ = "not connected";
    IssueRaw(
        [this](nfs_context* ctx, nfs_cb cb, void* priv) {
          return nfs_mount_async(ctx, spec_.server.c_str(), spec_.export_path.c_str(), cb, priv);
        },
        [this](int err, void* data) { OnMounted(err, data); });
  }

  void OnMounted(int err, void* data) {
    if (err != 0) {
      Status st = NfsErrorStatus(spec_, "mount " + spec_.export_path + " from " + spec_.server, err,
                                 CallMessage(err, data));
      RequestReset(st);  // the context is useless now, whatever the reason
      FailWaiting(st);
      return;
    }
    read_max_ = nfs_get_readmax(ctx_);
    write_max_ = nfs_get_writemax(ctx_);
    ++generation_;
    state_ = State::kReady;
    if (mounts_->fetch_add(1) > 0) {
      spdlog::info("{}: reconnected to NFS server {}", spec_.describe, spec_.server);
    }
    std::deque<Task> ready;
    ready.swap(waiting_);
    for (Task& t : ready) {
      Dispatch(std::move(t));
    }
  }

  void FailWaiting(const Status& st) {
    std::deque<Task> failed;
    failed.swap(waiting_);
    for (Task& t : failed) {
      t.cancel(st);
    }
  }

  void Dispatch(Task task) {
    if (state_ == State::kReady || !task.needs_mount) {
      task.start();
    } else {
      waiting_.push_back(std::move(task));
    }
  }

  void Watchdog() {
    const auto limit = Clock::now() - spec_.rpc_timeout - kWatchdogMargin;
    for (const auto& [raw, call] : calls_) {
      if (call->issued < limit) {
        RequestReset(Unavailable("no reply from the NFS server within " +
                                 std::to_string(spec_.rpc_timeout.count()) + " ms"));
        return;
      }
    }
  }

  void Loop() {
    for (;;) {
      std::deque<Task> tasks;
      bool stopping = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        tasks.swap(queue_);
        stopping = stop_;
      }
      for (Task& t : tasks) {
        Dispatch(std::move(t));
      }
      if (stopping) {
        break;
      }
      if (reset_requested_) {
        Teardown();
      }
      if (state_ == State::kIdle && !waiting_.empty()) {
        BeginMount();
      }
      pollfd fds[2] = {{event_fd_, POLLIN, 0}, {-1, 0, 0}};
      int nfds = 1;
      const int fd = ctx_ != nullptr ? nfs_get_fd(ctx_) : -1;
      if (fd >= 0) {
        fds[1] = {fd, static_cast<short>(nfs_which_events(ctx_)), 0};
        nfds = 2;
      }
      const int rc = ::poll(fds, static_cast<nfds_t>(nfds), kPollIntervalMs);
      if (rc < 0 && errno != EINTR) {
        spdlog::error("{}: poll failed: {}", spec_.describe, std::strerror(errno));
      }
      if (rc > 0 && (fds[0].revents & POLLIN) != 0) {
        uint64_t counter = 0;
        ssize_t n = ::read(event_fd_, &counter, sizeof(counter));
        (void)n;
      }
      // Also with no events: libnfs times out RPCs inside nfs_service.
      if (nfds == 2 && ctx_ != nullptr && !reset_requested_) {
        const int revents = rc > 0 ? fds[1].revents : 0;
        if (nfs_service(ctx_, revents) < 0 && ctx_ != nullptr) {
          const char* err = nfs_get_error(ctx_);
          RequestReset(Unavailable(std::string("socket error: ") +
                                   (err != nullptr ? err : "unknown error")));
        }
      }
      Watchdog();
    }
    reset_reason_ = Aborted("the NFS connection is closed");
    not_connected_ = "the NFS connection is closed";
    lost_mount_ = false;
    Teardown();
    FailWaiting(Aborted(spec_.describe + ": the NFS connection is closed"));
  }

  const NfsMountSpec& spec_;
  std::atomic<uint64_t>* const mounts_;
  std::thread thread_;
  int event_fd_ = -1;

  std::mutex mu_;
  std::deque<Task> queue_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_

  // I/O thread only.
  nfs_context* ctx_ = nullptr;
  nfs_context* closer_ = nullptr;  // never connected; frees handles of old mounts
  State state_ = State::kIdle;
  uint64_t generation_ = 0;
  uint64_t read_max_ = 0;
  uint64_t write_max_ = 0;
  std::deque<Task> waiting_;  // tasks that wait for a mount
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;
  std::unordered_set<::nfsfh*> handles_;  // open on the current mount
  bool reset_requested_ = false;
  bool lost_mount_ = false;  // the reset ends a mounted session (worth a warning)
  bool tearing_down_ = false;
  Status reset_reason_;
  std::string not_connected_ = "not connected";
};

// ---------------------------------------------------------------------------
// Pipelined READ/WRITE.

namespace {

// One Read or Write operation: ranges of at most `io_size` bytes, at most
// `depth` in flight. Shared by the callbacks of its calls; `finish` runs once,
// after the last call completed, so the caller's buffer is no longer used.
struct Pipeline {
  NfsFile file;
  uint64_t base = 0;             // file offset of buf[0]
  const uint8_t* src = nullptr;  // Write
  uint8_t* dst = nullptr;        // Read
  uint64_t size = 0;
  uint64_t io_size = 0;
  int depth = 1;
  uint64_t next = 0;                                // first byte not issued yet
  std::vector<std::pair<uint64_t, uint64_t>> redo;  // remainders of short transfers
  uint64_t eof = UINT64_MAX;                        // Read: first offset past the end
  int inflight = 0;
  bool finished = false;
  Status error;
  std::function<void(Status)> finish;
};

}  // namespace

// ---------------------------------------------------------------------------
// NfsConnection.

NfsConnection::NfsConnection(NfsMountSpec spec) : spec_(std::move(spec)) {}

NfsConnection::~NfsConnection() { loop_.reset(); }

Result<std::unique_ptr<NfsConnection>> NfsConnection::Start(NfsMountSpec spec) {
  std::unique_ptr<NfsConnection> conn(new NfsConnection(std::move(spec)));
  conn->loop_ = std::make_unique<IoLoop>(conn->spec_, &conn->mounts_);
  RETURN_IF_ERROR(conn->loop_->Start());
  return conn;
}

Status NfsConnection::Run(std::function<void(const Finish&)> start, bool needs_mount) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
  };
  auto waiter = std::make_shared<Waiter>();
  Finish finish = [waiter](Status st) {
    {
      std::lock_guard<std::mutex> lock(waiter->mu);
      if (waiter->done) {
        return;
      }
      waiter->status = std::move(st);
      waiter->done = true;
    }
    waiter->cv.notify_all();
  };
  load_.fetch_add(1, std::memory_order_relaxed);
  loop_->Submit(
      IoLoop::Task{[start = std::move(start), finish] { start(finish); }, finish, needs_mount});
  std::unique_lock<std::mutex> lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->done; });
  load_.fetch_sub(1, std::memory_order_relaxed);
  return std::move(waiter->status);
}

Status NfsConnection::Mount() {
  return Run([](const Finish& finish) { finish(Status::Ok()); });
}

Result<NfsFile> NfsConnection::Create(const std::string& path, int mode) {
  NfsFile out;
  IoLoop* loop = loop_.get();
  Status st = Run([&](const Finish& finish) {
    loop->Issue(
        [&](nfs_context* ctx, nfs_cb cb, void* priv) {
          return nfs_create_async(ctx, path.c_str(), O_TRUNC, mode, cb, priv);
        },
        [&, finish](int err, void* data) {
          if (err < 0) {
            finish(NfsErrorStatus(spec_, "create " + path, err, CallMessage(err, data)));
            return;
          }
          out = NfsFile{static_cast<::nfsfh*>(data), loop->generation()};
          loop->AddHandle(out.fh);
          finish(Status::Ok());
        });
  });
  if (!st.ok()) {
    return st;
  }
  return out;
}

Result<NfsFile> NfsConnection::OpenForRead(const std::string& path) {
  NfsFile out;
  IoLoop* loop = loop_.get();
  Status st = Run([&](const Finish& finish) {
    loop->Issue([&](nfs_context* ctx, nfs_cb cb,
                    void* priv) { return nfs_open_async(ctx, path.c_str(), O_RDONLY, cb, priv); },
                [&, finish](int err, void* data) {
                  if (err < 0) {
                    finish(NfsErrorStatus(spec_, "open " + path, err, CallMessage(err, data)));
                    return;
                  }
                  out = NfsFile{static_cast<::nfsfh*>(data), loop->generation()};
                  loop->AddHandle(out.fh);
                  finish(Status::Ok());
                });
  });
  if (!st.ok()) {
    return st;
  }
  return out;
}

void NfsConnection::Close(NfsFile file) {
  IoLoop* loop = loop_.get();
  Status st = Run(
      [&](const Finish& finish) {
        loop->CloseHandle(file);
        finish(Status::Ok());
      },
      /*needs_mount=*/false);
  st.IgnoreError();  // only Aborted at shutdown, when the teardown freed it
}

Result<NfsAttr> NfsConnection::Fstat(NfsFile file) {
  NfsAttr out;
  IoLoop* loop = loop_.get();
  Status st = Run(
      [&](const Finish& finish) {
        if (!loop->IsCurrent(file)) {
          finish(loop->StaleHandle());
          return;
        }
        loop->Issue([&](nfs_context* ctx, nfs_cb cb,
                        void* priv) { return nfs_fstat64_async(ctx, file.fh, cb, priv); },
                    [&, finish](int err, void* data) {
                      if (err < 0) {
                        finish(NfsErrorStatus(spec_, "getattr", err, CallMessage(err, data)));
                        return;
                      }
                      out = AttrFromStat(*static_cast<nfs_stat_64*>(data));
                      finish(Status::Ok());
                    });
      },
      /*needs_mount=*/false);
  if (!st.ok()) {
    return st;
  }
  return out;
}

namespace {

// Issues ranges until `depth` are in flight; finishes when none is left.
// Runs on the I/O thread. `loop` issues; `spec` names errors.
template <typename Loop>
void Pump(Loop* loop, const NfsMountSpec& spec, const std::shared_ptr<Pipeline>& p) {
  const bool writing = p->src != nullptr;
  while (p->error.ok() && p->inflight < p->depth) {
    uint64_t off = 0;
    uint64_t len = 0;
    if (!p->redo.empty()) {
      std::tie(off, len) = p->redo.back();
      p->redo.pop_back();
    } else if (p->next < p->size && p->next < p->eof) {
      off = p->next;
      len = std::min(p->io_size, p->size - p->next);
      p->next += len;
    } else {
      break;
    }
    if (!writing && off >= p->eof) {
      continue;  // past the end found by another read
    }
    ++p->inflight;
    loop->Issue(
        [p, off, len, writing](nfs_context* ctx, nfs_cb cb, void* priv) {
          if (writing) {
            return nfs_pwrite_async(ctx, p->file.fh, p->base + off, len, p->src + off, cb, priv);
          }
          return nfs_pread_async(ctx, p->file.fh, p->base + off, len, cb, priv);
        },
        [loop, &spec, p, off, len, writing](int err, void* data) {
          --p->inflight;
          if (err < 0) {
            if (p->error.ok()) {
              p->error = NfsErrorStatus(spec,
                                        std::string(writing ? "write" : "read") + " at offset " +
                                            std::to_string(p->base + off),
                                        err, CallMessage(err, data));
            }
          } else {
            const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(err), len);
            if (!writing && n > 0) {
              std::memcpy(p->dst + off, data, n);
            }
            if (n == 0) {
              if (writing) {
                if (p->error.ok()) {
                  p->error = IOError("write at offset " + std::to_string(p->base + off) +
                                     ": the NFS server accepted no bytes");
                }
              } else {
                p->eof = std::min(p->eof, off);
              }
            } else if (n < len) {
              p->redo.emplace_back(off + n, len - n);
            }
          }
          Pump(loop, spec, p);
        });
  }
  const bool complete = p->redo.empty() && (p->next >= p->size || (!writing && p->next >= p->eof));
  if (p->inflight == 0 && !p->finished && (!p->error.ok() || complete)) {
    p->finished = true;
    p->finish(p->error);  // last touch of the caller's buffer was above
  }
}

}  // namespace

Status NfsConnection::Write(NfsFile file, uint64_t offset, ByteSpan data) {
  IoLoop* loop = loop_.get();
  return Run(
      [&](const Finish& finish) {
        if (!loop->IsCurrent(file)) {
          finish(loop->StaleHandle());
          return;
        }
        auto p = std::make_shared<Pipeline>();
        p->file = file;
        p->base = offset;
        p->src = data.empty() ? reinterpret_cast<const uint8_t*>("") : data.data();
        p->size = data.size();
        p->io_size = loop->write_size();
        p->depth = std::max(1, spec_.io_depth);
        p->finish = finish;
        Pump(loop, spec_, p);
      },
      /*needs_mount=*/false);
}

Result<uint64_t> NfsConnection::Read(NfsFile file, uint64_t offset, MutableByteSpan out) {
  IoLoop* loop = loop_.get();
  uint64_t got = 0;
  Status st = Run(
      [&](const Finish& finish) {
        if (!loop->IsCurrent(file)) {
          finish(loop->StaleHandle());
          return;
        }
        auto p = std::make_shared<Pipeline>();
        p->file = file;
        p->base = offset;
        p->dst = out.data();
        p->size = out.size();
        p->io_size = loop->read_size();
        p->depth = std::max(1, spec_.io_depth);
        p->finish = [p_weak = std::weak_ptr<Pipeline>(p), &got, finish](Status s) {
          if (auto q = p_weak.lock()) {
            got = std::min(q->size, q->eof);
          }
          finish(std::move(s));
        };
        Pump(loop, spec_, p);
      },
      /*needs_mount=*/false);
  if (!st.ok()) {
    return st;
  }
  return got;
}

Status NfsConnection::Fsync(NfsFile file) {
  IoLoop* loop = loop_.get();
  return Run(
      [&](const Finish& finish) {
        if (!loop->IsCurrent(file)) {
          finish(loop->StaleHandle());
          return;
        }
        loop->Issue([&](nfs_context* ctx, nfs_cb cb,
                        void* priv) { return nfs_fsync_async(ctx, file.fh, cb, priv); },
                    [&, finish](int err, void* data) {
                      finish(err < 0 ? NfsErrorStatus(spec_, "commit", err, CallMessage(err, data))
                                     : Status::Ok());
                    });
      },
      /*needs_mount=*/false);
}

Result<NfsAttr> NfsConnection::Stat(const std::string& path) {
  NfsAttr out;
  IoLoop* loop = loop_.get();
  Status st = Run([&](const Finish& finish) {
    loop->Issue([&](nfs_context* ctx, nfs_cb cb,
                    void* priv) { return nfs_stat64_async(ctx, path.c_str(), cb, priv); },
                [&, finish](int err, void* data) {
                  if (err < 0) {
                    finish(NfsErrorStatus(spec_, "stat " + path, err, CallMessage(err, data)));
                    return;
                  }
                  out = AttrFromStat(*static_cast<nfs_stat_64*>(data));
                  finish(Status::Ok());
                });
  });
  if (!st.ok()) {
    return st;
  }
  return out;
}

Status NfsConnection::Mkdir(const std::string& path, int mode) {
  IoLoop* loop = loop_.get();
  return Run([&](const Finish& finish) {
    loop->Issue([&](nfs_context* ctx, nfs_cb cb,
                    void* priv) { return nfs_mkdir2_async(ctx, path.c_str(), mode, cb, priv); },
                [&, finish](int err, void* data) {
                  finish(err < 0
                             ? NfsErrorStatus(spec_, "mkdir " + path, err, CallMessage(err, data))
                             : Status::Ok());
                });
  });
}

Status NfsConnection::Unlink(const std::string& path) {
  IoLoop* loop = loop_.get();
  return Run([&](const Finish& finish) {
    loop->Issue([&](nfs_context* ctx, nfs_cb cb,
                    void* priv) { return nfs_unlink_async(ctx, path.c_str(), cb, priv); },
                [&, finish](int err, void* data) {
                  finish(err < 0
                             ? NfsErrorStatus(spec_, "remove " + path, err, CallMessage(err, data))
                             : Status::Ok());
                });
  });
}

Status NfsConnection::Rename(const std::string& from, const std::string& to) {
  IoLoop* loop = loop_.get();
  return Run([&](const Finish& finish) {
    loop->Issue(
        [&](nfs_context* ctx, nfs_cb cb, void* priv) {
          return nfs_rename_async(ctx, from.c_str(), to.c_str(), cb, priv);
        },
        [&, finish](int err, void* data) {
          finish(err < 0 ? NfsErrorStatus(spec_, "rename " + from + " to " + to, err,
                                          CallMessage(err, data))
                         : Status::Ok());
        });
  });
}

Result<std::vector<NfsDirEntry>> NfsConnection::ReadDir(const std::string& path) {
  std::vector<NfsDirEntry> out;
  IoLoop* loop = loop_.get();
  Status st = Run([&](const Finish& finish) {
    loop->Issue(
        [&](nfs_context* ctx, nfs_cb cb, void* priv) {
          return nfs_opendir_async(ctx, path.c_str(), cb, priv);
        },
        [&, finish](int err, void* data) {
          if (err < 0) {
            finish(NfsErrorStatus(spec_, "read directory " + path, err, CallMessage(err, data)));
            return;
          }
          // libnfs read the whole directory (READDIRPLUS until EOF) before
          // calling back; nfs_readdir only walks that list.
          auto* dir = static_cast<nfsdir*>(data);
          while (nfsdirent* e = nfs_readdir(loop->ctx(), dir)) {
            std::string_view name = e->name != nullptr ? e->name : "";
            if (name.empty() || name == "." || name == "..") {
              continue;
            }
            NfsDirEntry entry;
            entry.name = std::string(name);
            entry.attr.size = e->size;
            entry.attr.mtime_unix = e->mtime.tv_sec;
            entry.attr.is_dir = e->type == NF3DIR;
            entry.attr.is_regular = e->type == NF3REG;
            entry.attr_known = e->type != 0;
            out.push_back(std::move(entry));
          }
          nfs_closedir(loop->ctx(), dir);
          finish(Status::Ok());
        });
  });
  if (!st.ok()) {
    return st;
  }
  return out;
}

}  // namespace bunker::backend
