#pragma once

// A real NFSv3 server for tests: nfs-ganesha (FSAL VFS) exporting a fresh
// temp directory on 127.0.0.1, on free non-default ports.
//
// How clients reach it: libnfs URLs from Url() carry the ports explicitly
// (`nfsport=`, `mountport=`), so libnfs never asks the portmapper. That is
// deliberate: ganesha must register with rpcbind to start, but every ganesha
// on the machine registers the same RPC programs and the last one wins, so a
// portmapper lookup may reach another test's server.
//
// Requirements: root (FSAL VFS uses open_by_handle_at), ganesha.nfsd and
// rpcbind (Debian nfs-ganesha, nfs-ganesha-vfs, rpcbind).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "nodeagent/core/util/status.h"
#include "tests/harness/process.h"
#include "tests/harness/rpcbind.h"
#include "tests/harness/temp_dir.h"

namespace bunker::testing {

struct NfsServerOptions {
  // From spawning ganesha.nfsd until an NFS MOUNT + GETATTR succeeds.
  std::chrono::milliseconds start_timeout{std::chrono::seconds(30)};
  // Fresh ports are picked for each attempt (a port may be taken meanwhile).
  int start_attempts = 3;
};

// One running ganesha.nfsd and its temp directory:
//   <dir>/export/     the exported directory (also its NFS export path)
//   <dir>/ganesha.conf, ganesha.log, ganesha.pid, recovery/
// The destructor stops the server (SIGTERM, then SIGKILL), releases rpcbind
// and removes the directory. Not copyable or movable (hold it by unique_ptr);
// not thread-safe.
class NfsServer {
 public:
  // Starts a server and waits until a real NFS operation succeeds through
  // Url(). On failure the error message includes the end of ganesha's log.
  static Result<std::unique_ptr<NfsServer>> Start(const NfsServerOptions& options = {});

  NfsServer(const NfsServer&) = delete;
  NfsServer& operator=(const NfsServer&) = delete;
  ~NfsServer();

  // libnfs URL of `path` under the export ("" or "/" for the export root):
  // nfs://127.0.0.1/<export>[/<path>]?version=3&nfsport=N&mountport=M
  // `path` is not escaped: keep test names to [A-Za-z0-9._/-].
  std::string Url(std::string_view path = "") const;

  // The exported directory on local disk; the NFS export path is the same
  // string. Files written here are visible over NFS and vice versa.
  const std::filesystem::path& export_dir() const { return export_dir_; }
  const std::filesystem::path& dir() const { return temp_.path(); }
  const std::filesystem::path& log_path() const { return log_path_; }
  uint16_t nfs_port() const { return nfs_port_; }
  uint16_t mount_port() const { return mount_port_; }
  pid_t pid() const { return process_.pid(); }
  bool Running() { return process_.Running(); }

  // The last `max_bytes` of ganesha's log, for failure messages.
  std::string LogTail(size_t max_bytes = 16384) const;

  // Clean shutdown (SIGTERM, SIGKILL after 10 s); idempotent. The export
  // directory stays until destruction.
  void Stop() { process_.Stop(); }
  // SIGKILL, as if the server crashed; clients then fail to connect.
  void Kill() { process_.Kill(); }

  // Starts ganesha again with the same configuration, ports and export, as a
  // server that comes back after a crash or a reboot (stopping it first with
  // SIGKILL if it still runs), and waits until it answers like Start(). Url()
  // stays valid. Fails (with the log tail) if a port was taken meanwhile.
  // Call it from the thread that started the server (see process.h).
  Status Restart(const NfsServerOptions& options = {});

 private:
  NfsServer() = default;
  // One try on fresh ports; sets `may_retry` when another try could succeed.
  Status StartOnce(const NfsServerOptions& options, int attempt, bool& may_retry);
  // Spawns ganesha with the configuration written by StartOnce and waits until
  // it answers; sets `may_retry` when it exited during start.
  Status SpawnAndWait(const NfsServerOptions& options, bool& may_retry);

  // Declaration order is destruction order in reverse: the process stops
  // before rpcbind is released and before the directory goes.
  TempDir temp_;
  RpcbindLease rpcbind_;
  std::filesystem::path export_dir_;
  std::filesystem::path log_path_;
  uint16_t nfs_port_ = 0;
  uint16_t mount_port_ = 0;
  Process process_;
};

}  // namespace bunker::testing
